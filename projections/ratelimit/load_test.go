package ratelimit

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/convmeter/convmeter/events"
)

// TestReadDirectMatchesLoadScript: the pipelined read of a batch returns what the load script
// returns, with buckets over several hours (the newest wins), pair fields, throughput minutes
// and undo records of retracted ids in several hours (absent ones included).
func TestReadDirectMatchesLoadScript(t *testing.T) {
	rdb, ns := client(t)
	s := newStore(t, rdb, ns, 1)
	ctx := context.Background()
	l := &log{}
	t0 := tPFEra + 10*Hour - 20
	var outputs []string
	for i := range 60 { // users 0..6 move from hour 9 to 10; users 7..16 stay in hour 9
		outputs = append(outputs, l.dispatched("n1", "pf1", fmt.Sprintf("u%d", i%7), t0+events.UnixTime(i)))
		if i < 10 {
			l.dispatched("n1", "pf1", fmt.Sprintf("u%d", 7+i), t0+events.UnixTime(i))
		}
		outputs = append(outputs, l.inbound("n2", "pf1", fmt.Sprintf("u%d", i%5), t0+events.UnixTime(i)))
	}
	// Retracted ids: outputs of l in hours 9 and 10, and ids never applied.
	ids := []string{outputs[0], outputs[1], outputs[len(outputs)-1], "in-0-999/0", "never-seen", outputs[50]}
	apply(t, s, l.batch())
	for _, b := range benchBatches(4, 500) {
		apply(t, s, b)
	}
	for i, b := range append(benchBatches(6, 500)[4:], l.batch()) {
		secs1, secs2 := tputMinutes{}, tputMinutes{}
		pairs, fields := map[string]bool{}, map[string]bool{}
		add := func(secs tputMinutes, pn string, at events.UnixTime) {
			k := tputKey(pn, hourOf(at))
			if secs[k] == nil {
				secs[k] = map[events.UnixTime]*minuteCounts{}
			}
			secs[k][minuteOf(at)] = nil
		}
		for _, e := range b.Events {
			switch d := e.Data.(type) {
			case *events.MessageDispatched:
				pairs[pairOf(d.Account)] = true
				add(secs1, d.PhoneNumberID, d.SentAt)
				add(secs2, d.PhoneNumberID, d.SentAt)
			case *events.WindowOpened:
				fields[windowField(pairOf(d.Account))] = true
				add(secs1, d.PhoneNumberID, d.OpenedAt)
				add(secs2, d.PhoneNumberID, d.OpenedAt)
			case *events.ConversationOpened:
				fields[convField(pairOf(d.Account), d.Category)] = true
			}
		}
		fields["nobody/none|w"] = true
		pl, fl := sortedKeys(pairs), sortedKeys(fields)
		var want, got readResult
		// Guessed bucket hours: none, the right ones, wrong ones (an hour not indexed is not read).
		hi := events.UnixTime(tPFEra + 10*Hour + 100)
		for j, guess := range [][]string{nil, guessHours(hi-3*Hour, hi), {itoa(hourOf(hi) - 1), "12345"}} {
			retracted := ids[:j*3] // none, some, all
			if err := rdb.Watch(ctx, func(tx *redis.Tx) error {
				var err error
				if want, err = s.read(ctx, tx, 0, pl, fl, retracted, nil, secs1); err != nil {
					return err
				}
				got, err = s.readDirect(ctx, tx, 0, pl, fl, retracted, secs2, guess, "")
				return err
			}, s.prefix(0)+kMeta); err != nil {
				t.Fatal(err)
			}
			if len(retracted) == 0 {
				want.undo = nil
			}
			want.deliveries = nil
			// Only the direct read, which applying uses, reads the log position.
			if got.next != "2000" {
				t.Fatalf("direct read: log position %q, want the last batch's 2000", got.next)
			}
			want.next = got.next
			if !reflect.DeepEqual(want, got) || !reflect.DeepEqual(secs1, secs2) {
				t.Fatalf("guess %v: direct read differs from the load script:\n got %+v\nwant %+v", guess, got, want)
			}
			found := 0
			for _, u := range got.undo {
				if u != "" {
					found++
				}
			}
			if j == 2 && found != 4 {
				t.Fatalf("%d undo records of %q found, want 4: %q", found, retracted, got.undo)
			}
		}
		nonEmpty := 0
		for _, x := range got.buckets {
			if x != "" {
				nonEmpty++
			}
		}
		if i == 2 && (nonEmpty != len(got.buckets) || len(got.buckets) < 2 || got.hw == "") {
			t.Fatalf("nothing read: %+v", got)
		}
	}
}

// TestPipelinedWatch: the WATCH load sends with its first read guards the EXEC against a
// foreign writer, and is released when no EXEC follows (the connection goes back clean).
func TestPipelinedWatch(t *testing.T) {
	rdb, ns := client(t)
	s := newStore(t, rdb, ns, 1)
	ctx := context.Background()
	b := benchBatches(2, 50)
	apply(t, s, b[0])
	meta := s.prefix(0) + kMeta
	err := rdb.Watch(ctx, func(tx *redis.Tx) error {
		w := &watchState{key: meta, pending: true}
		v, secs, _, err := s.load(ctx, tx, b[1], w)
		if err != nil {
			return err
		}
		if !w.sent {
			t.Fatal("the WATCH did not go out with the first read")
		}
		if err := rdb.HSet(ctx, meta, "x", "1").Err(); err != nil { // another connection
			return err
		}
		ch := Reduce(s.cfg, v, b[1].Events)
		return s.write(ctx, tx, 0, ch, secs, len(b[1].Events), 0)
	})
	if err != redis.TxFailedErr {
		t.Fatalf("EXEC after a foreign write to the meta hash: %v, want TxFailedErr", err)
	}
	err = rdb.Watch(ctx, func(tx *redis.Tx) error {
		w := &watchState{key: meta, pending: true}
		if _, _, _, err := s.load(ctx, tx, b[1], w); err != nil {
			return err
		}
		w.release(ctx, tx)
		if err := rdb.HSet(ctx, meta, "x", "2").Err(); err != nil {
			return err
		}
		_, err := tx.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
			pipe.HSet(ctx, meta, "y", "1")
			return nil
		})
		return err
	})
	if err != nil {
		t.Fatalf("a released WATCH still aborts the transaction: %v", err)
	}
	apply(t, s, b[1])
}
