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
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/parleyhq/parley/actors"
	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/events"
)

// reader is a read-only view of the event log, from a running server or
// from a stopped server's data dir.
type reader struct {
	store *events.JetStreamStore
	from  string // where the log was read, for messages
	close func()
}

// openReader finds the log: PARLEY_NATS_URL if set; else the embedded
// server of a running `parley serve` through its listener; else the data
// dir itself, with a private embedded server, when no process holds it.
func openReader(ctx context.Context, cfg config.Config, log *slog.Logger) (*reader, error) {
	if cfg.NATSURL != "" {
		r, err := dialReader(ctx, cfg.NATSURL)
		if err != nil {
			return nil, fmt.Errorf("read the log at %s (PARLEY_NATS_URL): %w", redactURL(cfg.NATSURL), err)
		}
		return r, nil
	}
	if cfg.NATSListen != "" {
		if r, err := dialReader(ctx, "nats://"+cfg.NATSListen); err == nil {
			return r, nil
		}
	}
	if _, err := os.Stat(cfg.DataDir); err != nil {
		return nil, fmt.Errorf("no running server at %s and no data directory %s (PARLEY_DATA_DIR): %w", cfg.NATSListen, cfg.DataDir, err)
	}
	lock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		if errors.Is(err, errLocked) {
			return nil, fmt.Errorf("a server holds %s but its NATS listener %q does not answer: set PARLEY_NATS_URL to reach it, or stop it: %w", cfg.DataDir, cfg.NATSListen, err)
		}
		return nil, err
	}
	emb, err := events.StartEmbedded(events.EmbeddedConfig{StoreDir: cfg.DataDir, Logger: log})
	if err != nil {
		lock.Release()
		return nil, err
	}
	nc, err := emb.Connect()
	if err != nil {
		emb.Shutdown()
		lock.Release()
		return nil, err
	}
	closeAll := func() { nc.Close(); emb.Shutdown(); lock.Release() }
	js, _ := jetstream.New(nc)
	st, err := events.OpenJetStreamStore(ctx, js)
	if err != nil {
		closeAll()
		return nil, fmt.Errorf("data directory %s has no Parley log: %w", cfg.DataDir, err)
	}
	return &reader{store: st, from: "data directory " + cfg.DataDir, close: closeAll}, nil
}

func dialReader(ctx context.Context, url string) (*reader, error) {
	nc, err := nats.Connect(url, nats.Name("parley-replay"), nats.Timeout(2*time.Second), nats.MaxReconnects(0))
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	st, err := events.OpenJetStreamStore(ctx, js)
	if err != nil {
		nc.Close()
		return nil, err
	}
	return &reader{store: st, from: "NATS " + redactURL(url), close: nc.Close}, nil
}

// sessionArg takes the session id out of a replay command line: the
// first argument that is not a flag, where an argument that starts with
// "-" is the id only if it has the form of one (ids are base64url, so
// they may start with "-"), or the argument after "--".
func sessionArg(args []string) (string, []string) {
	rest := func(i int) []string { return append(append([]string(nil), args[:i]...), args[i+1:]...) }
	for i, a := range args {
		switch {
		case a == "--":
			if i+1 < len(args) {
				return args[i+1], append(append([]string(nil), args[:i]...), args[i+2:]...)
			}
			return "", args[:i]
		case !strings.HasPrefix(a, "-") || actors.ValidSessionID(a):
			return a, rest(i)
		}
	}
	return "", args
}

func runReplay(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var asJSON bool
	// Flags may come before or after the session id. A session id may
	// itself start with "-" (ids are base64url): the id is the first
	// argument that does not name a flag.
	session, args := sessionArg(args)
	cfg, fs, err := loadConfig("replay", args, getenv, stderr, func(fs *flag.FlagSet) {
		fs.BoolVar(&asJSON, "json", false, "print one event per line as stored (JSON)")
	})
	if err != nil {
		return err
	}
	if session == "" || fs.NArg() > 0 {
		return &usageError{"usage: parley replay SESSION_ID [--json]"}
	}
	if !actors.ValidSessionID(session) {
		return &usageError{fmt.Sprintf("%q is not a session id (22 characters of A-Z a-z 0-9 - _; `parley sessions` lists them)", session)}
	}
	r, err := openReader(ctx, cfg, newLogger(config.Config{LogLevel: slog.LevelWarn}, stderr))
	if err != nil {
		return err
	}
	defer r.close()
	evs, _, err := r.store.Load(ctx, session, 0)
	if err != nil {
		if errors.Is(err, events.ErrNotFound) {
			return fmt.Errorf("session %s: not in the log (%s)", session, r.from)
		}
		return err
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		for _, ev := range evs {
			if err := enc.Encode(ev); err != nil {
				return err
			}
		}
		return nil
	}
	printTimeline(stdout, session, r.from, evs)
	return nil
}

