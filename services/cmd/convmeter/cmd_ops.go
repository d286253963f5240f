package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/convmeter/convmeter/events/kafkax"
	"github.com/convmeter/convmeter/services/internal/memlimit"
)

// Operational one-shots: creating the topics before the services start, and a health probe for
// images that have no shell or curl.

func init() {
	commands["topics"] = command{
		summary: "create the topics (or verify their partition counts and configs) and exit",
		parse:   parseTopics,
	}
	commands["healthcheck"] = command{
		summary: "GET a URL and exit 0 when it answers with the wanted status (container health checks)",
		parse:   parseHealthcheck,
	}
}

func parseTopics(fs *flag.FlagSet, args []string, env func(string) string) (runner, error) {
	var brokers, prefix string
	var partitions int
	fs.StringVar(&brokers, "brokers", env(envBrokers), "Kafka brokers, comma-separated ($"+envBrokers+")")
	fs.StringVar(&prefix, "topic-prefix", env(envTopicPrefix), "prefix of every topic name ($"+envTopicPrefix+")")
	fs.IntVar(&partitions, "partitions", 12, "partitions of the co-partitioned message- and conversation-events topics")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	bs := splitList(brokers)
	if len(bs) == 0 {
		return nil, errors.New("no brokers: set -brokers or " + envBrokers)
	}
	if partitions <= 0 {
		return nil, fmt.Errorf("partitions %d must be positive", partitions)
	}
	return func(ctx context.Context, log *slog.Logger) error {
		topics := kafkax.PrefixedTopics(prefix)
		if err := kafkax.EnsureTopics(ctx, bs, topics.Specs(partitions)...); err != nil {
			return err
		}
		log.Info("topics ready", "topics", topics.All(), "partitions", partitions)
		return nil
	}, nil
}

func parseHealthcheck(fs *flag.FlagSet, args []string, _ func(string) string) (runner, error) {
	want := fs.Int("want", 0, "the status that means healthy (default: any 2xx)")
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for the answer")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() != 1 {
		return nil, errors.New("usage: convmeter healthcheck [-want STATUS] URL")
	}
	url := fs.Arg(0)
	return func(ctx context.Context, _ *slog.Logger) error {
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		ok := resp.StatusCode/100 == 2
		if *want != 0 {
			ok = resp.StatusCode == *want
		}
		if !ok {
			return fmt.Errorf("%s answered %s", url, resp.Status)
		}
		return nil
	}, nil
}

// textReport is a report that prints itself for people.
type textReport interface{ WriteText(io.Writer) error }

// jsonReport is a report that writes its own JSON (an audit streams its lines).
type jsonReport interface{ WriteJSON(io.Writer) error }

// writeReport prints rep, or its indented JSON, through a buffer: a table writer writes each
// cell and its padding apart, a write call each on an unbuffered file (an audit of a month:
// millions of them).
func writeReport(w io.Writer, rep textReport, asJSON bool) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	var err error
	j, ownJSON := rep.(jsonReport)
	switch {
	case asJSON && ownJSON:
		err = j.WriteJSON(bw)
	case asJSON:
		enc := json.NewEncoder(bw)
		enc.SetIndent("", "  ")
		err = enc.Encode(rep)
	default:
		err = rep.WriteText(bw)
	}
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// serveOps serves a command's operational endpoints (/metrics, /healthz, /readyz) on addr until
// ctx ends; an empty addr serves nothing. The listener is open when it returns, so a bad address
// fails the command at start.
func serveOps(ctx context.Context, addr string, h http.Handler, log *slog.Logger) error {
	if addr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("ops endpoint stopped", "addr", addr, "err", err)
		}
	}()
	context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	})
	log.Info("ops endpoint listening", "addr", ln.Addr().String())
	return nil
}

// memoryLimitFlag declares -memory-limit; why, when not empty, says what the limit is for here.
func memoryLimitFlag(fs *flag.FlagSet, b *memlimit.Bytes, why string) {
	fs.Var(b, "memory-limit", "soft limit of the Go heap, near which the GC runs as often as it must whatever -gc-percent says"+why+
		" (like 6GiB; default: GOMEMLIMIT, else 3/4 of the container's memory limit or of physical memory)")
}

// setMemory applies -gc-percent and -memory-limit, logs what is in force and returns the limit
// (math.MaxInt64 when none).
func setMemory(log *slog.Logger, gcPercent int, b memlimit.Bytes) int64 {
	limit, from := memlimit.Set(gcPercent, int64(b))
	log.Info("memory", "gc_percent", gcPercent, "memory_limit", memlimit.Format(limit), "limit_from", from)
	return limit
}
