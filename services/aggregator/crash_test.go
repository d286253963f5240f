package aggregator_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/convmeter/convmeter/events/kafkatest"
	"github.com/convmeter/convmeter/events/kafkax"
	"github.com/convmeter/convmeter/projections/redistest"
	"github.com/convmeter/convmeter/services/aggregator/internal/crosscheck"
	"github.com/segmentio/kafka-go"
)

var binaries struct {
	once sync.Once
	dir  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binaries.dir != "" {
		_ = os.RemoveAll(binaries.dir)
	}
	os.Exit(code)
}

// binary returns the path of a command built once per test binary without -race: the crash
// tests kill the aggregator, whose speed is the point, and the reference check runs many times
// faster uninstrumented.
func binary(t testing.TB, name string) string {
	t.Helper()
	binaries.once.Do(func() {
		binaries.dir, binaries.err = os.MkdirTemp("", "convmeter-aggregator-test")
		if binaries.err != nil {
			return
		}
		out, err := exec.Command("go", "build", "-o", binaries.dir+string(os.PathSeparator),
			"github.com/convmeter/convmeter/services/cmd/convmeter",
			"github.com/convmeter/convmeter/services/aggregator/internal/crosscheck/cmd/crosscheck").CombinedOutput()
		if err != nil {
			binaries.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binaries.err != nil {
		t.Fatal(binaries.err)
	}
	return filepath.Join(binaries.dir, name)
}

// crosscheckRun runs the crosscheck helper and returns its standard output.
func crosscheckRun(t *testing.T, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(binary(t, "crosscheck"), args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("crosscheck %s: %v\n%s", args[0], err, stderr.String())
	}
	return out
}

// child is one `convmeter aggregator` process.
type child struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed when the process has exited; err is then set
	err  error
}

func startChild(t testing.TB, bin string, args []string, logPath string) *child {
	t.Helper()
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stderr, cmd.Stdout = f, f
	cmd.Env = append(os.Environ(), "CONVMETER_LOG_LEVEL=debug")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { c.err = cmd.Wait(); f.Close(); close(c.done) }()
	t.Cleanup(func() {
		select {
		case <-c.done:
		default:
			_ = cmd.Process.Kill()
			<-c.done
		}
	})
	return c
}

func (c *child) kill(t testing.TB) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-c.done
}

// stop sends SIGTERM and requires exit status 0 within limit.
func (c *child) stop(t *testing.T, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.done:
		if c.err != nil {
			t.Fatalf("aggregator exited with %v after SIGTERM; log:\n%s", c.err, tailFile(c.log, 30))
		}
	case <-time.After(limit):
		t.Fatalf("aggregator did not exit within %v of SIGTERM", limit)
	}
	return time.Since(start)
}

func tailFile(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// logLines returns the JSON log records of path whose msg is msg.
func logLines(t testing.TB, path, msg string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func httpGet(t testing.TB, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// midSnapshot returns the partitions whose last snapshot in the log at path started and did not
// finish: the kill landed while the engine was being serialised or stored.
func midSnapshot(t *testing.T, path string) []int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	open := map[int]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var rec struct {
			Msg       string `json:"msg"`
			Partition int    `json:"partition"`
		}
		if json.Unmarshal(sc.Bytes(), &rec) != nil {
			continue
		}
		switch rec.Msg {
		case "snapshot start":
			open[rec.Partition] = true
		case "snapshot done":
			open[rec.Partition] = false
		}
	}
	var out []int
	for p, o := range open {
		if o {
			out = append(out, p)
		}
	}
	return out
}

// crashRig is generated input on fresh topics, a snapshot namespace and a consumer group.
type crashRig struct {
	brokers []string
	topics  kafkax.Topics
	parts   int
	group   string
	client  *kafka.Client
	ends    []int64
	args    []string
	dir     string
	prefix  string
	common  []string // crosscheck flags
}

func newCrashRig(t *testing.T, seed uint64, records int) *crashRig {
	brokers := kafkatest.Brokers(t)
	_, snapPrefix := redistest.Client(t)
	r := &crashRig{brokers: brokers, parts: 4, group: kafkatest.Name(t), dir: t.TempDir(), prefix: kafkatest.Name(t),
		client: &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 30 * time.Second}}
	r.topics = testTopics(t, brokers, r.prefix, r.parts)
	start := time.Now()
	r.common = []string{"-brokers", strings.Join(brokers, ","), "-topic-prefix", r.prefix, "-partitions", fmt.Sprint(r.parts)}
	crosscheckRun(t, append([]string{"produce", "-seed", fmt.Sprint(seed), "-records", fmt.Sprint(records)}, r.common...)...)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var err error
	if r.ends, err = endOffsets(ctx, r.client, r.topics.MessageEvents, r.parts); err != nil {
		t.Fatal(err)
	}
	t.Logf("produced %d records %v in %v", sum(r.ends), r.ends, time.Since(start).Round(time.Millisecond))
	r.args = []string{"aggregator", "-brokers", strings.Join(brokers, ","), "-redis", redistest.URL(t), "-topic-prefix", r.prefix,
		"-group", r.group, "-http", "", "-snapshot-prefix", snapPrefix, "-max-batch", "2000", "-snapshot-every", "4000",
		"-session-timeout", "6s", "-shutdown-timeout", "15s"}
	return r
}

