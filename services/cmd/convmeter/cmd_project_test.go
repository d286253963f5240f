package main

import (
	"bytes"
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
