package dashboard

import (
	"reflect"
	"testing"
	"time"

	"github.com/convmeter/convmeter/events"
)

// TestMonths: the month shown is the month of the moment in the WABA's own time zone.
func TestMonths(t *testing.T) {
	at := events.FromTime(time.Date(2026, 1, 31, 20, 0, 0, 0, time.UTC))
	for _, tc := range []struct {
		tz   string
		want []string
	}{
		{"UTC", []string{"2026-01", "2025-12", "2025-11"}},
		{"Asia/Kolkata", []string{"2026-02", "2026-01", "2025-12"}}, // 01:30 on 1 February
		{"America/Sao_Paulo", []string{"2026-01", "2025-12", "2025-11"}},
		{"", []string{"2026-01", "2025-12", "2025-11"}},
		{"Not/AZone", []string{"2026-01", "2025-12", "2025-11"}},
	} {
		m, ms := months(at, tc.tz, 3)
		if m != tc.want[0] || !reflect.DeepEqual(ms, tc.want) {
			t.Errorf("%q: %s %v, want %v", tc.tz, m, ms, tc.want)
		}
	}
}
