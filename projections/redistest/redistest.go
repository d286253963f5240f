// Package redistest gives integration tests a Redis client and a key namespace of their own.
//
// Client decides where Redis comes from exactly as every convmeter test helper does (package
// events/testenv): CONVMETER_REDIS_URL, else a testcontainers-go Redis container when a Docker
// engine answers, else a failure under CONVMETER_REQUIRE_SERVICES=1, else a skip naming
// scripts/services.sh.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/convmeter/convmeter/events/testenv"
	"github.com/redis/go-redis/v9"
	tcredis "github.com/testcontainers/testcontainers-go/modules/redis"
)

// Image is the Redis image used when a Docker engine is available.
const Image = "redis:7.4-alpine"

var shared struct {
	once sync.Once
	url  string
	err  error
}

var unsafe = regexp.MustCompile(`[^a-zA-Z0-9._-]+`)

// Prefix returns a key prefix unique to this test run: "t:" + the test name made safe and
// shortened + ":" + 8 random hex digits + ":". It holds no braces, so the hash tags of the keys
// built under it (e.g. prefix + "ledger:{pair}") decide their Redis Cluster slot, as in production.
func Prefix(t testing.TB) string {
	n := unsafe.ReplaceAllString(t.Name(), "_")
	if len(n) > 80 {
		n = n[:80]
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "t:" + n + ":" + hex.EncodeToString(b[:]) + ":"
}

// URL returns the Redis URL for an integration test, or ends the test (see package doc). With
// Docker, one container serves the whole test binary; testcontainers' reaper removes it.
func URL(t testing.TB) string {
	t.Helper()
	v, src := testenv.Lookup(testenv.EnvRedisURL)
	switch src {
	case testenv.FromEnv:
		return v
	case testenv.FromDocker:
		shared.once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			c, err := tcredis.Run(ctx, Image)
			if err != nil {
				shared.err = err
				return
			}
			shared.url, shared.err = c.ConnectionString(ctx)
		})
		if shared.err != nil {
			testenv.Unavailable(t, "redis", testenv.EnvRedisURL, "starting the Redis container failed: "+shared.err.Error())
		}
		return shared.url
	case testenv.Missing:
	}
	testenv.Unavailable(t, "redis", testenv.EnvRedisURL, "")
	return ""
}

// Client returns a client of the test Redis and a fresh key prefix. When the test ends, every key
// under the prefix is deleted (SCAN + UNLINK) and the client is closed.
func Client(t testing.TB) (*redis.Client, string) {
	t.Helper()
	url := URL(t)
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatalf("parse %s %q: %v", testenv.EnvRedisURL, url, err)
	}
	c := redis.NewClient(opts)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		_ = c.Close()
		testenv.Unavailable(t, "redis", testenv.EnvRedisURL, fmt.Sprintf("PING %s: %v", opts.Addr, err))
	}
	prefix := Prefix(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if n, err := DeletePrefix(ctx, c, prefix); err != nil {
			t.Errorf("delete test keys %s* (%d deleted): %v", prefix, n, err)
		}
		_ = c.Close()
	})
	return c, prefix
}

// DeletePrefix deletes every key that starts with prefix and returns how many it deleted. prefix
// must hold no glob characters (Prefix's never do).
func DeletePrefix(ctx context.Context, c redis.UniversalClient, prefix string) (int, error) {
	deleted := 0
	var cursor uint64
	for {
		keys, next, err := c.Scan(ctx, cursor, prefix+"*", 1000).Result()
		if err != nil {
			return deleted, fmt.Errorf("scan %s*: %w", prefix, err)
		}
		if len(keys) > 0 {
			n, err := c.Unlink(ctx, keys...).Result()
			if err != nil {
				return deleted, fmt.Errorf("unlink %d keys under %s: %w", len(keys), prefix, err)
			}
			deleted += int(n)
		}
		if next == 0 {
			return deleted, nil
		}
		cursor = next
	}
}

// ServerCPU is the CPU time the Redis server has used so far, user and system (INFO cpu):
// benchmarks report it per event beside the process's own (testenv.ProcessCPU).
func ServerCPU(tb testing.TB, rdb redis.UniversalClient) time.Duration {
	tb.Helper()
	return infoCPU(tb, rdb, "used_cpu_sys", "used_cpu_user")
}

// HeavyBytes is the memory above which NoteOccupancy warns: the AOF rewrites of that much take
// seconds of CPU.
const HeavyBytes = 64 << 20

// NoteOccupancy logs how many keys and how much memory the Redis server holds before a benchmark,
// and warns when it holds HeavyBytes or more. Each AOF rewrite Redis forks writes out all of it,
// so data left by other work (scratch keys, an aborted run) makes the rewrites a benchmark
// triggers heavy: 790 MB of it cut a third of the replay benchmark's runs from about 225k to
// 145k-180k records/s. It returns the key count and used memory.
func NoteOccupancy(tb testing.TB, rdb redis.UniversalClient) (keys, bytes int64) {
	tb.Helper()
	ctx := context.Background()
	keys, err := rdb.DBSize(ctx).Result()
	if err != nil {
		tb.Fatal(err)
	}
	info, err := rdb.Info(ctx, "memory").Result()
	if err != nil {
		tb.Fatal(err)
	}
	bytes, _ = strconv.ParseInt(infoField(info, "used_memory"), 10, 64)
	tb.Logf("redis holds %d keys, %d MB before the benchmark", keys, bytes>>20)
	if bytes >= HeavyBytes {
		tb.Logf("WARNING: redis holds %d MB: the AOF rewrites it makes heavy count in the Redis figures and slow the benchmark; run on a Redis with nothing else", bytes>>20)
	}
	return keys, bytes
}

// infoField returns the value of field in an INFO reply, "" when absent.
func infoField(info, field string) string {
	for _, l := range strings.Split(info, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), ":"); ok && k == field {
			return v
		}
	}
	return ""
}

// ChildrenCPU is the CPU time the Redis server's children have used so far (INFO cpu): the AOF
// rewrites (and RDB saves) Redis forks when the append-only file has grown, which compete with
// the server and its clients for the machine's cores.
func ChildrenCPU(tb testing.TB, rdb redis.UniversalClient) time.Duration {
	tb.Helper()
	return infoCPU(tb, rdb, "used_cpu_sys_children", "used_cpu_user_children")
}

func infoCPU(tb testing.TB, rdb redis.UniversalClient, fields ...string) time.Duration {
	tb.Helper()
	info, err := rdb.Info(context.Background(), "cpu").Result()
	if err != nil {
		tb.Fatal(err)
	}
	var sum float64
	for _, f := range fields {
		v, _ := strconv.ParseFloat(infoField(info, f), 64)
		sum += v
	}
	return time.Duration(sum * float64(time.Second))
}
