package billing

import (
	"encoding/csv"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHandler(t *testing.T) {
	s := newStore(t, exampleBook(t))
	for p, evs := range julyHistory() {
		apply(t, s, p, evs...)
	}
	h, err := NewHandler(s, nil)
	if err != nil {
		t.Fatal(err)
	}
	get := func(url string, want int) *httptest.ResponseRecorder {
		t.Helper()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, url, nil))
		if rec.Code != want {
			t.Fatalf("GET %s: %d %.300s, want %d", url, rec.Code, rec.Body, want)
		}
		return rec
	}
	var tt Totals
	if err := json.Unmarshal(get("/billing/totals?waba=W1&month=2025-07", 200).Body.Bytes(), &tt); err != nil {
		t.Fatal(err)
	}
	if tt.Total.Amount != "1.499" || tt.Total.Lines != 1008 {
		t.Errorf("totals over HTTP = %+v", tt.Total)
	}
	// Paging: 1008 lines in pages of 400 → 400, 400, 208, in (time, id) order, no repeats.
	seen := map[string]bool{}
	cursor, pages := "", 0
	var last *OrderKey
	for {
		var pg LinePage
		if err := json.Unmarshal(get("/billing/lines?waba=W1&month=2025-07&limit=400&cursor="+cursor, 200).Body.Bytes(), &pg); err != nil {
			t.Fatal(err)
		}
		pages++
		for _, l := range pg.Lines {
			if seen[l.ID] {
				t.Fatalf("line %s on two pages", l.ID)
			}
			seen[l.ID] = true
			if last != nil && !last.Less(l.Key()) {
				t.Fatalf("line %s out of (time, id) order", l.ID)
			}
			k := l.Key()
			last = &k
		}
		if pg.Next == "" {
			break
		}
		cursor = pg.Next
	}
	if pages != 3 || len(seen) != 1008 {
		t.Errorf("%d pages, %d lines; want 3 and 1008", pages, len(seen))
	}
	rows, err := csv.NewReader(strings.NewReader(get("/billing/lines.csv?waba=W1&month=2025-07", 200).Body.String())).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1009 || strings.Join(rows[0], ",") != strings.Join(CSVHeader, ",") {
		t.Errorf("csv: %d rows, header %v", len(rows), rows[0])
	}
	get("/billing/totals?waba=W1&month=2025-7", 400)
	get("/billing/lines?waba=W1&month=2025-07&cursor=!!!", 400)
	get("/billing/lines?waba=W1&month=2025-07&limit=5000", 400)
	body := get("/billing/price?currency=USD&market=India&category=utility&n=1001&day=2025-07-15", 200).Body.String()
	if !strings.Contains(body, `"amount":"0.0012"`) {
		t.Errorf("price quote = %s", body)
	}
	get("/billing/price?currency=EUR&market=India&category=utility&day=2025-07-15", 404)
}
