// Package testenv decides, in one place, where an integration test gets a backing service (Kafka,
// Redis) from, so kafkatest and redistest make the same decision the same way:
//
//  1. the address in the service's environment variable (CONVMETER_KAFKA_BROKERS,
//     CONVMETER_REDIS_URL), as printed by `eval "$(scripts/services.sh up)"`;
//  2. else a testcontainers-go container, when a Docker engine answers a ping;
//  3. else, when CONVMETER_REQUIRE_SERVICES=1 (scripts/test.sh sets it), the test fails;
//  4. else the test is skipped, with a message naming scripts/services.sh.
//
// Tests are the only callers; this is the one place below main that reads the environment.
package testenv

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Environment variables the helpers read.
const (
	EnvKafkaBrokers    = "CONVMETER_KAFKA_BROKERS"
	EnvRedisURL        = "CONVMETER_REDIS_URL"
	EnvRequireServices = "CONVMETER_REQUIRE_SERVICES"
)

// Source says where a backing service for a test comes from.
type Source int

// Sources, in the order they are tried.
const (
	FromEnv    Source = iota + 1 // the address is in the environment
	FromDocker                   // start a testcontainers-go container
	Missing                      // neither: fail or skip (see Unavailable)
)

func (s Source) String() string {
	switch s {
	case FromEnv:
		return "env"
	case FromDocker:
		return "docker"
	case Missing:
		return "missing"
	}
	return fmt.Sprintf("Source(%d)", int(s))
}

// Lookup returns the value of envVar and FromEnv when it is set; else FromDocker when a Docker
// engine answers; else Missing.
func Lookup(envVar string) (string, Source) {
	if v := strings.TrimSpace(os.Getenv(envVar)); v != "" {
		return v, FromEnv
	}
	if DockerAvailable() {
		return "", FromDocker
	}
	return "", Missing
}

// Required reports whether CONVMETER_REQUIRE_SERVICES asks tests to fail rather than skip when a
// service is missing.
func Required() bool {
	switch strings.ToLower(strings.TrimSpace(os.Getenv(EnvRequireServices))) {
	case "1", "true", "yes":
		return true
	}
	return false
}

// Unavailable ends the test because service could not be had: t.Fatal under
// CONVMETER_REQUIRE_SERVICES=1, t.Skip otherwise. reason says what went wrong (may be empty).
func Unavailable(t testing.TB, service, envVar, reason string) {
	t.Helper()
	msg := fmt.Sprintf("%s unavailable: %s is not set and no Docker engine answers; "+
		"run `eval \"$(scripts/services.sh up)\"` from the repository root (or use scripts/test.sh)",
		service, envVar)
	if reason != "" {
		msg = fmt.Sprintf("%s unavailable: %s; run `eval \"$(scripts/services.sh up)\"` from the repository root (or use scripts/test.sh)", service, reason)
	}
	if Required() {
		t.Fatalf("%s (%s=1, so this is a failure, not a skip)", msg, EnvRequireServices)
	}
	t.Skip(msg)
}

// DockerAvailable reports whether a Docker engine answers GET /_ping within a second, on
// DOCKER_HOST or the usual socket paths. It is cheap enough to call per test.
func DockerAvailable() bool {
	for _, addr := range dockerAddrs() {
		if dockerPing(addr) {
			return true
		}
	}
	return false
}

func dockerAddrs() []string {
	var addrs []string
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		addrs = append(addrs, h)
	}
	addrs = append(addrs, "unix:///var/run/docker.sock")
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		addrs = append(addrs, "unix://"+filepath.Join(d, "docker.sock"))
	}
	if home, err := os.UserHomeDir(); err == nil {
		addrs = append(addrs, "unix://"+filepath.Join(home, ".docker", "run", "docker.sock"))
	}
	return addrs
}

func dockerPing(addr string) bool {
	u, err := url.Parse(addr)
	if err != nil {
		return false
	}
	var network, address string
	switch u.Scheme {
	case "unix":
		network, address = "unix", u.Path
		if _, err := os.Stat(address); err != nil {
			return false
		}
	case "tcp":
		network, address = "tcp", u.Host
	default:
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, address)
	if err != nil {
		return false
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte("GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "HTTP/") && strings.Contains(line, " 200")
}

// Tool returns the path of the first of names found on PATH: an independent client or program a
// test runs (kcat, python3, chromium). When none is, the test fails under
// CONVMETER_REQUIRE_SERVICES=1 (scripts/test.sh and .ci/run install them) and is skipped
// otherwise; install says how to get one.
func Tool(t testing.TB, install string, names ...string) string {
	t.Helper()
	for _, name := range names {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := fmt.Sprintf("%s not installed (%s)", strings.Join(names, " or "), install)
	if Required() {
		t.Fatalf("%s and %s=1", msg, EnvRequireServices)
	}
	t.Skip(msg)
	return ""
}
