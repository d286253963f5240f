package traffic

import (
	"bytes"
	"testing"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/events/kafkax"
)

func TestGenerateDeterministicAndRealistic(t *testing.T) {
	cfg := Config{Seed: 5, Records: 6000, Partitions: 3, Numbers: 2, BadEvery: 1000}
	a, err := Generate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Generate(cfg)
	if len(a) != len(b) || len(a) < cfg.Records {
		t.Fatalf("%d and %d records, want equal and at least %d", len(a), len(b), cfg.Records)
	}
	for i := range a {
		if !bytes.Equal(a[i].Value, b[i].Value) || !bytes.Equal(a[i].Key, b[i].Key) {
			t.Fatalf("record %d differs between runs with the same seed", i)
		}
	}
	other, _ := Generate(Config{Seed: 6, Records: 2000, Partitions: 3, Numbers: 2})
	if bytes.Equal(other[100].Value, a[100].Value) {
		t.Fatal("another seed gave the same traffic")
	}
	// Account configs come first, one per number per partition, marked for their partition.
	for i := 0; i < 2*3; i++ {
		e, err := kafkax.FromMessage(a[i])
		p, ok := kafkax.ExplicitPartition(a[i])
		if err != nil || e.Type != events.TypeAccountConfig || !ok || p != i%3 {
			t.Fatalf("record %d: %v %s partition %d/%v, want an account config for partition %d", i, err, e.Type, p, ok, i%3)
		}
	}
	types := map[events.Type]int{}
	statuses := map[events.Status]int{}
	tickParts := map[int]bool{}
	bad := 0
	for _, m := range a {
		e, err := kafkax.FromMessage(m)
		if err != nil {
			bad++
			continue
		}
		types[e.Type]++
		switch d := e.Data.(type) {
		case *events.StatusUpdate:
			statuses[d.Status]++
		case *events.Tick:
			p, ok := kafkax.ExplicitPartition(m)
			if !ok || p != int(d.Partition) {
				t.Fatalf("tick for partition %d marked for %d/%v", d.Partition, p, ok)
			}
			tickParts[p] = true
		}
	}
	if bad != len(a)/1000 && bad != len(a)/1000-1 {
		t.Errorf("%d undecodable records in %d, want one per 1000", bad, len(a))
	}
	for _, typ := range []events.Type{events.TypeInboundMessage, events.TypeOutboundSend, events.TypeStatusUpdate, events.TypeTick} {
		if types[typ] == 0 {
			t.Errorf("no %s", typ)
		}
	}
	for _, st := range []events.Status{events.StatusSent, events.StatusDelivered, events.StatusRead, events.StatusFailed} {
		if statuses[st] == 0 {
			t.Errorf("no %s status", st)
		}
	}
	if len(tickParts) != 3 {
		t.Errorf("ticks on partitions %v, want all 3", tickParts)
	}
}
