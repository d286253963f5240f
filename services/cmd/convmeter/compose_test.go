package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/redis/go-redis/v9"

	"github.com/convmeter/convmeter/events/kafkatest"
	"github.com/convmeter/convmeter/events/testenv"
	"github.com/convmeter/convmeter/projections/redistest"
)

// The repository's deploy files, from this package's directory.
const (
	composeFile = "../../../docker-compose.yml"
	dockerfile  = "../../../Dockerfile"
	imageBinary = "/usr/local/bin/convmeter" // where the Dockerfile puts the binary
)

// Secrets the compose file requires from the environment.
var composeEnv = map[string]string{"CONVMETER_VERIFY_TOKEN": "compose-verify", "CONVMETER_APP_SECRETS": "compose-secret"}

func loadCompose(t *testing.T, env map[string]string) (*types.Project, error) {
	t.Helper()
	abs, err := filepath.Abs(composeFile)
	if err != nil {
		t.Fatal(err)
	}
	return loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  filepath.Dir(abs),
		ConfigFiles: []types.ConfigFile{{Filename: abs}},
		Environment: env,
	}, func(o *loader.Options) { o.SetProjectName("convmeter", true) })
}

// TestComposeFile checks docker-compose.yml with compose-go (the loader `docker compose` itself
// uses: the Compose specification's schema, interpolation, anchors) and checks it deploys what
// the README promises: Kafka in KRaft mode keeping the log forever, Redis with AOF, and every
// convmeter role built from this repository's Dockerfile, each with a health check that runs the
// image's own binary, and the secrets required rather than defaulted.
func TestComposeFile(t *testing.T) {
	if _, err := loadCompose(t, nil); err == nil || !strings.Contains(err.Error(), "CONVMETER_VERIFY_TOKEN") {
		t.Errorf("loading without the secrets: %v, want an error naming CONVMETER_VERIFY_TOKEN", err)
	}
	p, err := loadCompose(t, composeEnv)
	if err != nil {
		t.Fatal(err)
	}
	kafka, err := p.GetService("kafka")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(kafka.Image, "apache/kafka:3.9.") && !strings.HasPrefix(kafka.Image, "apache/kafka:4.") {
		t.Errorf("kafka image %q: want a 3.9.x or 4.x broker", kafka.Image)
	}
	if roles := envOf(kafka, "KAFKA_PROCESS_ROLES"); !strings.Contains(roles, "controller") {
		t.Errorf("kafka process roles %q: not KRaft", roles)
	}
	if envOf(kafka, "KAFKA_LOG_RETENTION_MS") != "-1" {
		t.Error("kafka deletes old log segments: replay needs the whole log")
	}
	rd, err := p.GetService("redis")
	if err != nil {
		t.Fatal(err)
	}
	for _, opt := range [][2]string{{"--appendonly", "yes"}, {"--rdbcompression", "no"}} {
		if i := slices.Index(rd.Command, opt[0]); i < 0 || i+1 >= len(rd.Command) || rd.Command[i+1] != opt[1] {
			t.Errorf("redis command %q: want %s %s (README: Production deploy)", rd.Command, opt[0], opt[1])
		}
	}
	df, err := os.ReadFile(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(df), "./services/cmd/convmeter") || !strings.Contains(string(df), `ENTRYPOINT ["`+imageBinary+`"]`) {
		t.Errorf("Dockerfile does not build ./services/cmd/convmeter into %s as its entrypoint", imageBinary)
	}
	roles := map[string]bool{}
	for _, s := range p.Services {
		if s.Name == "kafka" || s.Name == "redis" {
			if s.HealthCheck == nil {
				t.Errorf("%s: no health check", s.Name)
			}
			continue
		}
		if s.Build == nil || s.Build.Context != p.WorkingDir {
			t.Errorf("%s: not built from the repository (build %+v)", s.Name, s.Build)
		}
		if len(s.Command) == 0 || commands[s.Command[0]].parse == nil {
			t.Errorf("%s: command %q is not a convmeter command", s.Name, s.Command)
			continue
		}
		role := s.Command[0]
		if role == "project" && len(s.Command) > 1 {
			role += " " + s.Command[1]
		}
		roles[role] = true
		if role == "topics" {
			continue // a one-shot the others wait for
		}
		if s.HealthCheck == nil || len(s.HealthCheck.Test) < 3 || s.HealthCheck.Test[1] != imageBinary || s.HealthCheck.Test[2] != "healthcheck" {
			t.Errorf("%s: health check %+v does not run `%s healthcheck`", s.Name, s.HealthCheck, imageBinary)
		}
	}
	for _, r := range []string{"topics", "aggregator", "clock", "ingest", "project billing", "project ratelimit", "api"} {
		if !roles[r] {
			t.Errorf("no service runs `convmeter %s`", r)
		}
	}
}

