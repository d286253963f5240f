package projector

import (
	"context"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/events/kafkatest"
	"github.com/convmeter/convmeter/events/kafkax"
	"github.com/convmeter/convmeter/events/testenv"
	"github.com/convmeter/convmeter/projections/billing"
	"github.com/convmeter/convmeter/projections/ratecard"
	"github.com/convmeter/convmeter/services/projector/projectortest"
)

// TestRedisRestoredFromOlderState runs a billing projector against a Redis server of its own that
// persists by RDB snapshots only, and kills that server with SIGKILL after the projector has
// applied and committed records the last snapshot does not hold. Restarted, Redis holds the state
// of the snapshot while the consumer group's offsets are past it: the records in between were
// committed but their effect is gone, as after a restore from a backup, a failover to a replica
// that lagged, or an append-only file that lost its last second. The projector, running all
// along, must notice it at its next batch (the store's log position is behind the batch), read
// them from the log again, and end with the ledger of an uninterrupted apply. When retention has
// deleted some of them meanwhile (DeleteRecords), it must read the rest, end with the ledger of
// the log without the deleted ones, and count those as lost.
func TestRedisRestoredFromOlderState(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a Redis server in -short mode")
	}
	t.Run("within retention", func(t *testing.T) { restoredFromOlderState(t, 0, false) })
	t.Run("past retention", func(t *testing.T) { restoredFromOlderState(t, 300, false) })
	t.Run("no record after", func(t *testing.T) { restoredFromOlderState(t, 0, true) })
}

