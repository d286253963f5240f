package window

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/convmeter/convmeter/events"
)

//go:embed timeline.json
var defaultTimeline []byte

// Period is one stretch of the pricing timeline (domain.md A2): from a local date in the WABA's time
// zone until the next period's.
type Period struct {
	From  string              `json:"from"` // YYYY-MM-DD, local date in the WABA's time zone
	Model events.PricingModel `json:"model"`
	// AuthIntl: authentication templates to eligible countries bill as authentication_international.
	AuthIntl bool `json:"auth_intl,omitempty"`
	// ServiceFree: CBP service conversations are free (2024-11-01).
	ServiceFree bool `json:"service_free,omitempty"`
	// FreeServiceMessagesPerNumber is the UNCONFIRMED PMP-2026 allowance; 0 (off) by default. The
	// engine puts it on each charged service message (Charge.FreeAllowance); the billing
	// projection, which sees every pair of a number, makes the first ones of a month free.
	FreeServiceMessagesPerNumber int `json:"free_service_messages_per_number,omitempty"`

	from int // yyyymmdd
}

// Timeline is the pricing timeline, data rather than code branches.
type Timeline struct {
	periods []Period
}

// DefaultTimeline returns the timeline shipped with convmeter.
func DefaultTimeline() *Timeline {
	t, err := ParseTimeline(defaultTimeline)
	if err != nil {
		panic("window: embedded timeline.json: " + err.Error()) // a build defect, caught by tests
	}
	return t
}

// LoadTimeline reads an operator's timeline file.
func LoadTimeline(path string) (*Timeline, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read timeline: %w", err)
	}
	t, err := ParseTimeline(b)
	if err != nil {
		return nil, fmt.Errorf("timeline %s: %w", path, err)
	}
	return t, nil
}

// ParseTimeline parses and validates a timeline document.
func ParseTimeline(b []byte) (*Timeline, error) {
	var doc struct {
		Periods []Period `json:"periods"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("parse timeline: %w", err)
	}
	if len(doc.Periods) == 0 {
		return nil, fmt.Errorf("timeline has no periods")
	}
	for i := range doc.Periods {
		p := &doc.Periods[i]
		d, err := time.Parse("2006-01-02", p.From)
		if err != nil {
			return nil, fmt.Errorf("period %d: from %q: %w", i, p.From, err)
		}
		p.from = d.Year()*10000 + int(d.Month())*100 + d.Day()
		switch p.Model {
		case events.ModelCBP2022, events.ModelCBP2023, events.ModelPMP, events.ModelPMP2026:
		default:
			return nil, fmt.Errorf("period %d (%s): unknown model %q", i, p.From, p.Model)
		}
		if p.FreeServiceMessagesPerNumber < 0 {
			return nil, fmt.Errorf("period %d (%s): negative allowance", i, p.From)
		}
		if i > 0 && p.from <= doc.Periods[i-1].from {
			return nil, fmt.Errorf("period %d (%s): not after the period before it", i, p.From)
		}
	}
	return &Timeline{periods: doc.Periods}, nil
}

// At returns the period in force on a local date given as yyyymmdd. Dates before the first period
// get the first period.
func (t *Timeline) At(yyyymmdd int) *Period {
	i := sort.Search(len(t.periods), func(i int) bool { return t.periods[i].from > yyyymmdd })
	if i == 0 {
		return &t.periods[0]
	}
	return &t.periods[i-1]
}