// TestComposeTopology runs docker-compose.yml's convmeter services as processes of this
// package's binary, without a Docker engine: each with its command and environment from the file,
// started in the file's dependency order, each start waiting for its depends_on conditions
// (service_completed_successfully: the process exited 0; service_healthy: the service's own
// health-check command passes). Only addresses differ: kafka:9092 and redis:6379 become the
// test's broker and Redis (a database of its own), published ports become free loopback ports,
// and topic names get a prefix of their own. Signed webhooks from `convmeter loadgen -mode
// webhook` then go through ingest, the aggregator and the billing projection to the API's ledger,
// the clock's ticks reach the aggregator, and SIGTERM stops every service with exit status 0.
// What it cannot check here: that the images build and that containers find each other by name.
func TestComposeTopology(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and starts seven processes")
	}
	brokers := kafkatest.Brokers(t)
	redisURL := redistest.URL(t)
	p, err := loadCompose(t, composeEnv)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "convmeter")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	rdbURL, rdb := composeRedis(t, redisURL)
	prefix := fmt.Sprintf("compose%d.", time.Now().UnixNano())
	// Per service, container port → loopback port: every port a command listens on (":8080")
	// gets a free one, since on one host the projections' common 9465 would collide.
	ports := map[string]map[string]string{}
	rewriter := func(name string) *composeRewriter {
		return &composeRewriter{brokers: strings.Join(brokers, ","), redis: rdbURL, ports: ports[name]}
	}

	procs := map[string]*composeProc{}
	t.Cleanup(func() {
		for _, pr := range procs {
			pr.kill()
		}
		if t.Failed() {
			dir, err := os.MkdirTemp("", "convmeter-compose-logs-")
			if err != nil {
				return
			}
			for name, pr := range procs {
				_ = os.WriteFile(filepath.Join(dir, name+".log"), []byte(pr.log.String()), 0o644)
			}
			t.Logf("full service logs in %s", dir)
		}
	})
	started := map[string]bool{"kafka": true, "redis": true} // the test's own broker and Redis
	for len(started) < len(p.Services) {
		progress := false
		for _, name := range p.ServiceNames() {
			s := p.Services[name]
			if started[name] || !depsStarted(s, started) {
				continue
			}
			for dep, d := range s.DependsOn {
				waitCondition(t, p, dep, d.Condition, procs, rewriter(dep), bin)
			}
			ports[name] = map[string]string{}
			for _, a := range s.Command {
				if c, ok := strings.CutPrefix(a, ":"); ok {
					ports[name][c] = freePort(t)
				}
			}
			rw := rewriter(name)
			env := append(os.Environ(), "CONVMETER_TOPIC_PREFIX="+prefix)
			for k, v := range s.Environment {
				if v != nil {
					env = append(env, k+"="+rw.value(*v))
				}
			}
			procs[name] = startProc(t, name, bin, rw.args(s.Command), env)
			started[name] = true
			progress = true
		}
		if !progress {
			t.Fatal("depends_on has a cycle or names a missing service")
		}
	}
	for name, s := range p.Services {
		if s.HealthCheck != nil && procs[name] != nil {
			waitCondition(t, p, name, types.ServiceConditionHealthy, procs, rewriter(name), bin)
		}
	}

	// Traffic through the webhook endpoint, as Meta would send it: the last two hours (the clock
	// writes the wall clock, so older traffic would be set aside as too late).
	start := time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	lg := exec.Command(bin, "loadgen", "-mode", "webhook", "-url", "http://127.0.0.1:"+ports["ingest"]["8081"]+"/webhook",
		"-speedup", "0", "-limit", "3000", "-numbers", "4", "-wabas", "2", "-users", "300", "-duration", "2h",
		"-start", start.Format(time.RFC3339))
	lg.Env = append(os.Environ(), "CONVMETER_KAFKA_BROKERS="+strings.Join(brokers, ","), "CONVMETER_TOPIC_PREFIX="+prefix,
		"CONVMETER_APP_SECRETS="+composeEnv["CONVMETER_APP_SECRETS"])
	if out, err := lg.CombinedOutput(); err != nil {
		t.Fatalf("loadgen: %v\n%s", err, out)
	}
	api := "http://127.0.0.1:" + ports["api"]["8080"]
	type bucket struct {
		Lines, Billable int64
		Amount          string
	}
	// The month is in the WABA's time zone: look at the months either side of start too.
	var months []string
	for _, d := range []int{-1, 0, 1} {
		if m := start.AddDate(0, 0, d).UTC().Format("2006-01"); !slices.Contains(months, m) {
			months = append(months, m)
		}
	}
	var total bucket
	deadline := time.Now().Add(90 * time.Second)
	for total.Lines == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no ledger line through the API within 90 s; logs:\n%s", logs(procs))
		}
		time.Sleep(500 * time.Millisecond)
		for _, m := range months {
			var tot struct {
				Total bucket `json:"total"`
			}
			getJSON(t, api+"/billing/totals?waba=102200000000001&month="+m, &tot)
			if tot.Total.Lines > 0 {
				total = tot.Total
			}
		}
	}
	t.Logf("ledger through the deployed topology: %+v", total)
	var st map[string]any
	getJSON(t, api+"/v1/limits/numbers/106500000000001", &st)
	if len(st) == 0 {
		t.Error("empty limits status of a number that sent messages")
	}
	// The clock's ticks reach the aggregator.
	metrics := "http://127.0.0.1:" + ports["aggregator"]["9464"] + "/metrics"
	deadline = time.Now().Add(30 * time.Second)
	for !strings.Contains(httpBody(t, metrics), `convmeter_aggregator_events_in_total{type="clock.tick.v1"}`) {
		if time.Now().After(deadline) {
			t.Fatalf("no clock tick reached the aggregator in 30 s; logs:\n%s", logs(procs))
		}
		time.Sleep(500 * time.Millisecond)
	}
	if n, _ := rdb.DBSize(context.Background()).Result(); n == 0 {
		t.Error("the services wrote nothing to their Redis database")
	}

	// SIGTERM: every service stops by itself with status 0 (the file gives no stop_grace_period,
	// so Docker would wait 10 s before killing).
	for name, pr := range procs {
		if pr.exited() {
			continue
		}
		if err := pr.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	for name, pr := range procs {
		select {
		case <-pr.done:
			if pr.err != nil {
				t.Errorf("%s exited with %v after SIGTERM; log:\n%s", name, pr.err, pr.log.String())
			}
		case <-time.After(10 * time.Second):
			t.Errorf("%s still running 10 s after SIGTERM", name)
		}
	}
}

