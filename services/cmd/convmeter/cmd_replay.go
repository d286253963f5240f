package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/events/kafkax"
	"github.com/convmeter/convmeter/services/internal/memlimit"
	"github.com/convmeter/convmeter/services/replay"
	"github.com/convmeter/convmeter/services/window"
)

func init() {
	commands["replay"] = command{
		summary: "rebuild billing and rate limits from the log into a fresh namespace, diff against live (exit 1 when they differ), optionally promote",
		parse:   parseReplay,
	}
}

// replayConfig is the replay command's configuration.
type replayConfig struct {
	Brokers     []string
	RedisURL    string
	TopicPrefix string
	LivePrefix  string
	Prefix      string // the rebuilt namespace
	RateCards   []string
	From, To    events.UnixTime
	Lateness    time.Duration
	BatchSize   int
	CachePairs  int
	JSON        bool
	Promote     bool
	Compare     bool
	Resume      bool
	Drop        bool
	List        bool
	GCPercent   int
	GCFloor     memlimit.Bytes
	MemoryLimit memlimit.Bytes
	Out         io.Writer
	Progress    io.Writer
}

// errDifferent makes the command exit non-zero when the rebuilt namespace differs from live.
var errDifferent = errors.New("rebuilt projections differ from the live ones (see the report)")

func parseReplay(fs *flag.FlagSet, args []string, env func(string) string) (runner, error) {
	c := replayConfig{Out: reportOut, Progress: fs.Output()}
	var brokers, cards, from, to string
	fs.StringVar(&brokers, "brokers", env(envBrokers), "Kafka brokers, comma-separated ($"+envBrokers+")")
	fs.StringVar(&c.RedisURL, "redis", env(envRedisURL), "Redis URL ($"+envRedisURL+")")
	fs.StringVar(&c.TopicPrefix, "topic-prefix", env(envTopicPrefix), "prefix of every topic name ($"+envTopicPrefix+")")
	fs.StringVar(&c.LivePrefix, "live-prefix", "convmeter:", "key prefix of the live namespace (what `project -key-prefix` uses)")
	fs.StringVar(&c.Prefix, "prefix", "", "key prefix of the rebuilt namespace; must be empty unless resuming (default <live-prefix>replay-<unix time>:)")
	fs.StringVar(&cards, "ratecards", "", "rate-card files or directories, comma-separated (default: the shipped EXAMPLE cards)")
	fs.StringVar(&from, "from", "", "replay only input events at or after this event time (RFC 3339, YYYY-MM-DD or Unix seconds)")
	fs.StringVar(&to, "to", "", "replay only input events before this event time")
	fs.DurationVar(&c.Lateness, "lateness", 72*time.Hour, "the aggregator's allowed lateness (must match it)")
	fs.IntVar(&c.BatchSize, "batch", replay.DefaultBatchSize, "engine outputs per projection batch (bigger batches cost Redis less per event and hold more memory: about 23 MB per 50,000, twice per partition)")
	fs.IntVar(&c.CachePairs, "cache-pairs", replay.DefaultCachePairs, "pairs the window engines keep decoded, all partitions together (more costs memory, a few hundred bytes each, and saves CPU)")
	fs.BoolVar(&c.JSON, "json", false, "print the report as JSON")
	fs.IntVar(&c.GCPercent, "gc-percent", 400, "Go GC target for this batch job (GOGC; 400 cuts the replay's CPU by a third, memory is cheap here)")
	c.GCFloor = memlimit.DefaultFloor
	fs.Var(&c.GCFloor, "gc-floor", "no garbage collection until the Go heap reaches this, -gc-percent from then on (at most half the memory limit; 0: -gc-percent from the start)")
	memoryLimitFlag(fs, &c.MemoryLimit, ": a whole month replayed peaks at about 8 GB with 1.65 GB live, and runs 11% slower within 3GiB")
	fs.BoolVar(&c.Compare, "compare", true, "compare with the live namespace (false: only rebuild, e.g. to benchmark or to promote)")
	fs.BoolVar(&c.Promote, "promote", false, "make the rebuilt namespace the live one (stop the projection consumers first); with the -prefix of an interrupted promote, finish it")
	fs.BoolVar(&c.Resume, "resume", false, "continue the interrupted replay into -prefix (same topic, range, lateness and rate cards); a finished one is only compared (and promoted)")
	fs.BoolVar(&c.Drop, "drop", false, "delete the replay namespace -prefix (an interrupted or unwanted replay) and exit")
	fs.BoolVar(&c.List, "list", false, "list the replay namespaces beside the live one that were neither promoted nor dropped, and exit")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if c.RedisURL == "" {
		return nil, errors.New("no Redis: set -redis or " + envRedisURL)
	}
	if c.Drop && c.List || (c.Drop || c.List) && (c.Resume || c.Promote) {
		return nil, errors.New("-drop and -list go alone (with -prefix for -drop)")
	}
	if (c.Drop || c.Resume) && c.Prefix == "" {
		return nil, errors.New("-drop and -resume need the -prefix of the replay (see -list)")
	}
	if c.Drop || c.List {
		c.RateCards = splitList(cards)
		return func(ctx context.Context, log *slog.Logger) error { return manageReplays(ctx, c, log) }, nil
	}
	if c.Brokers = splitList(brokers); len(c.Brokers) == 0 {
		return nil, errors.New("no brokers: set -brokers or " + envBrokers)
	}
	var err error
	if c.From, err = parseEventTime(from); err != nil {
		return nil, fmt.Errorf("-from: %w", err)
	}
	if c.To, err = parseEventTime(to); err != nil {
		return nil, fmt.Errorf("-to: %w", err)
	}
	if c.To != 0 && c.From >= c.To {
		return nil, errors.New("-from must be before -to")
	}
	if c.Promote && (c.From != 0 || c.To != 0) {
		return nil, errors.New("-promote needs a full replay (no -from/-to)")
	}
	if c.Prefix == "" {
		c.Prefix = c.LivePrefix + "replay-" + strconv.FormatInt(time.Now().Unix(), 10) + ":"
	}
	c.RateCards = splitList(cards)
	return func(ctx context.Context, log *slog.Logger) error { return runReplay(ctx, c, log) }, nil
}