// printTimeline writes the events as aligned columns: seq, time, kind,
// generation, and what happened in short.
func printTimeline(w io.Writer, session, from string, evs []events.Event) {
	fmt.Fprintf(w, "session %s  (%d events, from %s)\n", session, len(evs), from)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tTIME\tKIND\tGEN\tDETAIL")
	var start time.Time
	for i, ev := range evs {
		at := ev.At.Time()
		if i == 0 {
			start = at
		}
		gen, detail := describe(ev)
		g := ""
		if gen > 0 {
			g = strconv.FormatUint(gen, 10)
		}
		fmt.Fprintf(tw, "%d\t%s (+%s)\t%s\t%s\t%s\n", ev.Seq, at.UTC().Format(events.TimeLayout), at.Sub(start).Round(time.Millisecond), ev.Kind, g, detail)
	}
	tw.Flush()
}

// describe is the gen of an event (0 if none) and a one-line summary.
func describe(ev events.Event) (uint64, string) {
	switch ev.Kind {
	case events.KindSessionCreated:
		var d events.SessionCreated
		_ = ev.Decode(&d)
		return 0, fmt.Sprintf("owner=%s model=%s title=%s system=%s", d.Owner, d.Model, preview(d.Title, 30), preview(d.System, 30))
	case events.KindMessageUser:
		var d events.MessageUser
		_ = ev.Decode(&d)
		s := preview(d.Content, 60)
		if d.ClientMsgID != "" {
			s += " client_msg_id=" + d.ClientMsgID
		}
		return 0, s
	case events.KindGenerationStarted:
		var d events.GenerationStarted
		_ = ev.Decode(&d)
		return ev.Seq, fmt.Sprintf("model=%s provider=%s reply_to=%d", d.Model, d.Provider, d.ReplyTo)
	case events.KindGenerationChunk:
		var d events.GenerationChunk
		_ = ev.Decode(&d)
		return d.Gen, fmt.Sprintf("@%d +%dB %s", d.Offset, len(d.Text), preview(d.Text, 40))
	case events.KindGenerationCompleted:
		var d events.GenerationCompleted
		_ = ev.Decode(&d)
		return d.Gen, fmt.Sprintf("%dB %s done_reason=%s tokens=%d/%d ttft=%dms took=%dms", len(d.Text), preview(d.Text, 40),
			d.DoneReason, d.Usage.PromptTokens, d.Usage.CompletionTokens, d.TTFTMs, d.DurationMs)
	case events.KindGenerationStopped:
		var d events.GenerationStopped
		_ = ev.Decode(&d)
		return d.Gen, fmt.Sprintf("%dB %s", len(d.Text), preview(d.Text, 40))
	case events.KindGenerationFailed:
		var d events.GenerationFailed
		_ = ev.Decode(&d)
		return d.Gen, fmt.Sprintf("%s: %s; %dB kept %s", d.Error.Code, preview(d.Error.Message, 50), len(d.Text), preview(d.Text, 30))
	case events.KindGenerationInterrupted:
		var d events.GenerationInterrupted
		_ = ev.Decode(&d)
		return d.Gen, fmt.Sprintf("%dB kept %s", len(d.Text), preview(d.Text, 40))
	case events.KindSessionTitled:
		var d events.SessionTitled
		_ = ev.Decode(&d)
		return 0, preview(d.Title, 60)
	}
	return 0, string(ev.Data)
}

// preview quotes s, cut to n characters, with control characters escaped
// so a line stays a line.
func preview(s string, n int) string {
	cut := false
	if utf8.RuneCountInString(s) > n {
		r := []rune(s)
		s, cut = string(r[:n]), true
	}
	q := strconv.QuoteToGraphic(s)
	if cut {
		q += "…"
	}
	return q
}

func runSessions(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, fs, err := loadConfig("sessions", args, getenv, stderr, nil)
	if err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return &usageError{"usage: parley sessions"}
	}
	r, err := openReader(ctx, cfg, newLogger(config.Config{LogLevel: slog.LevelWarn}, stderr))
	if err != nil {
		return err
	}
	defer r.close()
	ids, err := r.store.Sessions(ctx)
	if err != nil {
		return err
	}
	sort.Strings(ids)
	for _, id := range ids {
		fmt.Fprintln(stdout, id)
	}
	return nil
}
