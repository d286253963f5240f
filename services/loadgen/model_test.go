package loadgen

import (
	"bytes"
	"testing"
	"time"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/services/ingest"
)

func small(seed uint64) Config {
	return Config{Seed: seed, Numbers: 3, WABAs: 2, UsersPerNumber: 50, Duration: 2 * time.Hour, SessionsPerHour: 100}
}

func TestModelDeterministicAndOrdered(t *testing.T) {
	enc := func(seed uint64) ([]byte, []Item) {
		m, err := New(small(seed))
		if err != nil {
			t.Fatal(err)
		}
		its := m.Items(0)
		var b bytes.Buffer
		for _, it := range its {
			raw, err := events.Marshal(it.Event)
			if err != nil {
				t.Fatal(err)
			}
			b.Write(raw)
			b.WriteByte('\n')
		}
		return b.Bytes(), its
	}
	a, its := enc(7)
	b, _ := enc(7)
	c, _ := enc(8)
	if !bytes.Equal(a, b) {
		t.Fatal("same seed, different traffic")
	}
	if bytes.Equal(a, c) {
		t.Fatal("different seeds, same traffic")
	}
	counts := map[events.Type]int{}
	cats := map[events.Category]int{}
	var dup, ad, disorder, failed int
	last := map[string]int{} // wamid → highest status rank arrived
	for i, it := range its {
		if i > 0 && it.Arrival < its[i-1].Arrival {
			t.Fatalf("item %d arrives at %v before item %d at %v", i, it.Arrival, i-1, its[i-1].Arrival)
		}
		if err := events.Validate(it.Event); err != nil {
			t.Fatalf("item %d invalid: %v", i, err)
		}
		counts[it.Event.Type]++
		if it.Duplicate {
			dup++
		}
		switch d := it.Event.Data.(type) {
		case *events.InboundMessage:
			if d.Referral != nil {
				ad++
			}
		case *events.OutboundSend:
			cats[d.TemplateCategory]++
		case *events.StatusUpdate:
			if d.Status == events.StatusFailed {
				failed++
			} else if r := d.Status.Rank(); r < last[d.WAMID] && !it.Duplicate {
				disorder++
			} else {
				last[d.WAMID] = max(last[d.WAMID], r)
			}
		}
	}
	t.Logf("%d items: %v, categories %v, %d duplicates, %d ads, %d out of order, %d failed", len(its), counts, cats, dup, ad, disorder, failed)
	if counts[events.TypeAccountConfig] != 3 || counts[events.TypeInboundMessage] == 0 || counts[events.TypeOutboundSend] == 0 {
		t.Fatalf("missing event types: %v", counts)
	}
	for _, c := range []events.Category{events.CategoryMarketing, events.CategoryUtility, events.CategoryAuthentication, ""} {
		if cats[c] == 0 {
			t.Errorf("no sends of category %q", c)
		}
	}
	if dup == 0 || ad == 0 || disorder == 0 || failed == 0 {
		t.Errorf("want duplicates, ad referrals, out-of-order statuses and failures: %d %d %d %d", dup, ad, disorder, failed)
	}
}

// TestWebhookRoundTrip renders every webhook item as Meta's body and normalises it with the
// ingest normaliser: the same event comes back.
func TestWebhookRoundTrip(t *testing.T) {
	m, err := New(small(3))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, it := range m.Items(0) {
		if !it.Webhook {
			if _, err := Webhook(it); err == nil {
				t.Fatalf("%s rendered as a webhook", it.Event.Type)
			}
			continue
		}
		body, err := Webhook(it)
		if err != nil {
			t.Fatal(err)
		}
		res, err := ingest.Normalize(body)
		if err != nil || len(res.Events) != 1 || len(res.Rejected) != 0 {
			t.Fatalf("normalise %s: %v %+v", body, err, res)
		}
		want, _ := events.Marshal(it.Event)
		got, _ := events.Marshal(res.Events[0])
		if !bytes.Equal(want, got) {
			t.Fatalf("round trip differs:\nwant %s\n got %s", want, got)
		}
		n++
	}
	if n == 0 {
		t.Fatal("no webhooks")
	}
}
