package ratelimit

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/convmeter/convmeter/events"
)

// TestMemoryBounded streams 12 days of steady traffic (a new user every 10 minutes, dispatches,
// inbound messages) and checks that what remains is what the windows serve: no day of deliveries
// older than the 7-day usage window, no hour of undo records older than the undo window, no hour
// of throughput older than the throughput window, no bucket hour whose buckets are all full, no
// counter entry older than 7 days, no pair field past the hour of its expiry.
func TestMemoryBounded(t *testing.T) {
	rdb, ns := client(t)
	s := newStore(t, rdb, ns, 1)
	ctx := context.Background()
	l := &log{}
	start := tPFEra
	end := start + 12*Day
	i := 0
	for tt := start; tt < end; tt += 600 {
		u := fmt.Sprintf("u%d", i)
		i++
		l.delivered("n1", "pf1", u, tt, false)
		l.dispatched("n1", "pf1", u, tt)
		l.inbound("n1", "pf1", u, tt+1)
		if len(l.evs) >= 600 {
			apply(t, s, l.batch())
			l.evs = nil
		}
	}
	apply(t, s, l.batch())
	st := end - 600 + 1
	pfx := s.prefix(0)
	keys, err := rdb.Keys(ctx, pfx+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.cfg
	for _, k := range keys {
		name := strings.TrimPrefix(k, pfx)
		num := func(prefix string) int64 {
			parts := strings.Split(strings.TrimPrefix(name, prefix), ":")
			n, _ := strconv.ParseInt(parts[len(parts)-1], 10, 64)
			return n
		}
		switch {
		case strings.HasPrefix(name, kDeliveries):
			if d := num(kDeliveries); events.UnixTime((d+1)*int64(Day)-1) <= st-cfg.UsageWindow {
				t.Errorf("day key %s outlived the usage window", name)
			}
		case strings.HasPrefix(name, kUndo): // "fx:<hour>" (before the logs) or "fx:<hour>:<bucket>"
			h, _ := strconv.ParseInt(strings.Split(strings.TrimPrefix(name, kUndo), ":")[0], 10, 64)
			if hourEnd(h) <= st-cfg.UndoWindow {
				t.Errorf("undo hour %s outlived the undo window", name)
			}
		case strings.HasPrefix(name, kTputPrefix):
			if h := num(kTputPrefix); hourEnd(h) <= st-cfg.ThroughputWindow {
				t.Errorf("throughput hour %s outlived its window", name)
			}
		case strings.HasPrefix(name, kBuckets):
			if h := num(kBuckets); hourEnd(h)+pairCapacity <= st {
				t.Errorf("bucket hour %s kept although all its buckets are full", name)
			}
		case strings.HasPrefix(name, kPairHour):
			if h := num(kPairHour); hourEnd(h) <= st {
				t.Errorf("pair fields' hour %s outlived it", name)
			}
		}
	}
	pairs, err := rdb.HGetAll(ctx, pfx+kPairs).Result()
	if err != nil {
		t.Fatal(err)
	}
	for f, v := range pairs {
		if hourEnd(hourOf(fieldExpiry(f, v))) <= st {
			t.Errorf("pair field %s=%q outlived the hour of its expiry", f, v)
		}
	}
	old, err := rdb.ZCount(ctx, pfx+kLimitPrefix+string(PortfolioScope("pf1")), "-inf", strconv.FormatInt(int64(st-cfg.UsageWindow-60), 10)).Result()
	if err != nil {
		t.Fatal(err)
	}
	if old != 0 {
		t.Errorf("%d counter entries older than the usage window", old)
	}
	n, _ := rdb.ZCard(ctx, pfx+kLimitPrefix+string(PortfolioScope("pf1"))).Result()
	if want := int64(7 * 24 * 6); n < want-10 || n > want+10 {
		t.Errorf("counter holds %d users, want about %d (7 days of one new user per 10 min)", n, want)
	}
	fields, _ := rdb.HLen(ctx, pfx+kPairs).Result()
	if fields > 24*6+10 {
		t.Errorf("%d pair fields kept, want only open windows and those of the hour (about %d)", fields, 24*6)
	}
	t.Logf("%d keys after 12 days; counter %d users; %d pair fields; %d users in all", len(keys), n, fields, i)
}