// composeRewriter maps the compose network's addresses to the test's, for one service.
type composeRewriter struct {
	brokers, redis string
	ports          map[string]string
}

func (r *composeRewriter) value(v string) string {
	v = strings.ReplaceAll(v, "kafka:9092", r.brokers)
	if strings.HasPrefix(v, "redis://redis:6379") {
		return r.redis
	}
	return v
}

// args rewrites listen addresses (":8080") and health-check URLs ("localhost:8080") to the test's
// ports, and the image's binary path to the built binary's.
func (r *composeRewriter) args(in []string) []string {
	out := make([]string, len(in))
	for i, a := range in {
		for c, h := range r.ports {
			if a == ":"+c {
				a = "127.0.0.1:" + h
			}
			a = strings.ReplaceAll(a, "localhost:"+c+"/", "127.0.0.1:"+h+"/")
		}
		out[i] = r.value(a)
	}
	return out
}

func envOf(s types.ServiceConfig, k string) string {
	if v := s.Environment[k]; v != nil {
		return *v
	}
	return ""
}

func depsStarted(s types.ServiceConfig, started map[string]bool) bool {
	for dep := range s.DependsOn {
		if !started[dep] {
			return false
		}
	}
	return true
}

// waitCondition waits until service name meets a depends_on condition.
func waitCondition(t *testing.T, p *types.Project, name, cond string, procs map[string]*composeProc, rw *composeRewriter, bin string) {
	t.Helper()
	pr := procs[name]
	if pr == nil {
		return // kafka and redis: the test's own, already up
	}
	deadline := time.Now().Add(60 * time.Second)
	switch cond {
	case types.ServiceConditionCompletedSuccessfully:
		select {
		case <-pr.done:
			if pr.err != nil {
				t.Fatalf("%s failed (%v); log:\n%s", name, pr.err, pr.log.String())
			}
		case <-time.After(time.Until(deadline)):
			t.Fatalf("%s did not complete in 60 s", name)
		}
	case types.ServiceConditionHealthy:
		hc := p.Services[name].HealthCheck
		if hc == nil || len(hc.Test) < 2 || hc.Test[0] != "CMD" {
			t.Fatalf("%s: depended on as healthy without a CMD health check", name)
		}
		argv := rw.args(hc.Test[1:])
		if argv[0] != imageBinary {
			t.Fatalf("%s: health check runs %s, not the image's binary", name, argv[0])
		}
		for {
			if exec.Command(bin, argv[1:]...).Run() == nil {
				return
			}
			if pr.exited() || time.Now().After(deadline) {
				t.Fatalf("%s never became healthy (%v); log:\n%s", name, pr.err, pr.log.String())
			}
			time.Sleep(300 * time.Millisecond)
		}
	case types.ServiceConditionStarted, "":
	default:
		t.Fatalf("%s: unknown depends_on condition %q", name, cond)
	}
}