// restoredFromOlderState is the scenario; deleted records of partition 0 that the snapshot lacks
// are deleted from the log before the projector notices. With idle, nothing is published after
// the restart: the projector's idle check (Config.CheckEvery) must find the loss.
func restoredFromOlderState(t *testing.T, deleted int, idle bool) {
	const partitions = 4
	bin := testenv.Tool(t, "apt-get install redis-server", "redis-server")
	srv := startRedis(t, bin, t.TempDir())
	rdb := redis.NewClient(&redis.Options{Addr: srv.addr, MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	ctx := context.Background()
	book, err := ratecard.Load(cardsPath)
	if err != nil {
		t.Fatal(err)
	}
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.Topic(t, brokers, partitions)

	// Three parts of each partition's history: a (in the snapshot), b (applied, committed, lost
	// with the kill), c (published after the restart).
	hist := synth(12_000, partitions)
	var a, b, c [][]events.Event
	total := 0
	for _, evs := range hist {
		i, j := len(evs)*2/5, len(evs)*4/5
		a, b, c = append(a, evs[:i]), append(b, evs[i:j]), append(c, evs[j:])
		total += len(evs)
	}
	count := func(h [][]events.Event) (n int64) {
		for _, evs := range h {
			n += int64(len(evs))
		}
		return n
	}
	if deleted > len(b[0]) {
		t.Fatalf("cannot delete %d of the %d lost records of partition 0", deleted, len(b[0]))
	}

	// The reference: the log as the projector can still read it, applied without interruption.
	ref, err := billing.NewStore(rdb, "ref:", book, nil)
	if err != nil {
		t.Fatal(err)
	}
	if idle {
		c = make([][]events.Event, partitions)
		total = int(count(a) + count(b))
	}
	readable := make([][]events.Event, partitions)
	for p := range readable {
		readable[p] = append(append([]events.Event{}, a[p]...), b[p]...)
		readable[p] = append(readable[p], c[p]...)
	}
	readable[0] = append(append([]events.Event{}, a[0]...), readable[0][len(a[0])+deleted:]...)
	projectortest.ApplyAll(t, ref, readable, 1000)
	want := ledgerDump(t, ref)

	store, err := billing.NewStore(rdb, "live:", book, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := NewMetrics(billing.Name)
	check := time.Duration(-1) // the next batch finds the loss
	if idle {
		check = 200 * time.Millisecond // no next batch: the idle check must
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- Run(rctx, Config{Brokers: brokers, Topic: topic, Group: kafkatest.Name(t), MaxBatch: 500, CheckEvery: check,
			RetryMin: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond, Metrics: m,
			ReaderOptions: []kafkax.ReaderOption{kafkax.WithSessionTimeout(6 * time.Second)}}, store, nil)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	// committed waits until the projector has committed n records and applied through cause
	// offsets summing to applied.
	committed := func(n, applied int64) {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for value(m.records) < float64(n) || progress(ctx, store, partitions) < applied {
			if time.Now().After(deadline) {
				t.Fatalf("the projector committed %v records and applied %d; want %d and %d",
					value(m.records), progress(ctx, store, partitions), n, applied)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	projectortest.Publish(t, brokers, topic, a)
	committed(count(a), count(a))
	if err := rdb.Save(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	projectortest.Publish(t, brokers, topic, b)
	committed(count(a)+count(b), count(a)+count(b))
	if !idle && ledgerDump(t, store) == want {
		t.Fatal("the ledger is complete before the last part was published: the test checks nothing")
	}

	srv.kill()
	startRedis(t, bin, srv.dir, srv.port) // loads the snapshot; the test's cleanup stops it
	// (Idle, the projector's check may have begun reading them again already; the refilled
	// count below says what was lost.)
	if got := progress(ctx, store, partitions); got != count(a) && !idle {
		t.Fatalf("after the restart Redis holds %d applied records; want the snapshot's %d", got, count(a))
	}
	if deleted > 0 {
		kafkatest.DeleteRecords(t, brokers, topic, 0, int64(len(a[0])+deleted))
	}
	if !idle {
		projectortest.Publish(t, brokers, topic, c)
	}
	committed(int64(total), int64(total))
	if got := ledgerDump(t, store); got != want {
		t.Fatalf("the ledger after Redis lost %d committed records (%d of them deleted from the log) differs from the reference (%d vs %d bytes)",
			count(b), deleted, len(got), len(want))
	}
	if got := value(m.refilledRecords); got != float64(count(b)-int64(deleted)) {
		t.Errorf("refilled %v records; want the %d Redis lost that the log still has", got, count(b)-int64(deleted))
	}
	if got := value(m.lostRecords); got != float64(deleted) {
		t.Errorf("%v records reported lost to retention; want %d", got, deleted)
	}
	t.Logf("Redis restarted from a snapshot without %d committed records, %d of them deleted from the log, %d records published after; the projector read the rest again and the ledger equals the reference (%d records)",
		count(b), deleted, count(c), total)
}

// redisProc is a redis-server process of a test's own.
type redisProc struct {
	cmd  *exec.Cmd
	dir  string
	port int
	addr string
}

// startRedis starts redis-server in dir (its RDB file there, no append-only file), on port or,
// when none is given, a free one, and waits until it answers.
func startRedis(t *testing.T, bin, dir string, port ...int) *redisProc {
	t.Helper()
	p := &redisProc{dir: dir}
	if len(port) > 0 {
		p.port = port[0]
	} else {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p.port = ln.Addr().(*net.TCPAddr).Port
		_ = ln.Close()
	}
	p.addr = "127.0.0.1:" + strconv.Itoa(p.port)
	p.cmd = exec.Command(bin, "--port", strconv.Itoa(p.port), "--bind", "127.0.0.1", "--dir", dir,
		"--dbfilename", "dump.rdb", "--appendonly", "no", "--save", "", "--daemonize", "no", "--loglevel", "warning")
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.kill)
	c := redis.NewClient(&redis.Options{Addr: p.addr})
	defer c.Close()
	for deadline := time.Now().Add(10 * time.Second); c.Ping(context.Background()).Err() != nil; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on %s did not answer", p.addr)
		}
	}
	return p
}

// kill kills the server with SIGKILL and waits for it; a second call does nothing.
func (p *redisProc) kill() {
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
}

// value reads a counter.
func value(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}
