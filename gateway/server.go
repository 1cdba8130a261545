package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lesismal/nbio/nbhttp"
	"github.com/lesismal/nbio/nbhttp/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleyhq/parley/actors"
)

// Defaults for the zero values of Config.
const (
	DefaultMaxFrameBytes  = 64 << 10
	DefaultPingInterval   = 25 * time.Second
	DefaultIdleTimeout    = 75 * time.Second
	DefaultMaxWriteBuffer = 1 << 20
	DefaultCommandRate    = 20
	DefaultCommandBurst   = 60
)

// Config configures a Server.
type Config struct {
	// Listen is the TCP address (host:port; port 0 picks one). Required.
	Listen string
	// System is the actor system commands go to. Required.
	System *actors.System
	// Auth says how requests are authenticated.
	Auth AuthConfig
	// MaxFrameBytes bounds a WebSocket message and an HTTP request body.
	// A larger WebSocket message closes the socket with 1009. Zero value
	// means DefaultMaxFrameBytes.
	MaxFrameBytes int
	// PingInterval is how often the server pings each WebSocket. Zero
	// value means DefaultPingInterval.
	PingInterval time.Duration
	// SSEKeepalive is how often each SSE stream gets a comment line.
	// Zero value means DefaultSSEKeepalive.
	SSEKeepalive time.Duration
	// IdleTimeout closes a WebSocket from which nothing (not even a pong)
	// arrived for this long. Zero value means DefaultIdleTimeout.
	IdleTimeout time.Duration
	// CommandRate is how many frames per second a WebSocket client may
	// send on average, CommandBurst how many at once; frames beyond are
	// dropped with an error rate_limited. Zero values mean
	// DefaultCommandRate and DefaultCommandBurst.
	CommandRate  float64
	CommandBurst int
	// MaxWriteBuffer is how many bytes may wait for a slow client before
	// its connection is closed (it can resume from its cursor). Zero value
	// means DefaultMaxWriteBuffer.
	MaxWriteBuffer int
	// Ready reports whether the process can serve traffic (NATS and
	// JetStream reachable), for /readyz. Zero value means always ready.
	Ready func(ctx context.Context) error
	// Alive reports whether the process can still recover by itself, for
	// /healthz: an error there (the event log's connection closed for
	// good) asks the orchestrator to restart it. Zero value means always
	// alive.
	Alive func() error
	// Details adds fields to the /readyz body (provider, model server).
	// Zero value means none.
	Details func() map[string]any
	// Metrics is the registry /metrics serves; Parley's collectors are
	// registered on it. Zero value means a new registry.
	Metrics *prometheus.Registry
	// Logger receives structured logs. Zero value means slog.Default().
	Logger *slog.Logger
}

