package admission

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

var requestSeeds = []string{
	`{"phone_number_id":"n1","user":"14155550000","kind":"template","category":"marketing","at":1761955200}`,
	` { "phone_number_id" : "n1" ,"user":"+1415","kind":"free_form","at":0 }trailing`,
	`{"phone_number_id":"n1","user":"1","kind":"template","at":"1761955200"}`,
	`{"phone_number_id":"n1","user":"1","kind":"template","at":-5}`,
	`{"phone_number_id":"n1","user":"1","kind":"template","at":-0}`,
	`{"phone_number_id":"n1","user":"1","kind":"template","at":012}`,
	`{"phone_number_id":"n1","user":"1","kind":"template","at":1.5}`,
	`{"phone_number_id":"n1","user":"1","kind":"template","at":1e3}`,
	`{"phone_number_id":"n1","user":"1","kind":"template","at":null}`,
	`{"phone_number_id":"n1","user":"1","kind":"template","at":1234567890123456789}`,
	`{"Phone_Number_ID":"n1"}`,
	`{"phone_number_id":"n\u00e9"}`,
	`{"phone_number_id":"né"}`,
	`{"phone_number_id":"n\"1"}`,
	`{"phone_number_id":null}`,
	`{"phone_number_id":1}`,
	`{"phone_number_id":"a","phone_number_id":"b"}`,
	`{"extra":"x"}`,
	`{"user":"1",}`,
	`{"user":"1"`,
	`{}`,
	`[]`,
	``,
	`{"user":"1"}{"user":"2"}`,
	"{\"user\":\"a\tb\"}",
}

// FuzzParseRequest: whenever the direct parser accepts a body, encoding/json (with unknown
// fields refused, as the handler decodes) accepts it too and decodes the same request.
func FuzzParseRequest(f *testing.F) {
	for _, s := range requestSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, ok := parseRequest(b)
		if !ok {
			return
		}
		var want Request
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&want); err != nil {
			t.Fatalf("%q: parsed %+v, encoding/json: %v", b, got, err)
		}
		if got != want {
			t.Fatalf("%q: parsed %+v, encoding/json %+v", b, got, want)
		}
	})
}

// TestDecodeRequest: the handler's decoding answers as the plain encoding/json decoding of the
// limited body did, error text included, for the bodies the direct parser takes and for those it
// leaves to encoding/json, bodies over the limit included.
func TestDecodeRequest(t *testing.T) {
	bodies := append([]string{`{"user":"` + strings.Repeat("1", maxBody) + `"}`,
		`{"user":"1"}` + strings.Repeat(" ", maxBody)}, requestSeeds...)
	direct := 0
	for _, s := range bodies {
		got, err := decodeRequest(httptest.NewRecorder(), httptest.NewRequest("POST", "/v1/admission", strings.NewReader(s)))
		var want Request
		dec := json.NewDecoder(http.MaxBytesReader(httptest.NewRecorder(), io.NopCloser(strings.NewReader(s)), maxBody))
		dec.DisallowUnknownFields()
		wantErr := dec.Decode(&want)
		if fmt.Sprint(err) != fmt.Sprint(wantErr) || got != want {
			t.Errorf("%.60q: %+v, %v; want %+v, %v", s, got, err, want, wantErr)
		}
		if _, ok := parseRequest([]byte(s)); ok {
			direct++
		}
	}
	if direct < 5 {
		t.Errorf("only %d bodies parsed directly", direct)
	}
}
