package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/convmeter/convmeter/services/dev"
)

func init() {
	commands["dev"] = command{
		summary: "run the whole pipeline in one process (embedded broker and Redis), API and dashboard; --simulate feeds traffic",
		parse:   parseDev,
	}
}

func parseDev(fs *flag.FlagSet, args []string, _ func(string) string) (runner, error) {
	var c dev.Config
	home, err := os.UserHomeDir()
	if err != nil {
		home = "."
	}
	var cards string
	fs.StringVar(&c.DataDir, "data", filepath.Join(home, ".convmeter-dev"), "directory that keeps the embedded broker's log across restarts")
	fs.StringVar(&c.Addr, "addr", "127.0.0.1:8080", "listen address of the API and the dashboard")
	fs.BoolVar(&c.Simulate, "simulate", false, "feed realistic generated traffic (a simulated day after another)")
	fs.Float64Var(&c.Speedup, "speedup", 288, "simulated time per wall-clock time (288: a day in 5 minutes; -1: as fast as possible)")
	fs.IntVar(&c.Partitions, "partitions", 4, "partitions of the topics, when they are created")
	fs.IntVar(&c.Model.Numbers, "sim-numbers", dev.DefaultModel().Numbers, "simulated business phone numbers")
	fs.IntVar(&c.Model.WABAs, "sim-wabas", dev.DefaultModel().WABAs, "simulated WABAs (at most -sim-numbers)")
	fs.IntVar(&c.Model.SessionsPerHour, "sim-sessions", dev.DefaultModel().SessionsPerHour, "sessions per number per simulated hour")
	fs.IntVar(&c.Days, "sim-days", 0, "simulated days to play, then stop feeding (0: until stopped)")
	fs.StringVar(&cards, "ratecards", "", "rate-card files or directories, comma-separated (default: the shipped EXAMPLE cards)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if c.Days < 0 {
		return nil, fmt.Errorf("sim-days must not be negative")
	}
	if c.Speedup == 0 {
		return nil, fmt.Errorf("speedup must not be 0")
	}
	if c.Model.Numbers <= 0 || c.Model.WABAs <= 0 || c.Model.WABAs > c.Model.Numbers || c.Model.SessionsPerHour <= 0 {
		return nil, fmt.Errorf("simulation: want 0 < -sim-wabas <= -sim-numbers and -sim-sessions > 0")
	}
	book, err := loadBook(splitList(cards))
	if err != nil {
		return nil, err
	}
	c.Book = book
	return func(ctx context.Context, log *slog.Logger) error {
		c.OnReady = func(url string) {
			fmt.Fprintf(os.Stdout, "convmeter dev: open %s  (data in %s; Ctrl-C to stop)\n", url, c.DataDir)
		}
		return dev.Run(ctx, c, log)
	}, nil
}
