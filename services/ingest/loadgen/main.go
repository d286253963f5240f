// Command loadgen measures `convmeter ingest` end to end: signed webhook requests carrying N
// statuses each, sent concurrently over loopback; a request counts when it is answered 200, which
// the server gives only after Kafka acknowledged every event. It reports events/s accepted and the
// p50/p99 request latency as one JSON line on stdout.
//
// By default it starts an ingest server in process (on 127.0.0.1, publishing to -brokers, topics
// created under a fresh prefix); with -url it loads an external server instead.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/convmeter/convmeter/events/kafkax"
	"github.com/convmeter/convmeter/events/wmkafka"
	"github.com/convmeter/convmeter/services/ingest"
)

type config struct {
	url         string
	brokers     []string
	secret      string
	concurrency int
	duration    time.Duration
	warmup      time.Duration
	statuses    int
	partitions  int
	users       int
	batchWait   time.Duration
}

// result is the JSON line loadgen prints.
type result struct {
	Requests      int64   `json:"requests_ok"`
	Failed        int64   `json:"requests_failed"`
	Events        int64   `json:"events_accepted"`
	Seconds       float64 `json:"seconds"`
	EventsPerSec  float64 `json:"events_per_sec"`
	P50ms         float64 `json:"p50_ms"`
	P99ms         float64 `json:"p99_ms"`
	MaxMs         float64 `json:"max_ms"`
	Concurrency   int     `json:"concurrency"`
	StatusesPerRq int     `json:"statuses_per_request"`
	Partitions    int     `json:"partitions"`
	GOMAXPROCS    int     `json:"gomaxprocs"`
	InProcess     bool    `json:"in_process_server"`
	// Kafka writer figures of the in-process server (kafka-go WriterStats over the whole run).
	KafkaWrites       int64   `json:"kafka_produce_requests,omitempty"`
	KafkaAvgBatch     int64   `json:"kafka_avg_batch_messages,omitempty"`
	KafkaAvgWriteMs   float64 `json:"kafka_avg_write_ms,omitempty"`
	KafkaAvgBatchMs   float64 `json:"kafka_avg_batch_ms,omitempty"`
	ProcessCPUSeconds float64 `json:"process_cpu_seconds"`
}

var writerStats func() kafka.WriterStats

func main() {
	var cfg config
	var brokers string
	flag.StringVar(&cfg.url, "url", "", "webhook URL of a running server; empty starts one in process")
	flag.StringVar(&brokers, "brokers", os.Getenv("CONVMETER_KAFKA_BROKERS"), "Kafka brokers for the in-process server")
	flag.StringVar(&cfg.secret, "secret", "loadgen-secret", "app secret to sign with")
	flag.IntVar(&cfg.concurrency, "c", 32, "concurrent requests")
	flag.DurationVar(&cfg.duration, "d", 20*time.Second, "measured duration")
	flag.DurationVar(&cfg.warmup, "warmup", 3*time.Second, "unmeasured warm-up")
	flag.IntVar(&cfg.statuses, "n", 100, "statuses per request")
	flag.IntVar(&cfg.partitions, "partitions", 12, "partitions of the in-process server's topics")
	flag.IntVar(&cfg.users, "users", 100000, "distinct recipients")
	flag.DurationVar(&cfg.batchWait, "batch-timeout", ingest.PublishBatchTimeout, "kafka-go BatchTimeout of the in-process server")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole run here")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
			os.Exit(1)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	cfg.brokers = strings.Split(brokers, ",")
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := run(ctx, cfg, log)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		return
	}
	b, _ := json.Marshal(res)
	_, _ = os.Stdout.Write(append(b, '\n'))
}

