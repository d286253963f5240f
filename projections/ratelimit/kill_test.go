package ratelimit

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/convmeter/convmeter/projections"
	"github.com/convmeter/convmeter/projections/redistest"
)

const (
	envKillChild = "RATELIMIT_KILL_CHILD_NS" // set: this process is the child to be killed
	killBatch    = 1500
)

func killLogs() []*log {
	return []*log{randomLog(0, 99, 5000), randomLog(1, 98, 5000)}
}

// TestKillMidBatch kills a process applying batches with SIGKILL at random moments (twice), then
// finishes the job in a fresh store, as a restarted consumer that re-reads from its last
// committed offset would, and compares with an uninterrupted run: the counters are identical.
func TestKillMidBatch(t *testing.T) {
	if ns := os.Getenv(envKillChild); ns != "" {
		killChild(t, ns)
		return
	}
	rdb, ns := client(t)
	logs := killLogs()
	ref := newStore(t, rdb, ns+"ref:", 2)
	for _, l := range logs {
		applyInBatches(t, ref, l, killBatch)
	}
	want := dump(t, rdb, ref.ns)

	victim := ns + "killed:"
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	for round := range 2 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKillMidBatch$", "-test.count=1")
		cmd.Env = append(os.Environ(), envKillChild+"="+victim)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		applied := 0
		target := 2 + r.IntN(6)
		for sc.Scan() && applied < target {
			if strings.HasPrefix(sc.Text(), "applied ") {
				applied++
			}
		}
		time.Sleep(time.Duration(r.IntN(3000)) * time.Microsecond) // land inside a batch
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		st := cmd.ProcessState.Sys().(syscall.WaitStatus)
		if !st.Signaled() || st.Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: child ended by %v, not SIGKILL (it finished too early?)", round, cmd.ProcessState)
		}
		hw0, _, _ := newStore(t, rdb, victim, 2).HighWater(context.Background(), 0)
		t.Logf("round %d: killed after %d batches reported, partition 0 high-water %d", round, applied, hw0.Offset)
	}
	// Restart: re-read everything from offset 0 (more than a real consumer would) with another
	// batch cut; the high-water marks skip what was applied.
	s := newStore(t, rdb, victim, 2)
	for _, l := range logs {
		applyInBatches(t, s, l, 700)
	}
	if d := diff(want, dump(t, rdb, victim)); d != "" {
		t.Fatalf("killed-and-resumed state differs from the uninterrupted run:\n%s", d)
	}
}

// killChild applies the logs batch by batch, reporting each, until killed. Like a restarted
// consumer it resumes a little before its high-water mark (offsets committed late), so the first
// batch is partly a duplicate.
func killChild(t *testing.T, ns string) {
	opts, err := redis.ParseURL(redistest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	s := newStore(t, rdb, ns, 2)
	logs := killLogs()
	next := make([]int, len(logs))
	for i, l := range logs {
		hw, ok, err := s.HighWater(context.Background(), l.p)
		if err != nil {
			t.Fatal(err)
		}
		for ok && next[i] < len(l.evs) && !l.evs[next[i]].Cause.After(hw) {
			next[i]++
		}
		next[i] = max(0, next[i]-300)
	}
	for {
		for i, l := range logs {
			if next[i] >= len(l.evs) {
				next[i] = 0 // start over: everything is skipped
			}
			end := min(next[i]+killBatch, len(l.evs))
			apply(t, s, projections.Batch{Partition: l.p, Events: l.evs[next[i]:end]})
			fmt.Println("applied", l.p, next[i])
			next[i] = end
		}
	}
}