// check compares the output and dead-letter topics with the reference run.
func (r *crashRig) check(t *testing.T) crosscheck.Totals {
	t.Helper()
	start := time.Now()
	var tot crosscheck.Totals
	if err := json.Unmarshal(crosscheckRun(t, append([]string{"check"}, r.common...)...), &tot); err != nil {
		t.Fatal(err)
	}
	if tot.Inputs != int(sum(r.ends)) || tot.DeadLetters == 0 || tot.SetAside == 0 || tot.Corrections == 0 {
		t.Fatalf("reference check covered too little: %+v", tot)
	}
	t.Logf("equal to the reference (checked in %v): %+v", time.Since(start).Round(time.Millisecond), tot)
	return tot
}

func (r *crashRig) outputs(t *testing.T) int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ends, err := endOffsets(ctx, r.client, r.topics.ConversationEvents, r.parts)
	if err != nil {
		t.Fatalf("output end offsets: %v", err)
	}
	return sum(ends)
}

func (r *crashRig) finished(t *testing.T) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := committed(ctx, r.client, r.group, r.topics.MessageEvents, r.parts)
	if err != nil {
		return false
	}
	for p := range got {
		if got[p] != r.ends[p] {
			return false
		}
	}
	return true
}

// TestKill9MatchesReference kills `convmeter aggregator` with SIGKILL at random points of a
// 200k-record stream, restarts it each time, and requires the output and dead-letter topics to
// equal the pure reference run event by event: nothing missing, nothing doubled, same ids and
// bytes. Snapshots are taken every 4000 records per partition, so kills land before, between
// and during snapshots and writes.
func TestKill9MatchesReference(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test")
	}
	bin := binary(t, "convmeter")
	r := newCrashRig(t, 11, 200_000)
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 1))
	t.Logf("kill points from seed %d", seed)
	total := sum(r.ends)
	const kills = 5
	killed, midSnapshots := 0, 0
	for i := 0; i < kills; i++ {
		base := r.outputs(t)
		target := base + total/100 + rng.Int64N(total/12)
		c := startChild(t, bin, r.args, filepath.Join(r.dir, fmt.Sprintf("run%d.log", i)))
		deadline := time.Now().Add(2 * time.Minute)
		for r.outputs(t) < target && !r.finished(t) {
			if time.Now().After(deadline) {
				t.Fatalf("run %d made no progress to %d outputs; log:\n%s", i, target, tailFile(c.log, 30))
			}
			time.Sleep(time.Duration(rng.IntN(20)) * time.Millisecond)
		}
		if r.finished(t) {
			c.kill(t)
			t.Logf("run %d: stream finished before kill point", i)
			break
		}
		c.kill(t)
		killed++
		mid := midSnapshot(t, c.log)
		midSnapshots += len(mid)
		t.Logf("run %d: killed at %d outputs (%.0f%%); partitions mid-snapshot: %v", i, r.outputs(t), 100*float64(r.outputs(t))/float64(total), mid)
	}
	if killed < 3 {
		t.Fatalf("only %d kills landed mid-stream", killed)
	}
	finalStart := time.Now()
	last := startChild(t, bin, r.args, filepath.Join(r.dir, "final.log"))
	waitCommitted(t, r.client, r.group, r.topics.MessageEvents, r.ends, 3*time.Minute)
	took := last.stop(t, 30*time.Second)
	t.Logf("final run finished the stream in %v and stopped %v after SIGTERM", time.Since(finalStart).Round(time.Millisecond), took.Round(time.Millisecond))
	restoredFromSnapshot := 0
	for i := 0; i <= kills; i++ {
		path := filepath.Join(r.dir, fmt.Sprintf("run%d.log", i))
		if i == kills {
			path = last.log
		}
		if _, err := os.Stat(path); err != nil {
			continue
		}
		for _, rec := range logLines(t, path, "partition restored") {
			if rec["snapshot"] == true {
				restoredFromSnapshot++
			}
		}
	}
	if restoredFromSnapshot == 0 {
		t.Error("no restart restored a snapshot")
	}
	r.check(t)
	t.Logf("%d kills (%d partitions killed mid-snapshot), %d partition restores from a snapshot", killed, midSnapshots, restoredFromSnapshot)
}