// composeRedis returns the URL of a Redis database for the services alone (flushed before and
// after) and a client of it.
func composeRedis(t *testing.T, base string) (string, *redis.Client) {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/13"
	opt, err := redis.ParseURL(u.String())
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	if err := rdb.FlushDB(context.Background()).Err(); err != nil {
		t.Fatalf("redis database 13: %v", err)
	}
	t.Cleanup(func() {
		_ = rdb.FlushDB(context.Background()).Err()
		_ = rdb.Close()
	})
	return u.String(), rdb
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

type composeProc struct {
	cmd  *exec.Cmd
	log  *testenv.SyncBuffer
	done chan struct{}
	err  error
}

func startProc(t *testing.T, name, bin string, args, env []string) *composeProc {
	t.Helper()
	pr := &composeProc{cmd: exec.Command(bin, args...), log: &testenv.SyncBuffer{}, done: make(chan struct{})}
	pr.cmd.Env, pr.cmd.Stdout, pr.cmd.Stderr = env, pr.log, pr.log
	if err := pr.cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	go func() {
		pr.err = pr.cmd.Wait()
		close(pr.done)
	}()
	return pr
}

func (pr *composeProc) exited() bool {
	select {
	case <-pr.done:
		return true
	default:
		return false
	}
}

func (pr *composeProc) kill() {
	if !pr.exited() {
		_ = pr.cmd.Process.Kill()
		<-pr.done
	}
}

func logs(procs map[string]*composeProc) string {
	var b strings.Builder
	for name, pr := range procs {
		s := pr.log.String()
		if len(s) > 6000 {
			s = s[:3000] + "\n...\n" + s[len(s)-3000:]
		}
		fmt.Fprintf(&b, "== %s\n%s\n", name, s)
	}
	return b.String()
}

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(httpBody(t, u)), v); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
}

func httpBody(t *testing.T, u string) string {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %s", u, resp.Status, b.String())
	}
	return b.String()
}
