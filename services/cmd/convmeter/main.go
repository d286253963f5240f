// Command convmeter runs convmeter's services: `convmeter <command> [flags]`. Each command lives
// in a cmd_<name>.go file that adds itself to commands; main parses the command's flags (with
// defaults from the environment) into its typed config, builds the logger, and runs it until
// SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"
)

// runner runs a parsed command until ctx ends.
type runner func(ctx context.Context, log *slog.Logger) error

// command is one subcommand. parse reads args, with defaults from env, into the command's typed
// config and returns the function that runs it.
type command struct {
	summary string
	parse   func(fs *flag.FlagSet, args []string, env func(string) string) (runner, error)
}

// commands is filled by the cmd_*.go files' init functions.
var commands = map[string]command{}

// Environment variables main reads (and nothing below main does).
const (
	envBrokers     = "CONVMETER_KAFKA_BROKERS"
	envRedisURL    = "CONVMETER_REDIS_URL"
	envTopicPrefix = "CONVMETER_TOPIC_PREFIX"
	envLogLevel    = "CONVMETER_LOG_LEVEL"
)

// shutdownGrace bounds how long a command may take to stop after a signal.
var shutdownGrace = 45 * time.Second

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stderr))
}

func run(args []string, env func(string) string, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		return 2
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "convmeter: unknown command %q\n", args[0])
		usage(stderr)
		return 2
	}
	fs := flag.NewFlagSet("convmeter "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	start, err := cmd.parse(fs, args[1:], env)
	if errors.Is(err, flag.ErrHelp) {
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "convmeter %s: %v\n", args[0], err)
		return 2
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(orDefault(env(envLogLevel), "info"))); err != nil {
		fmt.Fprintf(stderr, "convmeter: %s: %v\n", envLogLevel, err)
		return 2
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level})).With("cmd", args[0])
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// After a signal the command has shutdownGrace to return. Armed by the signal only: a command
	// that returned on its own must not be exited later (run is called in-process by tests, and
	// by nothing else after it returns).
	returned := make(chan struct{})
	defer close(returned)
	disarm := context.AfterFunc(ctx, func() {
		t := time.NewTimer(shutdownGrace)
		defer t.Stop()
		select {
		case <-t.C:
			log.Error("did not stop in time; exiting", "grace", shutdownGrace)
			os.Exit(1)
		case <-returned:
		}
	})
	defer disarm()
	if err := start(ctx, log); err != nil {
		log.Error("exit", "err", err)
		var ee exitError
		if errors.As(err, &ee) {
			return ee.code
		}
		return 1
	}
	log.Info("stopped")
	return 0
}

// Exit codes: 0 done, 1 failed, 2 usage, 3 done but part of the input was bad (audit).
const exitBadInput = 3

// exitError is a command's error with the process exit code it calls for.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }
func (e exitError) Unwrap() error { return e.err }

func usage(w io.Writer) {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintln(w, "usage: convmeter <command> [flags]   (convmeter <command> -h for its flags)")
	for _, n := range names {
		fmt.Fprintf(w, "  %-12s %s\n", n, commands[n].summary)
	}
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// splitList splits a comma-separated flag value, dropping blanks.
func splitList(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}
