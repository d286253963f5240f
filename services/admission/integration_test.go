package admission

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/events/testenv"
	"github.com/convmeter/convmeter/projections"
	"github.com/convmeter/convmeter/projections/ratelimit"
	"github.com/convmeter/convmeter/projections/redistest"
	"github.com/convmeter/convmeter/services/admission/loadgen"
)

// seeder builds output events per partition, placing each pair where the partitioner does.
type seeder struct {
	n    int
	logs []projections.Batch
	off  []int64
}

func newSeeder(n int) *seeder {
	s := &seeder{n: n, logs: make([]projections.Batch, n), off: make([]int64, n)}
	for p := range n {
		s.logs[p].Partition = int32(p)
	}
	return s
}

func (s *seeder) add(p int, d events.Payload, t events.UnixTime) {
	s.off[p]++
	id := fmt.Sprintf("in-%d-%d/0", p, s.off[p])
	s.logs[p].Events = append(s.logs[p].Events, events.Event{ID: id, Type: d.EventType(), Time: t,
		Cause: &events.Cause{Partition: int32(p), Offset: s.off[p]}, Data: d})
}

func (s *seeder) pair(pn, pf, user string) (int, events.Account) {
	return events.PartitionString(events.PairKey(pn, user, ""), s.n), events.Account{PhoneNumberID: pn, User: user,
		WABAID: "w-" + pf, PortfolioID: pf, Currency: "USD", Configured: true}
}

func (s *seeder) config(pn, pf, tier string) {
	for p := range s.n {
		s.add(p, &events.AccountConfig{PhoneNumberID: pn, WABAID: "w-" + pf, PortfolioID: pf, TimeZone: "UTC",
			Currency: "USD", MessagingLimitTier: tier}, 0)
	}
}