// Server is the nbio HTTP and WebSocket front end: it decodes client
// frames, authenticates requests and hands commands to the actor system.
// It never blocks an event loop: WebSocket messages are decoded and handed
// to the connection's actor without waiting, and HTTP handlers run on
// nbio's handler pool.
type Server struct {
	cfg      Config
	log      *slog.Logger
	auth     *authenticator
	engine   *nbhttp.Engine
	upgrader *websocket.Upgrader
	addr     atomic.Value // string, set once listening

	mu    sync.Mutex
	conns map[*websocket.Conn]struct{} // open WebSockets, for pings and shutdown
	sse   map[net.Conn]*sseStream      // open SSE streams by nbio connection

	counters gatewayCounters
	metrics  http.Handler

	draining  atomic.Bool
	stopPing  chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// New builds a Server; Start makes it listen.
func New(cfg Config) (*Server, error) {
	if cfg.System == nil {
		return nil, errors.New("gateway: Config.System is required")
	}
	if cfg.Listen == "" {
		return nil, errors.New("gateway: Config.Listen is required")
	}
	if cfg.MaxFrameBytes <= 0 {
		cfg.MaxFrameBytes = DefaultMaxFrameBytes
	}
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = DefaultPingInterval
	}
	if cfg.SSEKeepalive <= 0 {
		cfg.SSEKeepalive = DefaultSSEKeepalive
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.MaxWriteBuffer <= 0 {
		cfg.MaxWriteBuffer = DefaultMaxWriteBuffer
	}
	if cfg.CommandRate <= 0 {
		cfg.CommandRate = DefaultCommandRate
	}
	if cfg.CommandBurst <= 0 {
		cfg.CommandBurst = DefaultCommandBurst
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{
		cfg:      cfg,
		log:      cfg.Logger.With(slog.String("component", "gateway")),
		auth:     newAuthenticator(cfg.Auth),
		conns:    make(map[*websocket.Conn]struct{}),
		sse:      make(map[net.Conn]*sseStream),
		stopPing: make(chan struct{}),
	}
	if cfg.Metrics == nil {
		cfg.Metrics = prometheus.NewRegistry()
		s.cfg.Metrics = cfg.Metrics
	}
	s.metrics = s.newMetrics(cfg.Metrics)
	routeNBIOLogs(cfg.Logger)
	s.upgrader = s.newUpgrader()
	s.engine = nbhttp.NewEngine(nbhttp.Config{
		Name:                    "parley",
		Network:                 "tcp",
		Addrs:                   []string{cfg.Listen},
		Handler:                 s.routes(),
		ReleaseWebsocketPayload: true,
		MaxWriteBufferSize:      cfg.MaxWriteBuffer,
		// Bodies a little over the limit get a 413 from the handler;
		// nbio cuts the connection only for far larger ones.
		MaxHTTPBodySize: max(4*cfg.MaxFrameBytes, 1<<20),
		KeepaliveTime:   cfg.IdleTimeout,
		Listen: func(network, addr string) (net.Listener, error) {
			ln, err := net.Listen(network, addr)
			if err == nil {
				s.addr.Store(ln.Addr().String())
			}
			return ln, err
		},
	})
	s.engine.OnClose(func(c net.Conn, _ error) { s.sseClosed(c) })
	syncAcceptForRace(s.engine)
	return s, nil
}

// Start listens and serves in the background.
func (s *Server) Start() error {
	if err := s.engine.Start(); err != nil {
		return fmt.Errorf("gateway: listen on %s: %w", s.cfg.Listen, err)
	}
	s.wg.Add(2)
	go s.pingLoop()
	go s.sseKeepaliveLoop()
	return nil
}

// Addr is the address the server listens on, once started.
func (s *Server) Addr() string {
	a, _ := s.addr.Load().(string)
	return a
}

// Drain marks the server not ready (/readyz answers 503) so that load
// balancers stop sending new traffic, while open connections go on.
func (s *Server) Drain() { s.draining.Store(true) }

// Shutdown tells every WebSocket client to reconnect (a reconnect frame
// with a spread-out after_ms, so that thousands of clients do not come
// back at the same instant), closes it with 1001 (going away; clients
// resume from their cursor, here or elsewhere), ends every SSE stream,
// stops listening and waits for the server's goroutines. It is safe to
// call more than once.
func (s *Server) Shutdown(ctx context.Context) error {
	var err error
	s.closeOnce.Do(func() {
		s.draining.Store(true)
		close(s.stopPing)
		s.mu.Lock()
		for c := range s.conns {
			_ = c.WriteMessage(websocket.TextMessage, actors.ReconnectFrame(reconnectDelay()).JSON)
			_ = c.WriteClose(1001, "server shutting down")
		}
		for _, st := range s.sse {
			st.Close(0, "")
		}
		s.mu.Unlock()
		err = s.engine.Shutdown(ctx)
		s.wg.Wait()
	})
	return err
}

// reconnectDelay is when a client told to reconnect should come back:
// between ReconnectMinDelay and ReconnectMaxDelay, at random.
func reconnectDelay() time.Duration {
	return ReconnectMinDelay + rand.N(ReconnectMaxDelay-ReconnectMinDelay)
}

// The spread of reconnect delays given at shutdown.
const (
	ReconnectMinDelay = 500 * time.Millisecond
	ReconnectMaxDelay = 5 * time.Second
)

// pingLoop pings every WebSocket each PingInterval and closes those
// silent for longer than IdleTimeout (checked every IdleTimeout/4, so a
// silent socket goes within 1.25 IdleTimeout), from one goroutine: no
// timer per connection.
func (s *Server) pingLoop() {
	defer s.wg.Done()
	ping := time.NewTicker(s.cfg.PingInterval)
	defer ping.Stop()
	sweep := time.NewTicker(max(s.cfg.IdleTimeout/4, time.Millisecond))
	defer sweep.Stop()
	var batch []*websocket.Conn
	for {
		pinging := false
		select {
		case <-s.stopPing:
			return
		case <-ping.C:
			pinging = true
		case <-sweep.C:
		}
		s.mu.Lock()
		batch = batch[:0]
		for c := range s.conns {
			batch = append(batch, c)
		}
		s.mu.Unlock()
		if pinging {
			for _, c := range batch {
				_ = c.WriteMessage(websocket.PingMessage, nil)
			}
		} else {
			s.sweepIdle(batch)
		}
		clear(batch)
	}
}

// sweepIdle closes the sockets in batch from which nothing arrived for
// longer than IdleTimeout, as a read deadline would have.
func (s *Server) sweepIdle(batch []*websocket.Conn) {
	cutoff := time.Now().Add(-s.cfg.IdleTimeout).UnixNano()
	for _, c := range batch {
		if w, ok := c.Session().(*wsConn); ok && w.seen.Load() < cutoff {
			s.log.Debug("closing a silent websocket", slog.Duration("idle_timeout", s.cfg.IdleTimeout))
			_ = c.WriteClose(1001, "idle timeout")
			_ = c.Close()
		}
	}
}

// sseKeepaliveLoop writes a comment line to every SSE stream each
// SSEKeepalive, so proxies keep them open.
func (s *Server) sseKeepaliveLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.SSEKeepalive)
	defer t.Stop()
	var batch []*sseStream
	for {
		select {
		case <-s.stopPing:
			return
		case <-t.C:
		}
		s.mu.Lock()
		batch = batch[:0]
		for _, st := range s.sse {
			batch = append(batch, st)
		}
		s.mu.Unlock()
		for _, st := range batch {
			st.write(keepaliveComment)
		}
		clear(batch)
	}
}

