package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/events/kafkax"
	"github.com/convmeter/convmeter/events/producer"
	"github.com/convmeter/convmeter/services/ingest"
	"github.com/convmeter/convmeter/services/loadgen"
)

func init() {
	commands["loadgen"] = command{
		summary: "drive a deployment with the realistic traffic model: Kafka (producer SDK) or signed webhooks to ingest; or write it as a webhook export for audit",
		parse:   parseLoadgen,
	}
}

// envLoadgenSecret is the app secret loadgen signs webhooks with (secrets never come from flags);
// the first of CONVMETER_APP_SECRETS when unset.
const envLoadgenSecret = "CONVMETER_LOADGEN_APP_SECRET"

// loadgenConfig is the loadgen command's configuration.
type loadgenConfig struct {
	Model       loadgen.Config
	Mode        string // kafka, webhook or file
	Brokers     []string
	TopicPrefix string
	URL         string
	Secret      string
	Speedup     float64
	Batch       int
	Limit       int
	// Out and AccountsOut are where file mode writes the webhook bodies (JSON lines; "-" is
	// standard output) and the accounts file.
	Out, AccountsOut string
}

func parseLoadgen(fs *flag.FlagSet, args []string, env func(string) string) (runner, error) {
	var c loadgenConfig
	var brokers, start string
	fs.StringVar(&c.Mode, "mode", "kafka", "kafka (events through the producer SDK), webhook (signed POSTs to -url) or file (a webhook export for `convmeter audit`: -out and -accounts-out)")
	fs.StringVar(&brokers, "brokers", env(envBrokers), "Kafka brokers ($"+envBrokers+"); in webhook mode, where account configs go")
	fs.StringVar(&c.TopicPrefix, "topic-prefix", env(envTopicPrefix), "prefix of every topic name ($"+envTopicPrefix+")")
	fs.StringVar(&c.URL, "url", "http://localhost:8081/webhook", "ingest webhook URL (webhook mode)")
	fs.Uint64Var(&c.Model.Seed, "seed", 1, "traffic seed: equal seeds give equal traffic")
	fs.IntVar(&c.Model.WABAs, "wabas", 2, "business accounts")
	fs.IntVar(&c.Model.Numbers, "numbers", 4, "business phone numbers")
	fs.IntVar(&c.Model.UsersPerNumber, "users", 2000, "users per number")
	fs.IntVar(&c.Model.SessionsPerHour, "sessions-per-hour", 600, "sessions each number starts per simulated hour")
	fs.DurationVar(&c.Model.Duration, "duration", 24*time.Hour, "simulated time span")
	fs.StringVar(&start, "start", "2025-07-01T00:00:00Z", "simulated start (RFC 3339)")
	fs.Float64Var(&c.Speedup, "speedup", 1440, "simulated seconds per wall second (1440: a day in a minute; 0: as fast as possible)")
	fs.IntVar(&c.Batch, "batch", 500, "events per Kafka publish, or webhook items per POST (file mode: per line, default 1)")
	fs.StringVar(&c.Out, "out", "", "file mode: where the webhook bodies go, one per line (- for standard output)")
	fs.StringVar(&c.AccountsOut, "accounts-out", "", "file mode: where the accounts file goes (default: -out with .accounts.json for its extension)")
	fs.IntVar(&c.Limit, "limit", 0, "stop after this many items (0: the whole model)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	t, err := time.Parse(time.RFC3339, start)
	if err != nil {
		return nil, fmt.Errorf("-start: %w", err)
	}
	c.Model.Start = t
	c.Brokers = splitList(brokers)
	c.Batch = max(c.Batch, 1)
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if (set["out"] || set["accounts-out"]) && c.Mode != "file" {
		return nil, errors.New("-out and -accounts-out are for -mode file")
	}
	switch c.Mode {
	case "kafka":
		if len(c.Brokers) == 0 {
			return nil, errors.New("no brokers: set -brokers or " + envBrokers)
		}
	case "webhook":
		c.Secret = env(envLoadgenSecret)
		if c.Secret == "" {
			if s := splitList(env(envAppSecrets)); len(s) > 0 {
				c.Secret = s[0]
			}
		}
		if c.Secret == "" {
			return nil, errors.New("webhook mode signs with an app secret: set " + envLoadgenSecret + " or " + envAppSecrets)
		}
	case "file":
		// Meta posts a status or two per webhook; a file of one item per line reads like an export.
		if !set["batch"] {
			c.Batch = 1
		}
		// The file is written as fast as the model runs: its times are in the bodies.
		c.Speedup = 0
		if c.Out == "" {
			return nil, errors.New("file mode needs -out (a path, or - for standard output)")
		}
		if c.AccountsOut == "" {
			if c.Out == "-" {
				return nil, errors.New("file mode to standard output needs -accounts-out")
			}
			c.AccountsOut = strings.TrimSuffix(c.Out, filepath.Ext(c.Out)) + ".accounts.json"
		}
		if c.AccountsOut == c.Out {
			return nil, errors.New("-accounts-out and -out name the same file")
		}
	default:
		return nil, fmt.Errorf("unknown -mode %q (kafka, webhook or file)", c.Mode)
	}
	if _, err := loadgen.New(c.Model); err != nil {
		return nil, err
	}
	return func(ctx context.Context, log *slog.Logger) error { return runLoadgen(ctx, c, log) }, nil
}

func runLoadgen(ctx context.Context, c loadgenConfig, log *slog.Logger) error {
	m, err := loadgen.New(c.Model)
	if err != nil {
		return err
	}
	var pr *producer.Producer
	if len(c.Brokers) > 0 {
		if pr, err = producer.New(ctx, c.Brokers, producer.WithTopic(kafkax.PrefixedTopics(c.TopicPrefix).MessageEvents)); err != nil {
			return err
		}
		defer pr.Close()
	}
	var send func(ctx context.Context, its []loadgen.Item) error
	finish := func() error { return nil }
	switch c.Mode {
	case "kafka":
		send = func(ctx context.Context, its []loadgen.Item) error {
			evs := make([]events.Event, len(its))
			for i, it := range its {
				evs[i] = it.Event
			}
			return pr.Publish(ctx, evs...)
		}
	case "webhook":
		client := &http.Client{Timeout: 30 * time.Second}
		send = func(ctx context.Context, its []loadgen.Item) error {
			var hooks []loadgen.Item
			var accts []events.Event
			for _, it := range its {
				switch {
				case it.Webhook:
					hooks = append(hooks, it)
				case it.Event.Type == events.TypeAccountConfig:
					accts = append(accts, it.Event)
				}
			}
			if len(accts) > 0 {
				if pr == nil {
					log.Warn("loadgen: account configs not published: no -brokers", "configs", len(accts))
				} else if err := pr.Publish(ctx, accts...); err != nil {
					return err
				}
			}
			if len(hooks) == 0 {
				return nil
			}
			return postWebhook(ctx, client, c.URL, c.Secret, hooks)
		}
	case "file":
		w, done, err := openExport(c.Out, c.AccountsOut, m.Accounts())
		if err != nil {
			return err
		}
		defer func() { _ = done() }() // closes the file when the run fails before finish
		send = func(_ context.Context, its []loadgen.Item) error { return writeWebhooks(w, its) }
		finish = func() error {
			if err := w.Flush(); err != nil {
				return fmt.Errorf("write %s: %w", c.Out, err)
			}
			return done()
		}
	}
	start := time.Now()
	var pending []loadgen.Item
	sent, last := 0, time.Now()
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		if err := send(ctx, pending); err != nil {
			return err
		}
		sent += len(pending)
		pending = pending[:0]
		last = time.Now()
		return nil
	}
	errStop := errors.New("limit reached")
	err = loadgen.Play(ctx, m, c.Speedup, func(it loadgen.Item) error {
		if c.Mode == "file" && !it.Webhook {
			return nil // an export holds what Meta posted: -limit counts those
		}
		if c.Limit > 0 && sent+len(pending) >= c.Limit {
			return errStop
		}
		pending = append(pending, it)
		if len(pending) >= c.Batch || time.Since(last) > 100*time.Millisecond {
			return flush()
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return err
	}
	if err := flush(); err != nil {
		return err
	}
	if err := finish(); err != nil {
		return err
	}
	el := time.Since(start).Seconds()
	log.Info("loadgen: done", "mode", c.Mode, "items", sent, "seconds", el, "items_per_second", int64(float64(sent)/max(el, 1e-9)))
	return nil
}

// openExport writes the accounts file and opens the webhook file of file mode. done closes the
// webhook file (once; later calls return the first result).
func openExport(out, accountsOut string, accounts []*events.AccountConfig) (w *bufio.Writer, done func() error, err error) {
	b, err := json.MarshalIndent(accounts, "", "  ")
	if err != nil {
		return nil, nil, fmt.Errorf("encode accounts: %w", err)
	}
	if err := os.WriteFile(accountsOut, append(b, '\n'), 0o644); err != nil {
		return nil, nil, fmt.Errorf("write accounts file: %w", err)
	}
	if out == "-" {
		return bufio.NewWriterSize(os.Stdout, 1<<20), func() error { return nil }, nil
	}
	f, err := os.Create(out)
	if err != nil {
		return nil, nil, fmt.Errorf("create webhook file: %w", err)
	}
	return bufio.NewWriterSize(f, 1<<20), sync.OnceValue(f.Close), nil
}

// writeWebhooks writes webhook items (runLoadgen passes only those in file mode: outbound sends
// and account configs Meta never posts) as one webhook body line.
func writeWebhooks(w *bufio.Writer, its []loadgen.Item) error {
	body, err := loadgen.Webhook(its...)
	if err != nil {
		return err
	}
	if _, err := w.Write(append(body, '\n')); err != nil {
		return fmt.Errorf("write webhooks: %w", err)
	}
	return nil
}

// postWebhook sends items as one signed webhook POST, as Meta does (X-Hub-Signature-256).
func postWebhook(ctx context.Context, client *http.Client, url, secret string, its []loadgen.Item) error {
	body, err := loadgen.Webhook(its...)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Hub-Signature-256", ingest.Sign(secret, body))
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("post webhook: %w", err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("post webhook: %s: %s", resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}