func (s *seeder) apply(t testing.TB, st *ratelimit.Store) {
	t.Helper()
	for _, b := range s.logs {
		if err := st.Apply(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
}

// TestAdmissionOverRedis: 250 distinct users reached through two numbers of one portfolio, in two
// partitions: a 251st user is refused with the time headroom returns, a user already counted is
// allowed and priced from the example rate cards.
func TestAdmissionOverRedis(t *testing.T) {
	rdb, ns := redistest.Client(t)
	store, err := ratelimit.NewStore(rdb, ratelimit.WithNamespace(ns), ratelimit.WithPartitions(2))
	if err != nil {
		t.Fatal(err)
	}
	s := newSeeder(2)
	s.config("n1", "pf1", "TIER_250")
	s.config("n2", "pf1", "TIER_250")
	for i := range 250 {
		pn := []string{"n1", "n2"}[i%2]
		user := fmt.Sprintf("1415555%04d", i)
		p, a := s.pair(pn, "pf1", user)
		s.add(p, &events.MessageDelivered{Account: a, WAMID: "w" + user, DeliveredAt: tPMP + events.UnixTime(i), Kind: events.KindTemplate, TemplateCategory: events.CategoryMarketing}, tPMP+events.UnixTime(i))
	}
	s.apply(t, store)
	h, err := New(store, BookPricer{Book: book(t)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	at := tPMP + ratelimit.Hour
	ask := func(user string) Decision {
		body := fmt.Sprintf(`{"phone_number_id":"n2","user":%q,"kind":"template","category":"marketing","at":%d}`, user, at)
		resp, err := http.Post(srv.URL+"/v1/admission", "application/json", bytes.NewReader([]byte(body)))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var d Decision
		if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
			t.Fatal(err)
		}
		return d
	}
	d := ask("14155559999")
	if d.Allowed || len(d.Refusals) != 1 || d.Refusals[0].Reason != ReasonMessagingLimit || d.Refusals[0].RetryAt != tPMP+ratelimit.Day {
		t.Errorf("251st user: %+v", d)
	}
	if d.Limit.Used != 250 || !d.Limit.UsedExact || d.Limit.Scope != ratelimit.PortfolioScope("pf1") {
		t.Errorf("limit info %+v", d.Limit)
	}
	d = ask("14155550007")
	if !d.Allowed || !d.Charged || d.Price == nil || d.Price.Amount != "0.025" || d.Price.Market != "North America" {
		t.Errorf("counted user: %+v price %+v %s", d, d.Price, d.PriceError)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/limits/portfolios/pf1?at="+strconv.FormatInt(int64(at), 10), nil))
	var st ratelimit.LimitStatus
	if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil {
		t.Fatal(err)
	}
	if st.Used != 250 || st.Headroom != 0 || st.HeadroomAt != tPMP+ratelimit.Day || !st.UpgradeEligible || st.NextTier != ratelimit.Tier2K {
		t.Errorf("portfolio status %+v", st)
	}
}

// TestAdmissionLoad runs the open-loop load generator against the API on loopback over a seeded
// real Redis. By default a short smoke run (200 requests/s for 1 s); scripts/bench-ratelimit.sh
// sets ADMISSION_LOAD_RATE and ADMISSION_LOAD_SECONDS for the measured run.
func TestAdmissionLoad(t *testing.T) {
	rate, secs := 200, 1
	bench := false // set by scripts/bench-ratelimit.sh: report, do not judge
	if v, err := strconv.Atoi(os.Getenv("ADMISSION_LOAD_RATE")); err == nil && v > 0 {
		rate, bench = v, true
	}
	if v, err := strconv.Atoi(os.Getenv("ADMISSION_LOAD_SECONDS")); err == nil && v > 0 {
		secs = v
	}
	var shared time.Duration
	if v, err := strconv.Atoi(os.Getenv("ADMISSION_SHARED_MS")); err == nil && v > 0 {
		shared = time.Duration(v) * time.Millisecond
	}
	batching := os.Getenv("ADMISSION_BATCH") != "0" // 0: every admission sends its own pipeline
	rdb, ns := redistest.Client(t)
	const partitions = 12
	store, err := ratelimit.NewStore(rdb, ratelimit.WithNamespace(ns), ratelimit.WithPartitions(partitions),
		ratelimit.WithSharedState(shared), ratelimit.WithAdmissionBatching(batching))
	if err != nil {
		t.Fatal(err)
	}
	// 20 numbers in 4 portfolios, 20,000 users, 60,000 deliveries and dispatches over 12 partitions.
	s := newSeeder(partitions)
	for n := range 20 {
		s.config(fmt.Sprintf("n%d", n), fmt.Sprintf("pf%d", n%4), "TIER_10K")
	}
	for i := range 60000 {
		pn, pf := fmt.Sprintf("n%d", i%20), fmt.Sprintf("pf%d", i%20%4)
		user := fmt.Sprintf("9198%08d", i%20000)
		p, a := s.pair(pn, pf, user)
		at := tPMP + events.UnixTime(i/10)
		if i%2 == 0 {
			s.add(p, &events.MessageDelivered{Account: a, WAMID: fmt.Sprintf("w%d", i), DeliveredAt: at, Kind: events.KindTemplate}, at)
		} else {
			s.add(p, &events.MessageDispatched{Account: a, WAMID: fmt.Sprintf("w%d", i), SentAt: at, Kind: events.KindTemplate}, at)
		}
	}
	s.apply(t, store)
	h, err := New(store, BookPricer{Book: book(t)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	at := tPMP + 6000
	bodies := make([][]byte, 4096)
	for i := range bodies {
		kind, cat := "template", "marketing"
		if i%4 == 3 {
			kind, cat = "free_form", ""
		}
		bodies[i] = fmt.Appendf(nil, `{"phone_number_id":"n%d","user":"9198%08d","kind":%q,"category":%q,"at":%d}`,
			i%20, (i*7919)%30000, kind, cat, at)
	}
	// Warm up: connections, the scripts, the account cache.
	if _, err := loadgen.Run(context.Background(), loadgen.Config{URL: srv.URL + "/v1/admission", Rate: min(rate, 1000),
		Duration: 500 * time.Millisecond, Body: func(i int) []byte { return bodies[i%len(bodies)] }}); err != nil {
		t.Fatal(err)
	}
	cpu0, rcpu0 := testenv.ProcessCPU(), redistest.ServerCPU(t, rdb)
	res, err := loadgen.Run(context.Background(), loadgen.Config{URL: srv.URL + "/v1/admission", Rate: rate,
		Duration: time.Duration(secs) * time.Second, Body: func(i int) []byte { return bodies[i%len(bodies)] }})
	if err != nil {
		t.Fatal(err)
	}
	// CPU per request, the capacity figure that does not depend on what else the machine runs:
	// this process (load generator + HTTP server + handler + Redis client) and the Redis server.
	perReq := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(max(res.Sent, 1)) }
	cpu, rcpu := perReq(testenv.ProcessCPU()-cpu0), perReq(redistest.ServerCPU(t, rdb)-rcpu0)
	t.Logf("admission load: %s", res)
	fmt.Printf("ADMISSION_LOAD rate_target=%d partitions=%d shared_ttl=%v batching=%v %s cpu_us_per_req_process=%.0f cpu_us_per_req_redis=%.1f\n",
		rate, partitions, shared, batching, res, cpu, rcpu)
	if bench {
		return
	}
	if res.Failed > 0 {
		t.Errorf("%d requests failed, first: %s", res.Failed, res.FirstError)
	}
	if res.OK != rate*secs {
		t.Errorf("%d answers, want %d", res.OK, rate*secs)
	}
}
