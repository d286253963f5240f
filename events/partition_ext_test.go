package events_test

import (
	"math/rand/v2"
	"os/exec"
	"strings"
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/convmeter/convmeter/events"
)

// TestPartitionMatchesKafkaGo checks events.Partition against kafka-go's Murmur2Balancer (the
// Java client's placement) over 10k random keys of every length from 0 to 63 bytes and several
// partition counts. The keys come from a seeded generator, so a failure reproduces.
func TestPartitionMatchesKafkaGo(t *testing.T) {
	rng := rand.New(rand.NewPCG(20250615, 1))
	counts := []int{1, 2, 3, 6, 12, 16, 64, 100, 1000}
	parts := make([][]int, len(counts))
	for i, n := range counts {
		for p := range n {
			parts[i] = append(parts[i], p)
		}
	}
	bal := kafka.Murmur2Balancer{Consistent: true}
	for k := range 10000 {
		key := make([]byte, k%64)
		for i := range key {
			key[i] = byte(rng.UintN(256))
		}
		if k%3 == 0 { // realistic pair keys too
			key = []byte(events.PairKey(digits(rng, 15), digits(rng, 11), ""))
		}
		for i, n := range counts {
			want := bal.Balance(kafka.Message{Key: key}, parts[i]...)
			if got := events.Partition(key, n); got != want {
				t.Fatalf("key %x, %d partitions: Partition = %d, kafka-go = %d", key, n, got, want)
			}
			if got := events.PartitionString(string(key), n); got != want {
				t.Fatalf("key %x, %d partitions: PartitionString = %d, kafka-go = %d", key, n, got, want)
			}
		}
	}
}

func digits(rng *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('0' + rng.IntN(10))
	}
	return string(b)
}

// TestRootPackageImportsNoInfrastructure enforces the contract of architecture.md: the root events
// package (not its tests) depends on no Kafka, Redis or Watermill code, so consumers import it
// cheaply.
func TestRootPackageImportsNoInfrastructure(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go tool not found: %v", err)
	}
	out, err := exec.Command(gobin, "list", "-deps", "-f", "{{.ImportPath}}", "github.com/convmeter/convmeter/events").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 || !contains(deps, "encoding/json") {
		t.Fatalf("go list gave an implausible dependency list: %q", deps)
	}
	for _, d := range deps {
		for _, bad := range []string{"kafka", "redis", "watermill", "franz-go", "testcontainers", "sarama"} {
			if strings.Contains(strings.ToLower(d), bad) {
				t.Errorf("the events package depends on %s", d)
			}
		}
		if first, _, _ := strings.Cut(d, "/"); strings.Contains(first, ".") && !strings.HasPrefix(d, "github.com/convmeter/convmeter/events") {
			t.Logf("third-party dependency: %s", d)
		}
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