// parseEventTime reads "", RFC 3339, YYYY-MM-DD (UTC) or Unix seconds.
func parseEventTime(s string) (events.UnixTime, error) {
	if s == "" {
		return 0, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n > 0 {
		return events.UnixTime(n), nil
	}
	for _, layout := range []string{time.RFC3339, time.DateOnly} {
		if t, err := time.Parse(layout, s); err == nil {
			return events.FromTime(t), nil
		}
	}
	return 0, fmt.Errorf("%q is not RFC 3339, YYYY-MM-DD or Unix seconds", s)
}

func runReplay(ctx context.Context, c replayConfig, log *slog.Logger) error {
	limit := setMemory(log, c.GCPercent, c.MemoryLimit)
	floor := min(int64(c.GCFloor), limit/2)
	stopFloor := func() {}
	if floor > 0 {
		stopFloor = memlimit.Floor(c.GCPercent, floor, limit)
		defer stopFloor()
		log.Info("memory", "gc_floor", memlimit.Format(floor))
	}
	opt, err := redis.ParseURL(c.RedisURL)
	if err != nil {
		return fmt.Errorf("redis url: %w", err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	book, err := loadBook(c.RateCards)
	if err != nil {
		return err
	}
	topic := kafkax.PrefixedTopics(c.TopicPrefix).MessageEvents
	n, err := kafkax.PartitionCount(ctx, c.Brokers, topic)
	if err != nil {
		return fmt.Errorf("partitions of %s: %w", topic, err)
	}
	live, err := replay.OpenNamespace(rdb, c.LivePrefix, book, n, log)
	if err != nil {
		return err
	}
	rebuilt, err := replay.OpenNamespace(rdb, c.Prefix, book, n, log)
	if err != nil {
		return err
	}
	if !c.Resume {
		// A promote of this namespace that was interrupted is finished, not replayed again.
		if promoting, err := replay.Promoting(ctx, rdb, rebuilt); err != nil {
			return err
		} else if promoting && c.Promote {
			log.Warn("replay: finishing an interrupted promote", "from", c.Prefix, "to", c.LivePrefix)
			return promote(ctx, rdb, live, rebuilt, n, log)
		}
		if left, err := replay.List(ctx, rdb, live); err != nil {
			return err
		} else if unfinished := countUnfinished(left); unfinished > 0 {
			log.Warn("replay: unfinished replays hold keys in Redis beside this one: resume or drop them (convmeter replay -list)", "unfinished", unfinished)
		}
	}
	st, err := replay.Rebuild(ctx, rdb, replay.Config{
		Brokers: c.Brokers, Topic: topic, From: c.From, To: c.To, Engine: window.Config{Lateness: c.Lateness},
		BatchSize: c.BatchSize, CachePairs: c.CachePairs, Progress: c.Progress, ProgressBar: isTerminal(c.Progress),
		BeforeRead: replay.Prefault(floor, log),
	}, live, rebuilt, c.Resume, log)
	// The floor is for the rebuild: the comparison after it (1.4 GB of garbage for a million
	// records, a third of it still held) runs under -gc-percent, as before the floor.
	stopFloor()
	if err != nil {
		if errors.Is(err, replay.ErrNotFresh) || errors.Is(err, replay.ErrResumeMismatch) {
			return err
		}
		if m, found, merr := replay.ReadManifest(context.WithoutCancel(ctx), rdb, rebuilt); merr == nil && found && !m.Done {
			fmt.Fprintf(c.Progress, "replay: interrupted; the partial namespace %s is kept: resume it with `convmeter replay -prefix %s -resume` (same flags), or delete it with `convmeter replay -prefix %s -drop`\n",
				c.Prefix, c.Prefix, c.Prefix)
		}
		return err
	}
	rep := &replay.Report{Live: c.LivePrefix, Rebuilt: c.Prefix, From: c.From, To: c.To}
	if beforeCompare != nil {
		beforeCompare()
	}
	if c.Compare {
		if rep, err = replay.Compare(ctx, rdb, live, rebuilt, n, c.From, c.To); err != nil {
			return err
		}
	}
	rep.Replay = &st
	if err := writeReport(c.Out, rep, c.JSON); err != nil {
		return err
	}
	if c.Promote {
		return promote(ctx, rdb, live, rebuilt, n, log)
	}
	if c.Compare && !rep.Equal() {
		return errDifferent
	}
	return nil
}

// beforeCompare, when set (tests), is called after the rebuild, before the comparison.
var beforeCompare func()

// isTerminal reports whether w is a terminal (a character device), where the progress is a bar
// redrawn in place rather than a line every 2 s.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// manageReplays lists the replay namespaces beside the live one, or drops one.
func manageReplays(ctx context.Context, c replayConfig, log *slog.Logger) error {
	opt, err := redis.ParseURL(c.RedisURL)
	if err != nil {
		return fmt.Errorf("redis url: %w", err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	live := &replay.Namespace{Prefix: c.LivePrefix}
	if c.Drop {
		keys, err := replay.Drop(ctx, rdb, live, &replay.Namespace{Prefix: c.Prefix})
		if err != nil {
			return err
		}
		log.Info("replay: dropped", "namespace", c.Prefix, "keys", keys)
		return nil
	}
	left, err := replay.List(ctx, rdb, live)
	if err != nil {
		return err
	}
	if c.JSON {
		enc := json.NewEncoder(c.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(left)
	}
	tw := tabwriter.NewWriter(c.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "prefix\tstate\tstarted\ttopic\trecords\n")
	for _, l := range left {
		state := "interrupted (-resume or -drop)"
		switch {
		case l.Promoting:
			state = "promote interrupted (-promote to finish)"
		case l.Manifest.Done:
			state = "done (compare, -promote or -drop)"
		}
		var records int64
		for p := range l.Manifest.End {
			records += l.Manifest.End[p] - l.Manifest.First[p]
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", l.Prefix, state, l.Manifest.Started.Format(time.RFC3339), l.Manifest.Topic, records)
	}
	return tw.Flush()
}

// countUnfinished counts the listed replays that neither finished nor are being promoted.
func countUnfinished(ls []replay.Listed) int {
	n := 0
	for _, l := range ls {
		if !l.Manifest.Done && !l.Promoting {
			n++
		}
	}
	return n
}

func promote(ctx context.Context, rdb redis.UniversalClient, live, rebuilt *replay.Namespace, partitions int, log *slog.Logger) error {
	keys, err := replay.Promote(ctx, rdb, live, rebuilt, partitions)
	if err != nil {
		return err
	}
	log.Info("replay: promoted", "from", rebuilt.Prefix, "to", live.Prefix, "keys", keys)
	return nil
}
