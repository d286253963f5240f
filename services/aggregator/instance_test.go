package aggregator

import (
	"os"
	"strings"
	"testing"
)

func TestClientIDRoundTrip(t *testing.T) {
	id := identity{instance: "agg-0", host: "node-a", boot: "b0", pid: 4242, start: 987654}
	got, ok := parseClientID(id.clientID())
	if !ok || got != id {
		t.Fatalf("parse(%q) = %+v, %v; want %+v", id.clientID(), got, ok, id)
	}
	for _, s := range []string{
		"", "kafka-go", "convmeter-aggregator", "convmeter-aggregator|agg-0|node-a|b0|4242",
		"convmeter-aggregator|agg-0|node-a|b0|x|1", "convmeter-aggregator|agg-0|node-a|b0|0|1",
		"convmeter-aggregator||node-a|b0|1|1", "other|agg-0|node-a|b0|1|1", "convmeter-aggregator|agg-0|node-a|b0|1|1|extra",
	} {
		if _, ok := parseClientID(s); ok {
			t.Errorf("parse(%q) accepted a client id clientID never writes", s)
		}
	}
}

// A predecessor is gone only when this host proves it: same boot, and its pid runs nothing or
// another process. Another boot's member (the host name may be a rescheduled pod's), another
// host's, another instance's, or a running one stays.
func TestIdentityGone(t *testing.T) {
	self := identity{instance: "agg-0", host: "node-a", boot: "b1", pid: 100, start: 5000}
	running := map[int]uint64{100: 5000, 7: 300}
	alive := func(pid int) (uint64, bool) { s, ok := running[pid]; return s, ok }
	for _, c := range []struct {
		name string
		prev identity
		want bool
	}{
		{"process ended", identity{"agg-0", "node-a", "b1", 55, 4000}, true},
		{"pid reused by another process", identity{"agg-0", "node-a", "b1", 7, 299}, true},
		{"another boot", identity{"agg-0", "node-a", "b0", 55, 4000}, false},
		{"still running", identity{"agg-0", "node-a", "b1", 7, 300}, false},
		{"itself", self, false},
		{"another host", identity{"agg-0", "node-b", "b9", 55, 4000}, false},
		{"another instance", identity{"agg-1", "node-a", "b1", 55, 4000}, false},
	} {
		if got := self.gone(c.prev, alive); got != c.want {
			t.Errorf("%s: gone = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestSelfIdentityAndProcStart(t *testing.T) {
	self, ok := selfIdentity("agg-0")
	if !ok {
		t.Skip("no /proc: the takeover is off on this system")
	}
	if self.pid != os.Getpid() || self.host == "" || self.boot == "" || self.start == 0 {
		t.Fatalf("self identity %+v", self)
	}
	if start, ok := procStart(os.Getpid()); !ok || start != self.start {
		t.Fatalf("procStart(self) = %d, %v; want %d", start, ok, self.start)
	}
	if _, ok := procStart(1 << 30); ok {
		t.Fatal("procStart found a process with pid 2^30")
	}
	parent := self
	parent.pid = os.Getppid()
	if parent.start, ok = procStart(parent.pid); !ok {
		t.Fatal("no start time for the parent process")
	}
	if self.gone(parent, procStart) {
		t.Fatal("a running process (the parent) proved gone")
	}
	prev := self
	prev.start++
	if !self.gone(prev, procStart) {
		t.Fatal("a pid now held by a process that started at another time is not proved gone")
	}
	if _, ok := selfIdentity("a|b"); ok {
		t.Fatal("an instance name with the separator was accepted")
	}
}

func TestConfigRejectsInstanceWithSeparator(t *testing.T) {
	c := Config{Brokers: []string{"127.0.0.1:1"}, Store: NewMemStore(), Instance: "agg|0"}
	if err := c.defaults(); err == nil || !strings.Contains(err.Error(), "instance") {
		t.Fatalf("instance with '|': err %v, want one naming the instance", err)
	}
	c.Instance = "agg-0"
	if err := c.defaults(); err != nil {
		t.Fatalf("instance agg-0: %v", err)
	}
}
