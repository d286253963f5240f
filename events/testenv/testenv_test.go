package testenv_test

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/convmeter/convmeter/events/testenv"
)

// recorder is a testing.TB that records how a helper ended the test.
type recorder struct {
	testing.TB
	fatal, skip string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (r *recorder) Skip(args ...any) {
	r.skip = fmt.Sprint(args...)
	runtime.Goexit()
}

func run(fn func(t testing.TB)) *recorder {
	r := &recorder{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(r)
	}()
	<-done
	return r
}

func TestUnavailableSkipsOrFails(t *testing.T) {
	t.Setenv(testenv.EnvRequireServices, "")
	r := run(func(tb testing.TB) { testenv.Unavailable(tb, "kafka", testenv.EnvKafkaBrokers, "") })
	if r.fatal != "" || !strings.Contains(r.skip, "scripts/services.sh") || !strings.Contains(r.skip, testenv.EnvKafkaBrokers) {
		t.Fatalf("without %s: fatal %q skip %q, want a skip naming the script and the variable", testenv.EnvRequireServices, r.fatal, r.skip)
	}
	t.Setenv(testenv.EnvRequireServices, "1")
	r = run(func(tb testing.TB) { testenv.Unavailable(tb, "redis", testenv.EnvRedisURL, "dial refused") })
	if r.skip != "" || !strings.Contains(r.fatal, "scripts/services.sh") || !strings.Contains(r.fatal, "dial refused") {
		t.Fatalf("with %s=1: fatal %q skip %q, want a failure naming the script and the reason", testenv.EnvRequireServices, r.fatal, r.skip)
	}
}

func TestLookup(t *testing.T) {
	t.Setenv("CONVMETER_TESTENV_PROBE", "127.0.0.1:1")
	if v, src := testenv.Lookup("CONVMETER_TESTENV_PROBE"); v != "127.0.0.1:1" || src != testenv.FromEnv {
		t.Fatalf("set: %q %v", v, src)
	}
	t.Setenv("CONVMETER_TESTENV_PROBE", "")
	t.Setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
	_, src := testenv.Lookup("CONVMETER_TESTENV_PROBE")
	if src == testenv.FromEnv {
		t.Fatalf("unset variable reported as %v", src)
	}
	if want := map[bool]testenv.Source{true: testenv.FromDocker, false: testenv.Missing}[testenv.DockerAvailable()]; src != want {
		t.Fatalf("source %v, want %v", src, want)
	}
}

func TestMachineBusyAdvances(t *testing.T) {
	if _, err := os.Stat("/proc/stat"); err != nil {
		t.Skip("no /proc/stat here")
	}
	b0 := testenv.MachineBusy()
	if b0 <= 0 {
		t.Fatalf("MachineBusy = %v, want > 0 on a machine with /proc/stat", b0)
	}
	deadline := time.Now().Add(300 * time.Millisecond)
	for x := 0; time.Now().Before(deadline); x++ { // keep one core busy
		_ = x * x
	}
	if d := testenv.MachineBusy() - b0; d < 100*time.Millisecond {
		t.Fatalf("300 ms of a busy loop moved MachineBusy by %v", d)
	}
}

func TestPIDCPUOfThisProcess(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc here")
	}
	c0 := testenv.PIDCPU(os.Getpid())
	deadline := time.Now().Add(300 * time.Millisecond)
	for x := 0; time.Now().Before(deadline); x++ {
		_ = x * x
	}
	if d := testenv.PIDCPU(os.Getpid()) - c0; d < 100*time.Millisecond || d > 5*time.Second {
		t.Fatalf("300 ms of a busy loop moved PIDCPU by %v", d)
	}
	if testenv.PIDCPU(-1) != 0 {
		t.Fatal("PIDCPU of no process is not 0")
	}
}
