package ratecard

import (
	"testing"
	"time"

	"github.com/convmeter/convmeter/events"
)

func TestExamplesLoad(t *testing.T) {
	b, err := Examples()
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Markets()) == 0 {
		t.Fatal("no markets in the example map")
	}
	at := time.Date(2025, 9, 1, 0, 0, 0, 0, time.UTC)
	m, ok := b.Market("5511999990000", at)
	if !ok {
		t.Fatal("Brazil number has no market in the examples")
	}
	if _, err := b.Rate("USD", m, events.CategoryMarketing, at); err != nil {
		t.Fatalf("no example USD marketing rate for %s: %v", m, err)
	}
}
