package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestDevAndAPIArguments(t *testing.T) {
	noEnv := func(string) string { return "" }
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"dev", "extra"}, "unexpected arguments"},
		{[]string{"dev", "-speedup", "0"}, "speedup must not be 0"},
		{[]string{"dev", "-sim-days", "-1"}, "sim-days must not be negative"},
		{[]string{"dev", "-sim-wabas", "5", "-sim-numbers", "2"}, "-sim-wabas <= -sim-numbers"},
		{[]string{"dev", "-ratecards", "/nonexistent/cards"}, "nonexistent"},
		{[]string{"api"}, "set -partitions"},
		{[]string{"api", "-partitions", "4"}, "no Redis"},
	} {
		var stderr bytes.Buffer
		if code := run(tc.args, noEnv, &stderr); code != 2 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, stderr.String(), tc.want)
		}
	}
}