func run(ctx context.Context, cfg config, log *slog.Logger) (result, error) {
	res := result{Concurrency: cfg.concurrency, StatusesPerRq: cfg.statuses, GOMAXPROCS: runtime.GOMAXPROCS(0)}
	url := cfg.url
	if url == "" {
		res.InProcess, res.Partitions = true, cfg.partitions
		u, stop, err := startServer(ctx, cfg, log)
		if err != nil {
			return res, err
		}
		defer stop()
		url = u
	}
	tr := &http.Transport{MaxIdleConnsPerHost: cfg.concurrency, MaxConnsPerHost: cfg.concurrency}
	client := &http.Client{Transport: tr, Timeout: 60 * time.Second}

	var seq atomic.Int64
	var measuring atomic.Bool
	var ok, failed, evs atomic.Int64
	lat := make([][]time.Duration, cfg.concurrency)
	deadline := time.Now().Add(cfg.warmup + cfg.duration)
	var wg sync.WaitGroup
	for w := range cfg.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var body []byte
			for time.Now().Before(deadline) && ctx.Err() == nil {
				body = webhook(body[:0], seq.Add(1), cfg.statuses, cfg.users)
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(string(body)))
				req.Header.Set(ingest.SignatureHeader, ingest.Sign(cfg.secret, body))
				req.Header.Set("Content-Type", "application/json")
				t0 := time.Now()
				resp, err := client.Do(req)
				d := time.Since(t0)
				code := 0
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					code = resp.StatusCode
				}
				if !measuring.Load() {
					continue
				}
				if code == http.StatusOK {
					ok.Add(1)
					evs.Add(int64(cfg.statuses))
					lat[w] = append(lat[w], d)
				} else {
					failed.Add(1)
				}
			}
		}()
	}
	time.Sleep(cfg.warmup)
	measuring.Store(true)
	start := time.Now()
	wg.Wait()
	secs := time.Since(start).Seconds()
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	res.Requests, res.Failed, res.Events, res.Seconds = ok.Load(), failed.Load(), evs.Load(), secs
	res.EventsPerSec = float64(res.Events) / secs
	if writerStats != nil {
		st := writerStats()
		res.KafkaWrites, res.KafkaAvgBatch = st.Writes, st.BatchSize.Avg
		res.KafkaAvgWriteMs = float64(st.WriteTime.Avg.Microseconds()) / 1000
		res.KafkaAvgBatchMs = float64(st.BatchTime.Avg.Microseconds()) / 1000
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		res.ProcessCPUSeconds = float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
	}
	if len(all) > 0 {
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		res.P50ms, res.P99ms, res.MaxMs = ms(all[len(all)/2]), ms(all[len(all)*99/100]), ms(all[len(all)-1])
	}
	return res, nil
}

// webhook appends a "messages" webhook with n delivered statuses, all with new wamids, for
// recipients spread over users, so keys spread over all partitions.
func webhook(b []byte, seq int64, n, users int) []byte {
	b = append(b, `{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"106540352242922"},"statuses":[`...)
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		id := seq*int64(n) + int64(i)
		b = append(b, `{"id":"wamid.LOAD`...)
		b = strconv.AppendInt(b, id, 10)
		b = append(b, `","status":"delivered","timestamp":"`...)
		b = strconv.AppendInt(b, 1752000000+id%86400, 10)
		b = append(b, `","recipient_id":"`...)
		b = strconv.AppendInt(b, 5511900000000+id%int64(users), 10)
		b = append(b, `","conversation":{"id":"c`...)
		b = strconv.AppendInt(b, id, 10)
		b = append(b, `","origin":{"type":"utility"}},"pricing":{"billable":true,"pricing_model":"PMP","type":"regular","category":"utility"}}`...)
	}
	return append(b, `]}}]}]}`...)
}

func startServer(ctx context.Context, cfg config, log *slog.Logger) (string, func(), error) {
	topics := kafkax.PrefixedTopics("bench" + strconv.FormatInt(time.Now().UnixNano(), 36))
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := kafkax.EnsureTopics(cctx, cfg.brokers, topics.Specs(cfg.partitions)...); err != nil {
		return "", nil, err
	}
	pub, err := wmkafka.NewPublisher(wmkafka.PublisherConfig{Brokers: cfg.brokers, Logger: log, BatchTimeout: cfg.batchWait})
	if err != nil {
		return "", nil, err
	}
	writerStats = pub.Stats
	srv, err := ingest.New(ingest.Config{VerifyToken: "t", AppSecrets: []string{cfg.secret}, Topics: topics,
		Partitions: cfg.partitions}, pub, log)
	if err != nil {
		return "", nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	sctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- ingest.Serve(sctx, srv, ln, log) }()
	<-srv.Running()
	cleanup := func() {
		stop()
		if err := <-done; err != nil {
			log.Error("serve", "err", err)
		}
		_ = pub.Close()
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = kafkax.DeleteTopics(dctx, cfg.brokers, topics.All()...)
	}
	return "http://" + ln.Addr().String() + "/webhook", cleanup, nil
}
