package ratecard

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/convmeter/convmeter/events"
)

func examples(t *testing.T) *Book {
	t.Helper()
	b, err := Load("examples")
	if err != nil {
		t.Fatalf("load examples: %v", err)
	}
	return b
}

func TestMicros(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Micros
		str  string
	}{
		{"0.0099", 9900, "0.0099"}, {"12", 12_000_000, "12"}, {"0.77", 770_000, "0.77"},
		{"-1.5", -1_500_000, "-1.5"}, {".5", 500_000, "0.5"}, {"0.000001", 1, "0.000001"},
	} {
		got, err := ParseMicros(c.in)
		if err != nil || got != c.want || got.String() != c.str {
			t.Errorf("ParseMicros(%q) = %d (%s), %v; want %d (%s)", c.in, got, got, err, c.want, c.str)
		}
	}
	for _, bad := range []string{"", "0.0000001", "1,5", "abc", "1e3", "."} {
		if _, err := ParseMicros(bad); err == nil {
			t.Errorf("ParseMicros(%q) succeeded", bad)
		}
	}
	// 1.005 USD → 101 cents (half away from zero); 0.0099 → 1 cent; -0.005 → -1 cent.
	for _, c := range []struct {
		m    Micros
		want int64
	}{{1_005_000, 101}, {9900, 1}, {4_999, 0}, {-5_000, -1}, {770_000, 77}} {
		if got := c.m.MinorUnits(2); got != c.want {
			t.Errorf("%s.MinorUnits(2) = %d, want %d", c.m, got, c.want)
		}
	}
}

func TestMarket(t *testing.T) {
	b := examples(t)
	day := func(s string) time.Time {
		d, _ := time.Parse(time.DateOnly, s)
		return d
	}
	for _, c := range []struct {
		recipient, day, want string
	}{
		{"16505551234", "2025-07-01", "North America"},
		{"18095551234", "2025-07-01", "Rest of Latin America"}, // Dominican Republic
		{"18295551234", "2025-07-01", "Rest of Latin America"},
		{"18495551234", "2025-07-01", "Rest of Latin America"},
		{"16585551234", "2025-07-01", "Rest of Latin America"}, // Jamaica
		{"18765551234", "2025-07-01", "Rest of Latin America"},
		{"17875551234", "2025-07-01", "Rest of Latin America"}, // Puerto Rico
		{"19395551234", "2025-07-01", "Rest of Latin America"},
		{"919876543210", "2025-07-01", "India"},
		{"263771234567", "2025-09-30", "Other"}, // Zimbabwe before the move
		{"263771234567", "2025-10-01", "Rest of Africa"},
		{"+447700900123", "2025-10-01", "United Kingdom"},
	} {
		got, ok := b.Market(c.recipient, day(c.day))
		if !ok || got != c.want {
			t.Errorf("Market(%s, %s) = %q, %v; want %q", c.recipient, c.day, got, ok, c.want)
		}
	}
	if m, ok := b.Market("999123", day("2025-07-01")); ok {
		t.Errorf("unmapped prefix gave %q", m)
	}
}

