package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestProjectAndIngestArguments(t *testing.T) {
	env := func(k string) string {
		return map[string]string{envBrokers: "127.0.0.1:1", envRedisURL: "redis://127.0.0.1:1/0"}[k]
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"project"}, "which projection"},
		{[]string{"project", "ledger"}, `unknown projection "ledger"`},
		{[]string{"project", "billing", "extra"}, "unexpected arguments"},
		{[]string{"ingest"}, "CONVMETER_VERIFY_TOKEN"},
	} {
		var stderr bytes.Buffer
		if code := run(tc.args, env, &stderr); code != 2 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, stderr.String(), tc.want)
		}
	}
}

func TestHealthcheck(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/down" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	env := func(string) string { return "" }
	var stderr bytes.Buffer
	if code := run([]string{"healthcheck", srv.URL + "/up"}, env, &stderr); code != 0 {
		t.Fatalf("healthy endpoint: exit %d: %s", code, stderr.String())
	}
	if code := run([]string{"healthcheck", srv.URL + "/down"}, env, &stderr); code != 1 {
		t.Fatalf("unhealthy endpoint: exit %d, want 1", code)
	}
	if code := run([]string{"healthcheck", "-want", "503", srv.URL + "/down"}, env, &stderr); code != 0 {
		t.Fatalf("wanted status: exit %d", code)
	}
}
