package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/convmeter/convmeter/projections/ratecard"
	"github.com/convmeter/convmeter/services/loadgen"
	"github.com/convmeter/convmeter/services/replay"
)

// The child process: the test binary re-executed with envChildArgs set runs the command those
// arguments (JSON) name, as the convmeter binary would, until it ends or is killed.
const envChildArgs = "CONVMETER_CMD_CHILD_ARGS"

func TestMain(m *testing.M) {
	if a := os.Getenv(envChildArgs); a != "" {
		var args []string
		if err := json.Unmarshal([]byte(a), &args); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(2)
		}
		os.Exit(run(args, os.Getenv, os.Stderr))
	}
	os.Exit(m.Run())
}

// TestReplayResumeAfterKill kills a `convmeter replay` process (SIGKILL) once both projections
// have applied a fifth of each partition, resumes the replay and checks that it equals an uninterrupted one: the
// same ledger, counters and high-water marks. Then the namespace management around it: a second
// resume finds it complete, a resume with other rate cards is refused, -list shows both replays,
// -drop deletes one.
func TestReplayResumeAfterKill(t *testing.T) {
	r := newReplayRig(t, loadgen.Config{Seed: 11, WABAs: 2, Numbers: 4, UsersPerNumber: 5000, SessionsPerHour: 4000,
		Duration: 1000 * time.Hour}, 200_000)
	rdb, kp, url, base := r.rdb, r.prefix, r.url, r.args
	live := kp + "live:"
	ctx := context.Background()
	ref, killed := kp+"ref:", kp+"k:"
	if code, out, errs := capture(t, append(base, "-prefix", ref, "-compare=false")...); code != 0 {
		t.Fatalf("uninterrupted replay: exit %d\n%s\n%s", code, out, errs)
	}

	// The replay to kill, in a process of its own, in small batches so that it is killed long
	// before its end.
	book, err := ratecard.Examples()
	if err != nil {
		t.Fatal(err)
	}
	kns, err := replay.OpenNamespace(rdb, killed, book, 2, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	args, _ := json.Marshal(append(base, "-prefix", killed, "-compare=false", "-batch", "500"))
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), envChildArgs+"="+string(args))
	var childErr bytes.Buffer
	child.Stderr = &childErr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- child.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for applied := false; !applied; {
		select {
		case err := <-exited:
			t.Fatalf("the replay ended (%v) before it was killed: too fast to kill\n%s", err, childErr.String())
		default:
		}
		if time.Now().After(deadline) {
			_ = child.Process.Kill()
			t.Fatalf("no batch applied in 60 s\n%s", childErr.String())
		}
		applied = true
		for _, pj := range kns.Projections() {
			for p := int32(0); p < 2; p++ {
				if c, ok, err := pj.HighWater(ctx, p); err != nil {
					t.Fatal(err)
				} else if !ok || c.Offset < int64(r.events)/2/5 {
					applied = false
				}
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-exited
	man, found, err := replay.ReadManifest(ctx, rdb, kns)
	if err != nil || !found || man.Done {
		t.Fatalf("manifest after the kill: %+v found %v, %v (want one, not done)\n%s", man, found, err, childErr.String())
	}

	// Without -resume the namespace is refused; with it the replay finishes.
	if code, _, errs := capture(t, append(base, "-prefix", killed)...); code != 1 || !strings.Contains(errs, "resume it") {
		t.Fatalf("replay into the killed namespace without -resume: exit %d\n%s", code, errs)
	}
	code, out, errs := capture(t, append(base, "-prefix", killed, "-resume", "-compare=false", "-json")...)
	if code != 0 {
		t.Fatalf("resume: exit %d\n%s\n%s", code, out, errs)
	}
	var rep struct{ Replay replay.Stats }
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("resume report: %v\n%s", err, out)
	}
	inLog := int64(0)
	for p := range rep.Replay.HighWater {
		inLog += rep.Replay.HighWater[p] - rep.Replay.First[p]
	}
	if !rep.Replay.Resumed || rep.Replay.AlreadyApplied == 0 || rep.Replay.Records != inLog || inLog < int64(r.events) {
		t.Fatalf("resume stats %+v: want resumed, some outputs already applied, all %d records of the log read", rep.Replay, inLog)
	}
	refNS, err := replay.OpenNamespace(rdb, ref, book, 2, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	diff, err := replay.Compare(ctx, rdb, refNS, kns, 2, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !diff.Equal() || diff.Billing.LinesLive == 0 || diff.Billing.LinesLive != diff.Billing.LinesRebuilt || !diff.RateLimit.Compared {
		var b bytes.Buffer
		_ = diff.WriteText(&b)
		t.Fatalf("the resumed replay differs from the uninterrupted one:\n%s", b.String())
	}
	for _, x := range diff.Positions {
		if x.Live != x.Rebuilt || x.Live == "" {
			t.Fatalf("high-water marks: %+v", diff.Positions)
		}
	}

	// Resumed again: already complete. With other rate cards: refused.
	if code, out, errs := capture(t, append(base, "-prefix", killed, "-resume", "-compare=false")...); code != 0 || !strings.Contains(out, "already complete") {
		t.Fatalf("second resume: exit %d\n%s\n%s", code, out, errs)
	}
	if code, _, errs := capture(t, append(base, "-prefix", killed, "-resume", "-ratecards", editedCards(t))...); code != 1 || !strings.Contains(errs, "other rate cards") {
		t.Fatalf("resume with edited cards: exit %d\n%s", code, errs)
	}

	// -list shows both replays as done; -drop deletes one, keys, manifest and all.
	code, out, errs = capture(t, "replay", "-redis", url, "-live-prefix", live, "-list")
	if code != 0 || !strings.Contains(out, ref) || !strings.Contains(out, killed) || strings.Count(out, "done") != 2 {
		t.Fatalf("-list: exit %d\n%s\n%s", code, out, errs)
	}
	if code, _, errs := capture(t, "replay", "-redis", url, "-live-prefix", live, "-drop", "-prefix", killed); code != 0 {
		t.Fatalf("-drop: exit %d\n%s", code, errs)
	}
	if keys, _, err := rdb.Scan(ctx, 0, killed+"*", 1000).Result(); err != nil || len(keys) != 0 {
		t.Fatalf("after -drop: keys %v, %v", keys, err)
	}
	if code, out, _ := capture(t, "replay", "-redis", url, "-live-prefix", live, "-list"); code != 0 || strings.Contains(out, killed) || !strings.Contains(out, ref) {
		t.Fatalf("-list after -drop: exit %d\n%s", code, out)
	}
	if code, _, errs := capture(t, "replay", "-redis", url, "-live-prefix", live, "-drop", "-prefix", live); code == 0 || !strings.Contains(errs, "live namespace") {
		t.Fatalf("-drop of the live namespace: exit %d\n%s", code, errs)
	}
	// A glob would reach other namespaces' keys (the reference replay's here).
	if code, _, errs := capture(t, "replay", "-redis", url, "-live-prefix", live, "-drop", "-prefix", kp+"*"); code == 0 || !strings.Contains(errs, "glob") {
		t.Fatalf("-drop of a glob: exit %d\n%s", code, errs)
	}
	if keys, _, err := rdb.Scan(ctx, 0, ref+"*", 10).Result(); err != nil || len(keys) == 0 {
		t.Fatalf("the reference replay's keys after the refused drops: %v, %v", keys, err)
	}
}

func quietLog() *slog.Logger { return slog.New(slog.DiscardHandler) }
