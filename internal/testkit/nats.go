package testkit

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/parleyhq/parley/events"
)

// NATS is a real embedded nats-server with JetStream for one test, storing
// in its own temp dir.
type NATS struct {
	Server *events.Embedded
	Conn   *nats.Conn
	JS     jetstream.JetStream
	Dir    string
}

// NewNATS starts an embedded NATS server with JetStream in dir (a new temp
// dir when dir is ""), connects to it in process, and stops both when the
// test ends. listen is the client listener ("" for none, "127.0.0.1:0"
// for a random port).
func NewNATS(tb testing.TB, dir, listen string) *NATS {
	tb.Helper()
	if dir == "" {
		dir = tb.TempDir()
	}
	srv, err := events.StartEmbedded(events.EmbeddedConfig{StoreDir: dir, Listen: listen, Logger: Logger(tb)})
	if err != nil {
		tb.Fatal(err)
	}
	nc, err := srv.Connect()
	if err != nil {
		srv.Shutdown()
		tb.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	n := &NATS{Server: srv, Conn: nc, JS: js, Dir: dir}
	tb.Cleanup(n.Close)
	return n
}

// Close disconnects and stops the server; it is safe to call twice.
func (n *NATS) Close() {
	n.Conn.Close()
	n.Server.Shutdown()
}

// Store creates the Parley stream and bucket on n.
func (n *NATS) Store(tb testing.TB) *events.JetStreamStore {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := events.NewJetStreamStore(ctx, n.JS, events.JetStreamConfig{})
	if err != nil {
		tb.Fatal(err)
	}
	return st
}

// Logger returns a logger that writes to the test's log at warn level and
// above, so failures show what went wrong without flooding passing runs.
func Logger(tb testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tbWriter{tb}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tbWriter struct{ tb testing.TB }

func (w tbWriter) Write(p []byte) (int, error) {
	w.tb.Helper()
	w.tb.Log(string(p))
	return len(p), nil
}
