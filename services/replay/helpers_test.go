package replay

import (
	"context"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/segmentio/kafka-go"

	"github.com/convmeter/convmeter/events"
)

// encodeAll encodes events as the records of one partition.
func encodeAll(tb testing.TB, evs []events.Event) []kafka.Message {
	tb.Helper()
	out := make([]kafka.Message, len(evs))
	for i, e := range evs {
		b, err := events.Marshal(e)
		if err != nil {
			tb.Fatal(err)
		}
		out[i] = kafka.Message{Offset: int64(i), Key: []byte(e.Key), Value: b}
	}
	return out
}

// redisCPU is the Redis server's CPU seconds (user + sys) so far.
func redisCPU(tb testing.TB, rdb redis.UniversalClient) float64 {
	tb.Helper()
	info, err := rdb.Info(context.Background(), "cpu").Result()
	if err != nil {
		tb.Fatal(err)
	}
	var sum float64
	for _, l := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(l), ":")
		if ok && (k == "used_cpu_sys" || k == "used_cpu_user") {
			f, _ := strconv.ParseFloat(v, 64)
			sum += f
		}
	}
	return sum
}

// processCPU is this process's CPU seconds (user + sys) so far.
func processCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
