// Command parley is the Parley chat backend: `parley serve` runs it,
// `parley replay` prints a session's event log, `parley sessions` lists
// the sessions in a log, `parley loadgen` loads a Parley on loopback and
// reports, `parley version` prints the build.
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
	"runtime/debug"
	"syscall"

	"github.com/parleyhq/parley/config"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "parley:", err)
		}
		os.Exit(exitCode(err))
	}
}

// usageError is a bad command line: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func exitCode(err error) int {
	var ue *usageError
	if errors.As(err, &ue) || errors.Is(err, flag.ErrHelp) {
		return 2
	}
	return 1
}

const usage = `usage: parley <command> [flags]

commands:
  serve                 run Parley (embedded NATS unless PARLEY_NATS_URL is set)
  replay SESSION [--json]  print a session's event log as a timeline
  sessions              list the sessions in the event log
  loadgen [flags]       open many WebSockets to a Parley on loopback, chat, report (-h for flags)
  version               print the version

Configuration comes from PARLEY_* environment variables (see docs/config.md);
each has a flag too: parley serve -h lists them.`

// run is the whole program; main only turns its error into an exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return &usageError{"no command given"}
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return runServe(ctx, rest, getenv, stdout, stderr)
	case "replay":
		return runReplay(ctx, rest, getenv, stdout, stderr)
	case "sessions":
		return runSessions(ctx, rest, getenv, stdout, stderr)
	case "loadgen":
		return runLoadgen(ctx, rest, os.Stdin, stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "parley", version())
		return nil
	case "help", "-h", "-help", "--help":
		fmt.Fprintln(stdout, usage)
		return nil
	default:
		fmt.Fprintln(stderr, usage)
		return &usageError{fmt.Sprintf("unknown command %q", cmd)}
	}
}

// loadConfig reads the environment, then the command's flags over it, and
// validates the result. extra registers the command's own flags.
func loadConfig(name string, args []string, getenv func(string) string, stderr io.Writer, extra func(*flag.FlagSet)) (config.Config, *flag.FlagSet, error) {
	cfg, envErr := config.FromEnv(getenv)
	fs := flag.NewFlagSet("parley "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.RegisterFlags(fs)
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, fs, err
		}
		// An unknown flag or a bad flag value is a bad command line.
		return cfg, fs, &usageError{err.Error()}
	}
	if envErr != nil {
		return cfg, fs, fmt.Errorf("configuration:\n%w", envErr)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fs, fmt.Errorf("configuration:\n%w", err)
	}
	return cfg, fs, nil
}

// newLogger builds the process's logger from the config.
func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == config.LogFormatJSON {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown)"
	}
	v := bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += " " + s.Value[:12]
		}
	}
	return v + " " + bi.GoVersion
}