// TestRebalanceMatchesReference starts a second instance mid-stream: the partitions are split
// between the two (each finishes its batch, snapshots and releases on revocation, and restores
// on assignment), and the combined output equals the reference.
func TestRebalanceMatchesReference(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test")
	}
	bin := binary(t, "convmeter")
	r := newCrashRig(t, 12, 200_000)
	total := sum(r.ends)
	addr := freeAddr(t)
	aArgs := append(append([]string(nil), r.args...), "-http", addr) // the last -http wins
	a := startChild(t, bin, aArgs, filepath.Join(r.dir, "a.log"))
	deadline := time.Now().Add(2 * time.Minute)
	for r.outputs(t) < total/6 {
		if time.Now().After(deadline) {
			t.Fatalf("no progress; log:\n%s", tailFile(a.log, 30))
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The running instance is healthy, ready, and counting.
	if code, _ := httpGet(t, "http://"+addr+"/healthz"); code != 200 {
		t.Fatalf("/healthz: %d", code)
	}
	if code, body := httpGet(t, "http://"+addr+"/readyz"); code != 200 {
		t.Fatalf("/readyz while processing: %d %s", code, body)
	}
	if _, body := httpGet(t, "http://"+addr+"/metrics"); !strings.Contains(body, `convmeter_aggregator_events_in_total{type="message.inbound.v1"}`) ||
		!strings.Contains(body, `convmeter_aggregator_live_pairs{partition="0"}`) {
		t.Fatalf("/metrics lacks the aggregator's counters:\n%.2000s", body)
	}
	b := startChild(t, bin, r.args, filepath.Join(r.dir, "b.log"))
	waitCommitted(t, r.client, r.group, r.topics.MessageEvents, r.ends, 3*time.Minute)
	// Both instances must have held partitions after the rebalance.
	lastAssigned := func(c *child) []any {
		recs := logLines(t, c.log, "assigned partitions")
		if len(recs) == 0 {
			return nil
		}
		ps, _ := recs[len(recs)-1]["partitions"].([]any)
		return ps
	}
	pa, pb := lastAssigned(a), lastAssigned(b)
	if len(pa) == 0 || len(pb) == 0 || len(pa)+len(pb) != r.parts {
		t.Fatalf("after the rebalance a holds %v and b holds %v, want a split of %d partitions", pa, pb, r.parts)
	}
	if len(logLines(t, a.log, "released partitions")) == 0 {
		t.Fatal("instance a never released its partitions")
	}
	a.stop(t, 30*time.Second)
	b.stop(t, 30*time.Second)
	r.check(t)
	t.Logf("after the rebalance a held %v, b held %v", pa, pb)
}

// TestKill9InstanceTakesOverAtOnce: with -instance, a process restarted after a SIGKILL removes
// its dead predecessor from the group and restores the partitions at once, not after the
// predecessor's session (20 s here), and the outputs still equal the reference run. A second
// process of the same instance started while the first runs removes nobody: a live member is
// never taken for a dead one.
func TestKill9InstanceTakesOverAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test")
	}
	bin := binary(t, "convmeter")
	r := newCrashRig(t, 12, 60_000)
	args := append(slices.Clone(r.args), "-instance", "agg-0", "-session-timeout", "20s")
	first := startChild(t, bin, args, filepath.Join(r.dir, "first.log"))
	deadline := time.Now().Add(time.Minute)
	for len(logLines(t, first.log, "snapshot done")) < 4 {
		if time.Now().After(deadline) {
			t.Fatalf("no snapshots within a minute; log:\n%s", tailFile(first.log, 20))
		}
		time.Sleep(20 * time.Millisecond)
	}
	first.kill(t)

	start := time.Now()
	second := startChild(t, bin, args, filepath.Join(r.dir, "second.log"))
	for len(logLines(t, second.log, "partition restored")) < r.parts {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("the restarted process had not restored its partitions 10 s after it started (the dead member's session is 20 s); log:\n%s", tailFile(second.log, 20))
		}
		time.Sleep(20 * time.Millisecond)
	}
	restored := time.Since(start)
	if n := len(logLines(t, second.log, "removed a dead member of this instance from the group")); n != 1 {
		t.Fatalf("the restarted process logged %d removals of a dead member, want 1", n)
	}
	t.Logf("partitions restored %v after the restart", restored.Round(time.Millisecond))
	waitCommitted(t, r.client, r.group, r.topics.MessageEvents, r.ends, 2*time.Minute)

	third := startChild(t, bin, args, filepath.Join(r.dir, "third.log"))
	deadline = time.Now().Add(time.Minute)
	for len(logLines(t, third.log, "assigned partitions")) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the third process was not assigned partitions within a minute; log:\n%s", tailFile(third.log, 20))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := len(logLines(t, third.log, "removed a dead member of this instance from the group")); n != 0 {
		t.Fatalf("a process removed a live member of its instance (%d removals)", n)
	}
	third.stop(t, 30*time.Second)
	second.stop(t, 30*time.Second)
	r.check(t)
}
