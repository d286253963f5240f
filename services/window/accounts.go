package window

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/convmeter/convmeter/events"
)

// account is one version of a phone number's account facts (A4), with its time zone loaded.
type account struct {
	cfg *events.AccountConfig // nil: no configuration covers the event
	loc *time.Location

	// The last month returned (outputs of one pair and period mostly share it), so month
	// allocates its string once per month rather than once per output. Only configured accounts
	// (one engine's own) use it; unconfigured, shared by all engines, never calls month.
	monthY    int
	monthM    time.Month
	monthName string
}

var unconfigured = &account{loc: time.UTC}

// date returns the local date of t in the WABA's time zone as yyyymmdd.
func (a *account) date(t int64) int {
	y, m, d := time.Unix(t, 0).In(a.loc).Date()
	return y*10000 + int(m)*100 + d
}

// month returns "YYYY-MM" of t in the WABA's time zone.
func (a *account) month(t int64) string {
	y, m, _ := time.Unix(t, 0).In(a.loc).Date()
	if a.monthName != "" && y == a.monthY && m == a.monthM {
		return a.monthName
	}
	b := [7]byte{byte('0' + y/1000%10), byte('0' + y/100%10), byte('0' + y/10%10), byte('0' + y%10), '-', byte('0' + int(m)/10), byte('0' + int(m)%10)}
	a.monthY, a.monthM, a.monthName = y, m, string(b[:])
	return a.monthName
}

// authIntl reports whether an authentication template delivered to user at t bills at the
// authentication-international rate (§2.2): the business is eligible from StartTime on and the
// user's calling code is one of the listed countries.
func (a *account) authIntl(user string, t int64) bool {
	if a.cfg == nil || a.cfg.AuthIntl == nil || t < int64(a.cfg.AuthIntl.StartTime) {
		return false
	}
	for _, cc := range a.cfg.AuthIntl.CallingCodes {
		if cc != "" && strings.HasPrefix(user, cc) {
			return true
		}
	}
	return false
}

// accounts holds every phone number's configuration versions, resolved by event time, so the order
// in which configurations arrive does not change which applies to an event.
type accounts struct {
	byNumber map[string][]*account // sorted by EffectiveFrom
	zones    map[string]*time.Location
	gen      uint64 // counts the versions put: what resolve answers may have changed when it moves
}

func newAccounts() *accounts {
	return &accounts{byNumber: map[string][]*account{}, zones: map[string]*time.Location{}}
}

// put adds a configuration version. A version with the same EffectiveFrom replaces the old one.
func (as *accounts) put(c *events.AccountConfig) error {
	loc, ok := as.zones[c.TimeZone]
	if !ok {
		l, err := time.LoadLocation(c.TimeZone)
		if err != nil {
			return fmt.Errorf("account %s: time zone %q: %w", c.PhoneNumberID, c.TimeZone, err)
		}
		as.zones[c.TimeZone], loc = l, l
	}
	vs := as.byNumber[c.PhoneNumberID]
	i := sort.Search(len(vs), func(i int) bool { return vs[i].cfg.EffectiveFrom >= c.EffectiveFrom })
	a := &account{cfg: c, loc: loc}
	if i < len(vs) && vs[i].cfg.EffectiveFrom == c.EffectiveFrom {
		vs[i] = a
	} else {
		vs = append(vs, nil)
		copy(vs[i+1:], vs[i:])
		vs[i] = a
	}
	as.byNumber[c.PhoneNumberID] = vs
	as.gen++
	return nil
}

// resolve returns the version in force for number at t: the newest with EffectiveFrom <= t, or the
// oldest when t is before all of them (facts are stated from when they were first known), or
// unconfigured when the number has none.
func (as *accounts) resolve(number string, t int64) *account {
	vs := as.byNumber[number]
	if len(vs) == 0 {
		return unconfigured
	}
	i := sort.Search(len(vs), func(i int) bool { return int64(vs[i].cfg.EffectiveFrom) > t })
	if i == 0 {
		return vs[0]
	}
	return vs[i-1]
}

// all returns every configuration version, ordered by number and time (for snapshots).
func (as *accounts) all() []*events.AccountConfig {
	numbers := make([]string, 0, len(as.byNumber))
	for n := range as.byNumber {
		numbers = append(numbers, n)
	}
	sort.Strings(numbers)
	var out []*events.AccountConfig
	for _, n := range numbers {
		for _, a := range as.byNumber[n] {
			out = append(out, a.cfg)
		}
	}
	return out
}
