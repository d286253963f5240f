package ratelimit

import (
	"context"
	"fmt"
	"maps"
	"sort"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/projections"
	"github.com/convmeter/convmeter/projections/redistest"
)

// Times used by the scenarios.
var (
	tPhoneEra = events.UnixTime(1_756_684_800) // 2025-09-01T00:00:00Z
	tPFEra    = events.UnixTime(1_761_955_200) // 2025-11-01T00:00:00Z
)

// log builds output events of one partition with increasing causes.
type log struct {
	p   int32
	off int64
	evs []events.Event
}

func (l *log) add(d events.Payload, t events.UnixTime) string {
	l.off++
	id := fmt.Sprintf("in-%d-%d/0", l.p, l.off)
	e := events.Event{ID: id, Type: d.EventType(), Time: t, Cause: &events.Cause{Partition: l.p, Offset: l.off}, Data: d}
	l.evs = append(l.evs, e)
	return id
}

func (l *log) batch() projections.Batch { return projections.Batch{Partition: l.p, Events: l.evs} }

func acct(pn, pf, user string) events.Account {
	return events.Account{PhoneNumberID: pn, User: user, WABAID: "w-" + pf, PortfolioID: pf, Currency: "USD", Configured: true}
}

func (l *log) delivered(pn, pf, user string, t events.UnixTime, inside bool) string {
	return l.add(&events.MessageDelivered{Account: acct(pn, pf, user), WAMID: fmt.Sprintf("wamid.%s.%s.%d", pn, user, l.off+1),
		DeliveredAt: t, Kind: events.KindTemplate, TemplateCategory: events.CategoryMarketing, InsideCSW: inside}, t)
}

func (l *log) dispatched(pn, pf, user string, t events.UnixTime) string {
	return l.add(&events.MessageDispatched{Account: acct(pn, pf, user), WAMID: fmt.Sprintf("wamid.%s.%s.%d", pn, user, l.off+1),
		SentAt: t, Kind: events.KindTemplate}, t)
}

func (l *log) inbound(pn, pf, user string, t events.UnixTime) string {
	return l.add(&events.WindowOpened{Account: acct(pn, pf, user), WAMID: fmt.Sprintf("wamid.in.%d", l.off+1),
		OpenedAt: t, ExpiresAt: t + Day}, t)
}

func (l *log) config(pn, pf, tier string, from events.UnixTime) {
	l.add(&events.AccountConfig{PhoneNumberID: pn, WABAID: "w-" + pf, PortfolioID: pf, TimeZone: "UTC", Currency: "USD",
		EffectiveFrom: from, MessagingLimitTier: tier}, from)
}

func newStore(t testing.TB, rdb redis.UniversalClient, ns string, partitions int) *Store {
	t.Helper()
	s, err := NewStore(rdb, WithNamespace(ns), WithPartitions(partitions), WithAccountCache(0, nil))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func apply(t testing.TB, s *Store, b projections.Batch) Stats {
	t.Helper()
	st, err := s.ApplyStats(context.Background(), b)
	if err != nil {
		t.Fatalf("apply partition %d: %v", b.Partition, err)
	}
	return st
}

// dump renders every key under ns, with ns stripped, as sorted "key field=value" lines, so two
// namespaces can be compared.
func dump(t testing.TB, rdb redis.UniversalClient, ns string) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	// Undo records by hour: the logs' records, then the hash's over them (undolog.go), so two
	// namespaces holding the same records in other places dump the same.
	type hourRecs struct{ logs, hash map[string]string }
	undo := map[string]*hourRecs{}
	hour := func(k string) *hourRecs {
		if undo[k] == nil {
			undo[k] = &hourRecs{map[string]string{}, map[string]string{}}
		}
		return undo[k]
	}
	iter := rdb.Scan(ctx, 0, ns+"*", 1000).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		short := strings.TrimPrefix(k, ns)
		typ, err := rdb.Type(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		if PairTrimIndex(short) {
			continue // checked with the pair fields: every live one is listed under its hour
		}
		switch typ {
		case "hash":
			m, err := rdb.HGetAll(ctx, k).Result()
			if err != nil {
				t.Fatal(err)
			}
			if _, log, ok := UndoHour(short); ok && !log {
				maps.Copy(hour(short).hash, m)
				continue
			}
			if PairFields(short) {
				m = livePairFieldsIndexed(t, rdb, strings.TrimSuffix(k, kPairs), m)
			}
			for f, v := range m {
				out = append(out, short+" "+f+"="+v)
			}
		case "zset":
			zs, err := rdb.ZRangeWithScores(ctx, k, 0, -1).Result()
			if err != nil {
				t.Fatal(err)
			}
			for _, z := range zs {
				out = append(out, fmt.Sprintf("%s %v=%v", short, z.Member, z.Score))
			}
		case "list":
			h, log, ok := UndoHour(short)
			if !ok || !log {
				out = append(out, short+" type "+typ)
				continue
			}
			elems, err := rdb.LRange(ctx, k, 0, -1).Result()
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range elems {
				if err := ApplyUndoLog(e, hour(h).logs); err != nil {
					t.Fatalf("%s: %v", short, err)
				}
			}
		default:
			out = append(out, short+" type "+typ)
		}
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	for h, r := range undo {
		maps.Copy(r.logs, r.hash)
		for id, v := range r.logs {
			out = append(out, h+" "+id+"="+v)
		}
	}
	sort.Strings(out)
	return out
}

// livePairFieldsIndexed returns the pair fields of the partition under pfx that have not expired
// at its stream time (LivePairFields), and fails unless each of them is listed for the trim under
// the hour of its expiry (or, in a store written before the lists, in the sorted set).
func livePairFieldsIndexed(t testing.TB, rdb redis.UniversalClient, pfx string, fields map[string]string) map[string]string {
	t.Helper()
	ctx := context.Background()
	st, err := PairFieldsStream(ctx, rdb, pfx+kPairs)
	if err != nil {
		t.Fatal(err)
	}
	live := LivePairFields(fields, st)
	for f, v := range live {
		h := itoa(hourOf(fieldExpiry(f, v)))
		_, errList := rdb.LPos(ctx, pfx+kPairHour+h, f, redis.LPosArgs{}).Result()
		_, errHour := rdb.ZScore(ctx, pfx+kPairHourIdx, h).Result()
		if errList == nil && errHour == nil {
			continue
		}
		if _, err := rdb.ZScore(ctx, pfx+kPairIdx, f).Result(); err != nil {
			t.Fatalf("%s: pair field %s=%q (expiring in hour %s) is not indexed for the trim: list %v, hours %v, sorted set %v",
				pfx, f, v, h, errList, errHour, err)
		}
	}
	return live
}

func diff(a, b []string) string {
	as, bs := map[string]bool{}, map[string]bool{}
	for _, x := range a {
		as[x] = true
	}
	for _, x := range b {
		bs[x] = true
	}
	var d []string
	for _, x := range a {
		if !bs[x] {
			d = append(d, "- "+x)
		}
	}
	for _, x := range b {
		if !as[x] {
			d = append(d, "+ "+x)
		}
	}
	if len(d) > 2000 {
		d = append(d[:20], fmt.Sprintf("... %d more", len(d)-20))
	}
	return strings.Join(d, "\n")
}

func client(t testing.TB) (*redis.Client, string) { return redistest.Client(t) }

// userIn returns a user whose pair with pn lands in partition p of n.
func userIn(pn string, p, n int) string {
	for i := 0; ; i++ {
		u := fmt.Sprintf("u%d", i)
		if events.PartitionString(events.PairKey(pn, u, ""), n) == p {
			return u
		}
	}
}
