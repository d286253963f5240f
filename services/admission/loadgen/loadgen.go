// Package loadgen is a small open-loop HTTP load generator: it sends requests at a fixed rate
// whatever the server's latency, and measures each latency from the moment the request was due,
// so a slow server cannot hide its queueing (no coordinated omission).
package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Config describes one run.
type Config struct {
	URL      string
	Rate     int           // requests per second
	Duration time.Duration // how long to send
	// Body returns the JSON body of the i-th request (POST); nil means GET.
	Body   func(i int) []byte
	Client *http.Client // default: keep-alive client with a large idle pool
}

// Result summarises a run. Shed counts 503 answers (the server refused at once, overloaded); they
// are also in Failed. The percentiles are over the requests answered 200.
type Result struct {
	Sent, OK, Failed, Shed int
	Elapsed                time.Duration
	P50, P90, P99          time.Duration
	P999, Max              time.Duration
	FirstError             string
}

// Rate is the achieved request rate.
func (r Result) Rate() float64 { return float64(r.Sent) / r.Elapsed.Seconds() }

func (r Result) String() string {
	return fmt.Sprintf("sent=%d ok=%d failed=%d shed=%d rate=%.0f/s p50=%v p90=%v p99=%v p99.9=%v max=%v",
		r.Sent, r.OK, r.Failed, r.Shed, r.Rate(), r.P50, r.P90, r.P99, r.P999, r.Max)
}

// Run sends cfg.Rate requests per second for cfg.Duration and waits for the answers.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if cfg.Rate <= 0 || cfg.Duration <= 0 || cfg.URL == "" {
		return Result{}, errors.New("loadgen: rate, duration and url are required")
	}
	client := cfg.Client
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, IdleConnTimeout: time.Minute}}
	}
	total := int(cfg.Duration.Seconds() * float64(cfg.Rate))
	interval := time.Second / time.Duration(cfg.Rate)
	lat := make([]time.Duration, total)
	okv := make([]bool, total)
	shed := make([]bool, total)
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr string
	)
	start := time.Now()
	send := func(i int, due time.Time) {
		defer wg.Done()
		var req *http.Request
		var err error
		if cfg.Body != nil {
			req, err = http.NewRequestWithContext(ctx, http.MethodPost, cfg.URL, bytes.NewReader(cfg.Body(i)))
			if req != nil {
				req.Header.Set("Content-Type", "application/json")
			}
		} else {
			req, err = http.NewRequestWithContext(ctx, http.MethodGet, cfg.URL, nil)
		}
		if err == nil {
			var resp *http.Response
			if resp, err = client.Do(req); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("status %d", resp.StatusCode)
					shed[i] = resp.StatusCode == http.StatusServiceUnavailable
				}
			}
		}
		lat[i] = time.Since(due)
		okv[i] = err == nil
		if err != nil {
			errOnce.Do(func() { firstErr = err.Error() })
		}
	}
	i := 0
	for i < total && ctx.Err() == nil {
		now := time.Now()
		for ; i < total; i++ {
			due := start.Add(time.Duration(i) * interval)
			if due.After(now) {
				break
			}
			wg.Add(1)
			go send(i, due)
		}
		if i < total {
			time.Sleep(time.Until(start.Add(time.Duration(i) * interval)))
		}
	}
	sentFor := time.Since(start)
	wg.Wait()
	r := Result{Sent: i, Elapsed: sentFor, FirstError: firstErr}
	ls := make([]time.Duration, 0, i)
	for j := range i {
		if okv[j] {
			r.OK++
			ls = append(ls, lat[j])
		} else {
			r.Failed++
		}
		if shed[j] {
			r.Shed++
		}
	}
	slices.Sort(ls)
	pct := func(p float64) time.Duration {
		if len(ls) == 0 {
			return 0
		}
		return ls[min(len(ls)-1, int(p*float64(len(ls))))]
	}
	r.P50, r.P90, r.P99, r.P999 = pct(0.50), pct(0.90), pct(0.99), pct(0.999)
	if len(ls) > 0 {
		r.Max = ls[len(ls)-1]
	}
	return r, ctx.Err()
}
