package events

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// EmbeddedMaxPayload is the largest message the embedded server takes:
// 8 MiB (NATS's default is 1 MiB), so that a terminal event carrying a
// long reply (up to the session actors' MaxReplyBytes, JSON-escaped)
// always fits.
const EmbeddedMaxPayload = 8 << 20

// EmbeddedConfig configures an embedded NATS server with JetStream.
type EmbeddedConfig struct {
	// StoreDir holds JetStream's files. Required.
	StoreDir string
	// Listen is the client listener ("host:port", port 0 picks one), so
	// that tools and the nats CLI can reach a running server. Zero value
	// means no listener: in-process connections only.
	Listen string
	// SyncInterval is how often JetStream fsyncs. Zero value means the
	// server's default (2 minutes).
	SyncInterval time.Duration
	// Logger receives the server's logs. Zero value means slog.Default().
	Logger *slog.Logger
	// ReadyTimeout bounds the wait for the server to accept connections.
	// Zero value means 10 s.
	ReadyTimeout time.Duration
}

// Embedded is a running in-process NATS server.
type Embedded struct {
	srv *server.Server
}

// StartEmbedded starts a NATS server with JetStream storing under
// cfg.StoreDir and waits until it is ready.
func StartEmbedded(cfg EmbeddedConfig) (*Embedded, error) {
	if cfg.StoreDir == "" {
		return nil, errors.New("events: EmbeddedConfig.StoreDir is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ReadyTimeout <= 0 {
		cfg.ReadyTimeout = 10 * time.Second
	}
	opts := &server.Options{
		ServerName:            "parley-embedded",
		JetStream:             true,
		StoreDir:              cfg.StoreDir,
		NoSigs:                true,
		SyncInterval:          cfg.SyncInterval,
		DisableShortFirstPing: true,
		MaxPayload:            EmbeddedMaxPayload,
	}
	if cfg.Listen == "" {
		opts.DontListen = true
	} else {
		host, port, err := net.SplitHostPort(cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("events: embedded listen %q: %w", cfg.Listen, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return nil, fmt.Errorf("events: embedded listen %q: bad port", cfg.Listen)
		}
		if p == 0 {
			p = server.RANDOM_PORT
		}
		opts.Host, opts.Port = host, p
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("events: embedded nats: %w", err)
	}
	srv.SetLoggerV2(&natsLogger{log: cfg.Logger.With(slog.String("component", "nats"))}, false, false, false)
	srv.Start()
	if !srv.ReadyForConnections(cfg.ReadyTimeout) {
		srv.Shutdown()
		return nil, fmt.Errorf("events: embedded nats not ready within %v (store %s)", cfg.ReadyTimeout, cfg.StoreDir)
	}
	return &Embedded{srv: srv}, nil
}

// Connect returns an in-process client connection to the server.
// nats.go closes a connection for good when the server answers a protocol
// error (a subject over the control-line limit, say): callers validate
// what goes into subjects and keys, and /healthz fails if it happens.
func (e *Embedded) Connect(opts ...nats.Option) (*nats.Conn, error) {
	opts = append([]nats.Option{nats.InProcessServer(e.srv), nats.Name("parley")}, opts...)
	nc, err := nats.Connect("", opts...)
	if err != nil {
		return nil, fmt.Errorf("events: connect embedded nats: %w", err)
	}
	return nc, nil
}

// ClientURL is the URL of the client listener, "" when there is none.
func (e *Embedded) ClientURL() string {
	if e.srv.Addr() == nil {
		return ""
	}
	return e.srv.ClientURL()
}

// Shutdown stops the server after flushing JetStream to disk. It is safe
// to call more than once.
func (e *Embedded) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}

// natsLogger adapts slog to the nats-server logger interface.
type natsLogger struct{ log *slog.Logger }

func (l *natsLogger) Noticef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *natsLogger) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l *natsLogger) Fatalf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l *natsLogger) Errorf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l *natsLogger) Debugf(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *natsLogger) Tracef(format string, v ...any)  {}