// OpenStreams is how many SSE streams are open.
func (s *Server) OpenStreams() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sse)
}

// OpenConnections is how many WebSockets are open.
func (s *Server) OpenConnections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.handleIndex)
	mux.HandleFunc("GET /v1/ws", s.handleWS)
	mux.HandleFunc("POST /v1/sessions", apiHandler(s, http.StatusCreated, s.handleCreate))
	mux.HandleFunc("GET /v1/sessions", apiHandler(s, http.StatusOK, s.handleList))
	mux.HandleFunc("GET /v1/sessions/{id}", apiHandler(s, http.StatusOK, s.handleDetail))
	mux.HandleFunc("POST /v1/sessions/{id}/messages", apiHandler(s, http.StatusAccepted, s.handleSend))
	mux.HandleFunc("GET /v1/sessions/{id}/events", s.handleSSE)
	mux.HandleFunc("POST /v1/sessions/{id}/stop", apiHandler(s, http.StatusAccepted, s.handleStop))
	mux.HandleFunc("POST /v1/sessions/{id}/regenerate", apiHandler(s, http.StatusAccepted, s.handleRegenerate))
	mux.HandleFunc("GET /v1/models", apiHandler(s, http.StatusOK, s.handleModels))
	mux.HandleFunc("GET /healthz", s.handleHealthz)
	mux.HandleFunc("GET /readyz", s.handleReadyz)
	mux.Handle("GET /metrics", s.metrics)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &actors.Error{Code: actors.CodeNotFound, Message: "no such endpoint: " + r.Method + " " + r.URL.Path})
	})
	if s.cfg.Auth.Required {
		return mux
	}
	return localOnly(mux)
}
