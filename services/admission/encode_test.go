package admission

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"net/http/httptest"
	"testing"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/projections/ratelimit"
)

// TestWriteDecisionAsEncodingJSON: the hand-written encoding of a Decision is byte for byte what
// json.Encoder writes, for decisions with every optional field empty or set and strings that
// need escaping (quotes, HTML characters, control characters, non-ASCII, invalid UTF-8).
func TestWriteDecisionAsEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	strs := []string{"", "marketing", "a\"b", `back\slash`, "<b>&</b>", "tab\there", "é ü 中", "\xff\xfe", "\u2028", "x"}
	str := func() string { return strs[rng.IntN(len(strs))] }
	num := func() int64 { return []int64{0, 1, -1, 1761955200, 1 << 40}[rng.IntN(5)] }
	for i := range 2000 {
		d := Decision{Allowed: rng.IntN(2) == 0, At: events.UnixTime(num()),
			PricingModel: events.PricingModel(str()), Category: events.Category(str()), PriceCategory: events.Category(str()),
			PricingType: events.PricingType(str()), Charged: rng.IntN(2) == 0, OpensConversation: rng.IntN(2) == 0,
			ConversationCategory: events.Category(str()), CoveredBy: str(), OpensFEP: rng.IntN(2) == 0, Why: str(),
			ServiceWindow: WindowInfo{Open: rng.IntN(2) == 0, ExpiresAt: events.UnixTime(num()), FEPOpen: rng.IntN(2) == 0},
			Limit: LimitInfo{Scope: ratelimit.Scope(str()), Tier: ratelimit.Tier(str()), Limit: num(), Unlimited: rng.IntN(2) == 0,
				Used: num(), UsedExact: rng.IntN(2) == 0, UserCounted: rng.IntN(2) == 0, Counts: rng.IntN(2) == 0},
			PairRate:   PairRateInfo{Tokens: num(), RetryAfter: num()},
			Throughput: ThroughputInfo{Current: num(), LimitMPS: int(num())},
			PriceError: str()}
		for range rng.IntN(3) {
			d.Refusals = append(d.Refusals, Refusal{Reason: str(), ErrorCode: int(num()), RetryAt: events.UnixTime(num()), Detail: str()})
		}
		if i%7 == 0 {
			d.Refusals = []Refusal{} // empty, not nil: omitted as well
		}
		if rng.IntN(2) == 0 {
			d.Price = &Price{Currency: str(), Market: str(), Category: events.Category(str()), CardID: str(),
				AmountMicros: num(), Amount: str(), List: rng.IntN(2) == 0}
		}
		var want bytes.Buffer
		if err := json.NewEncoder(&want).Encode(d); err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		writeDecision(rec, &d)
		if got := rec.Body.String(); got != want.String() {
			t.Fatalf("decision %d:\n got %s\nwant %s", i, got, want.String())
		}
		if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("status %d, content type %q", rec.Code, rec.Header().Get("Content-Type"))
		}
	}
}
