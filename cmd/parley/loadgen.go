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
	"os/exec"
	"runtime/pprof"
	"strconv"
	"strings"

	"github.com/lesismal/nbio/logging"

	"github.com/parleyhq/parley/bench/loadgen"
)

// runLoadgen parses the loadgen flags and runs the load generator (or,
// with the hidden -worker flag, one of its worker processes).
func runLoadgen(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("parley loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfg       loadgen.Config
		conns     = fs.String("conns", "100", "connections to open: a count, or increasing steps measured one by one (5000,10000,19000)")
		sourceIPs = fs.String("source-ips", "", "127.x.x.x source addresses, comma-separated (default: as many as the connection count needs)")
		asJSON    = fs.Bool("json", false, "print the final report as JSON")
		jsonOut   = fs.String("json-out", "", "also write the JSON report to this file")
		direct    = fs.String("direct", "", "instead of Parley, chat straight with this Ollama-protocol server (http://127.0.0.1:port) to measure the reference latency")
		model     = fs.String("model", "", "model for -direct")
		logLevel  = fs.String("log-level", "warn", "debug, info, warn or error")
		worker    = fs.Bool("worker", false, "run as a worker process of another loadgen (internal)")
		cpuProf   = fs.String("cpuprofile", "", "write the load generator's own CPU profile here (in-process workers only)")
	)
	fs.StringVar(&cfg.URL, "url", loadgen.DefaultURL, "Parley's WebSocket endpoint (loopback only)")
	fs.StringVar(&cfg.Token, "token", "", "bearer token (API key or JWT) when Parley requires auth")
	fs.IntVar(&cfg.Sessions, "sessions", 0, "sessions the connections attach to, round robin (default: connections/10)")
	fs.IntVar(&cfg.Chats, "chats", 0, "concurrent chat loops (send, deltas, terminal event, again); 0: no chat phase")
	fs.DurationVar(&cfg.ChatDuration, "chat-duration", loadgen.DefaultChatDuration, "length of the chat phase")
	fs.DurationVar(&cfg.ChatTimeout, "chat-timeout", loadgen.DefaultChatTimeout, "a chat with no terminal event after this long is an error")
	fs.DurationVar(&cfg.Think, "think", 0, "pause between a reply's end and the next send")
	fs.StringVar(&cfg.Prompt, "prompt", loadgen.DefaultPrompt, "message content of each send")
	fs.DurationVar(&cfg.Churn, "churn", 0, "after the last step, close and reopen every connection over and over for this long")
	fs.DurationVar(&cfg.Settle, "settle", loadgen.DefaultSettle, "wait after each step (and after closing) before measuring the server")
	fs.DurationVar(&cfg.Hold, "hold", 0, "hold each step this long after measuring it")
	fs.DurationVar(&cfg.Duration, "duration", loadgen.DefaultDuration, "bound on the whole run (capped at "+loadgen.MaxDuration.String()+")")
	fs.IntVar(&cfg.DialConcurrency, "dial-concurrency", loadgen.DefaultDialConcurrency, "connections being opened at once, per process")
	fs.DurationVar(&cfg.DialTimeout, "dial-timeout", loadgen.DefaultDialTimeout, "bound on one dial and handshake")
	fs.IntVar(&cfg.Procs, "procs", 0, "client processes (default: one per -per-proc connections)")
	fs.IntVar(&cfg.PerProc, "per-proc", loadgen.DefaultPerProc, "most connections one client process holds when -procs is 0")
	fs.IntVar(&cfg.ServerPID, "server-pid", 0, "server process to measure (default: the one listening on the target port; -1: none)")
	fs.StringVar(&cfg.NATSURL, "nats-url", "", "the server's NATS (nats://127.0.0.1:port), to count JetStream writes")
	fs.StringVar(&cfg.PprofURL, "pprof-url", "", "the server's net/http/pprof (http://127.0.0.1:port/debug/pprof), for goroutines and heap")
	fs.StringVar(&cfg.HeapProfileDir, "heap-profile-dir", "", "with -pprof-url: save the server's heap profile before the first step and after each one here")
	fs.DurationVar(&cfg.Progress, "progress", loadgen.DefaultProgress, "interval of the progress lines on stderr")
	fs.StringVar(&cfg.Label, "label", "", "name of the run in the report")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return &usageError{fmt.Sprintf("loadgen takes no arguments, got %q", fs.Args())}
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return &usageError{"-log-level: want debug, info, warn or error"}
	}
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	logging.SetLevel(logging.LevelWarn) // nbio's own start/stop lines

	if *worker {
		return loadgen.ServeWorker(ctx, stdin, stdout, cfg.Logger)
	}
	if *cpuProf != "" {
		f, err := os.Create(*cpuProf)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if *direct != "" {
		rep, err := loadgen.RunDirect(ctx, loadgen.DirectConfig{
			URL: *direct, Model: *model, Chats: max(cfg.Chats, 1), Duration: cfg.ChatDuration, Prompt: cfg.Prompt,
		})
		if err != nil {
			return err
		}
		return output(rep, rep.WriteText, *asJSON, *jsonOut, stdout)
	}

	for _, s := range strings.Split(*conns, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			return &usageError{fmt.Sprintf("-conns %q: want positive counts, comma-separated", *conns)}
		}
		cfg.Conns = append(cfg.Conns, n)
	}
	if *sourceIPs != "" {
		cfg.SourceIPs = strings.Split(*sourceIPs, ",")
	}
	if exe, err := os.Executable(); err == nil {
		cfg.WorkerCommand = func() *exec.Cmd {
			return exec.Command(exe, "loadgen", "-worker", "-log-level", *logLevel)
		}
		cfg.WorkerStderr = stderr
	}
	rep, err := loadgen.Run(ctx, cfg, stderr)
	if rep != nil {
		err = errors.Join(err, output(rep, rep.WriteText, *asJSON, *jsonOut, stdout))
	}
	return err
}

// output prints a report as text (or JSON) and writes its JSON to
// jsonOut when set.
func output(rep any, text func(io.Writer) error, asJSON bool, jsonOut string, stdout io.Writer) error {
	if jsonOut != "" {
		f, err := os.Create(jsonOut)
		if err != nil {
			return err
		}
		if err := errors.Join(writeJSON(f, rep), f.Close()); err != nil {
			return fmt.Errorf("write %s: %w", jsonOut, err)
		}
	}
	if asJSON {
		return writeJSON(stdout, rep)
	}
	return text(stdout)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