func TestPrice(t *testing.T) {
	b := examples(t)
	kolkata, err := time.LoadLocation("Asia/Kolkata")
	if err != nil {
		t.Skipf("no tzdata: %v", err)
	}
	// 2025-06-30T19:00Z is 2025-07-01 00:30 in Kolkata: the PMP card is in force there.
	at := time.Date(2025, 6, 30, 19, 0, 0, 0, time.UTC).In(kolkata)
	p, err := b.Price("USD", "India", events.CategoryUtility, 1, at)
	if err != nil || p.Amount != 1400 || p.CardID != "example-usd-2025-07" || p.Tier.String() != "0:1000" {
		t.Fatalf("price = %+v, %v", p, err)
	}
	p, _ = b.Price("USD", "India", events.CategoryUtility, 1001, at)
	if p.Amount != 1200 || p.Tier.String() != "1000:5000" {
		t.Fatalf("1001st utility = %+v, want 0.0012 in tier 1000:5000", p)
	}
	p, _ = b.Price("USD", "India", events.CategoryUtility, 5001, at)
	if p.Amount != 1000 {
		t.Fatalf("5001st utility = %+v", p)
	}
	// Same instant in UTC is still June: the 2024-10 card.
	p, err = b.Price("USD", "India", events.CategoryUtility, 1, at.UTC())
	if err != nil || p.CardID != "example-usd-2024-10" || p.Amount != 1400 {
		t.Fatalf("UTC price = %+v, %v", p, err)
	}
	p, err = b.Price("INR", "India", events.CategoryMarketing, 1, at)
	if err != nil || p.Amount != 770_000 {
		t.Fatalf("INR marketing = %+v, %v", p, err)
	}
	if _, err := b.Price("EUR", "India", events.CategoryMarketing, 1, at); !errors.Is(err, ErrNoCard) {
		t.Errorf("EUR: %v, want ErrNoCard", err)
	}
	if _, err := b.Price("USD", "Atlantis", events.CategoryMarketing, 1, at); !errors.Is(err, ErrUnknownMarket) {
		t.Errorf("Atlantis: %v, want ErrUnknownMarket", err)
	}
	if _, err := b.Price("USD", "United Kingdom", events.CategoryMarketing, 1, at); !errors.Is(err, ErrNoRate) {
		t.Errorf("UK: %v, want ErrNoRate", err)
	}
	old := time.Date(2023, 5, 31, 12, 0, 0, 0, time.UTC)
	if _, err := b.Price("USD", "India", events.CategoryMarketing, 1, old); !errors.Is(err, ErrNoCard) {
		t.Errorf("before the first card: %v, want ErrNoCard", err)
	}
	// RateOn words each error with what it looked for; Lookup returns the bare kind.
	day := Day(at)
	for _, tc := range []struct {
		currency, market string
		kind             error
		words            []string
	}{
		{"EUR", "India", ErrNoCard, []string{"EUR on " + day}},
		{"USD", "Atlantis", ErrUnknownMarket, []string{`market "Atlantis"`}},
		{"USD", "United Kingdom", ErrNoRate, []string{"card example-usd-", "United Kingdom marketing"}},
	} {
		_, err := b.RateOn(tc.currency, tc.market, events.CategoryMarketing, day)
		for _, w := range tc.words {
			if !errors.Is(err, tc.kind) || !strings.Contains(err.Error(), w) {
				t.Errorf("RateOn(%s, %s): %v, want %v naming %q", tc.currency, tc.market, err, tc.kind, w)
			}
		}
		if _, err := b.Lookup(tc.currency, tc.market, events.CategoryMarketing, day); err != tc.kind {
			t.Errorf("Lookup(%s, %s): %v, want the bare %v", tc.currency, tc.market, err, tc.kind)
		}
	}
}

const markets = "market,India\nmarket,Other\nprefix,91,India,,\n"

func TestLoadErrors(t *testing.T) {
	for name, c := range map[string]struct {
		files map[string]string
		want  string
	}{
		"unknown market": {map[string]string{"m.csv": markets,
			"c.csv": "card,currency,USD\ncard,effective_from,2025-07-01\nrate,Atlantis,marketing,,1\n"},
			`c.csv:3: unknown market "Atlantis"`},
		"unknown category": {map[string]string{"m.csv": markets,
			"c.csv": "card,currency,USD\ncard,effective_from,2025-07-01\nrate,India,gossip,,1\n"},
			`c.csv:3: unknown category "gossip"`},
		"negative price": {map[string]string{"m.csv": markets,
			"c.csv": "card,currency,USD\ncard,effective_from,2025-07-01\n\nrate,India,marketing,,-0.01\n"},
			`c.csv:4: negative price -0.01`},
		"missing currency": {map[string]string{"m.csv": markets,
			"c.csv": "card,effective_from,2025-07-01\nrate,India,marketing,,1\n"},
			`c.csv: rate card has no currency`},
		"overlapping dates": {map[string]string{"m.csv": markets,
			"a.csv": "card,currency,USD\ncard,effective_from,2025-07-01\ncard,effective_until,2025-11-01\nrate,India,marketing,,1\n",
			"b.csv": "card,currency,USD\ncard,effective_from,2025-10-01\nrate,India,marketing,,1\n"},
			`b.csv: card USD@2025-10-01 (USD from 2025-10-01) overlaps card USD@2025-07-01 in a.csv`},
		"same date": {map[string]string{"m.csv": markets,
			"a.csv": "card,currency,USD\ncard,effective_from,2025-07-01\nrate,India,marketing,,1\n",
			"b.csv": "card,currency,USD\ncard,id,other\ncard,effective_from,2025-07-01\nrate,India,marketing,,1\n"},
			`overlaps card`},
		"tier gap": {map[string]string{"m.csv": markets,
			"c.csv": "card,currency,USD\ncard,effective_from,2025-07-01\nrate,India,utility,0:1000,1\nrate,India,utility,2000:MAX,1\n"},
			`tiers not contiguous`},
		"prefix overlap": {map[string]string{"m.csv": markets + "prefix,91,Other,2025-01-01,\n"},
			`m.csv:4: prefix 91: dates overlap the row at m.csv:3`},
		"bad tier": {map[string]string{"m.csv": markets,
			"c.csv": "card,currency,USD\ncard,effective_from,2025-07-01\nrate,India,utility,1000,1\n"},
			`c.csv:3: tier "1000" is not lower:upper`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse(c.files)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to contain %q", err, c.want)
			}
		})
	}
}
