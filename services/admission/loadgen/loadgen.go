// Package loadgen is a small open-loop HTTP load generator: it sends requests at a fixed rate
// whatever the server's latency, and measures each latency from the moment the request was due,
// so a slow server cannot hide its queueing (no coordinated omission).
//
// It speaks HTTP/1.1 itself over keep-alive TCP connections instead of using net/http's client:
// the measured process runs the server too, and the standard client (two goroutines and several
// channel hand-offs per connection and request) cost about as much CPU as the handler. Every
// request is still a real round trip over the socket. A request due while every connection is
// busy opens a new one, so a slow server is never given fewer requests than the rate asks for.
package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Config describes one run.
type Config struct {
	URL      string // http://host:port/path?query
	Rate     int    // requests per second
	Duration time.Duration
	// Body returns the JSON body of the i-th request (POST); nil means GET.
	Body func(i int) []byte
	// Timeout bounds one request from the moment it was due (default 10 s).
	Timeout time.Duration
}

// Result summarises a run. Shed counts 503 answers (the server refused at once, overloaded); they
// are also in Failed. The percentiles are over the requests answered 200.
type Result struct {
	Sent, OK, Failed, Shed int
	Conns                  int // connections opened
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

// conn is one keep-alive connection.
type conn struct {
	c   net.Conn
	br  *bufio.Reader
	buf []byte // the request being written
}

// client keeps the idle connections.
type client struct {
	addr, host, target string
	mu                 sync.Mutex
	idle               []*conn
	opened             int
}

func (cl *client) get() (*conn, error) {
	cl.mu.Lock()
	if n := len(cl.idle); n > 0 {
		c := cl.idle[n-1]
		cl.idle = cl.idle[:n-1]
		cl.mu.Unlock()
		return c, nil
	}
	cl.opened++
	cl.mu.Unlock()
	nc, err := net.Dial("tcp", cl.addr)
	if err != nil {
		return nil, err
	}
	return &conn{c: nc, br: bufio.NewReaderSize(nc, 8<<10)}, nil
}

func (cl *client) put(c *conn) {
	cl.mu.Lock()
	cl.idle = append(cl.idle, c)
	cl.mu.Unlock()
}

func (cl *client) closeIdle() {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	for _, c := range cl.idle {
		_ = c.c.Close()
	}
	cl.idle = nil
}

// do sends one request on c and reads the answer. keep is false when c must not be reused.
func (cl *client) do(c *conn, body []byte, deadline time.Time) (status int, keep bool, err error) {
	if err := c.c.SetDeadline(deadline); err != nil {
		return 0, false, err
	}
	b := c.buf[:0]
	if body != nil {
		b = append(b, "POST "...)
	} else {
		b = append(b, "GET "...)
	}
	b = append(b, cl.target...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, cl.host...)
	if body != nil {
		b = append(b, "\r\nContent-Type: application/json\r\nContent-Length: "...)
		b = strconv.AppendInt(b, int64(len(body)), 10)
	}
	b = append(b, "\r\n\r\n"...)
	b = append(b, body...)
	c.buf = b
	if _, err := c.c.Write(b); err != nil {
		return 0, false, err
	}
	return readResponse(c.br)
}

// readResponse reads one HTTP/1.1 response and discards its body.
func readResponse(br *bufio.Reader) (status int, keep bool, err error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, false, err
	}
	// "HTTP/1.1 200 OK\r\n"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, false, fmt.Errorf("bad status line %q", line)
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, false, fmt.Errorf("bad status line %q", line)
	}
	length, chunked, keep := -1, false, true
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return status, false, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return status, false, fmt.Errorf("bad header line %q", line)
		}
		v = bytes.TrimSpace(v)
		switch {
		case bytes.EqualFold(k, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(v)); err != nil || length < 0 {
				return status, false, fmt.Errorf("bad content length %q", v)
			}
		case bytes.EqualFold(k, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(v, []byte("chunked"))
		case bytes.EqualFold(k, []byte("Connection")):
			keep = !bytes.EqualFold(v, []byte("close"))
		}
	}
	switch {
	case status == 204 || status == 304 || status/100 == 1:
		return status, keep, nil // no body
	case chunked:
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				return status, false, err
			}
			size, _, _ := bytes.Cut(bytes.TrimRight(line, "\r\n"), []byte(";"))
			n, err := strconv.ParseInt(string(size), 16, 64)
			if err != nil || n < 0 {
				return status, false, fmt.Errorf("bad chunk size %q", line)
			}
			if _, err := br.Discard(int(n) + 2); err != nil { // data and CRLF
				return status, false, err
			}
			if n == 0 {
				return status, keep, nil // no trailers from the servers measured here
			}
		}
	case length >= 0:
		_, err = br.Discard(length)
		return status, keep && err == nil, err
	}
	// Neither: the body runs to the end of the connection.
	_, err = io.Copy(io.Discard, br)
	return status, false, err
}

// Run sends cfg.Rate requests per second for cfg.Duration and waits for the answers.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if cfg.Rate <= 0 || cfg.Duration <= 0 || cfg.URL == "" {
		return Result{}, errors.New("loadgen: rate, duration and url are required")
	}
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return Result{}, fmt.Errorf("loadgen: want an http:// URL, got %q", cfg.URL)
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	cl := &client{addr: addr, host: u.Host, target: u.RequestURI()}
	defer cl.closeIdle()

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
		var body []byte
		if cfg.Body != nil {
			body = cfg.Body(i)
		}
		c, err := cl.get()
		if err == nil {
			var status int
			var keep bool
			status, keep, err = cl.do(c, body, due.Add(timeout))
			if keep && err == nil {
				cl.put(c)
			} else {
				_ = c.c.Close()
			}
			if err == nil && status != 200 {
				err = fmt.Errorf("status %d", status)
				shed[i] = status == 503
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
	r := Result{Sent: i, Elapsed: sentFor, FirstError: firstErr, Conns: cl.opened}
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
