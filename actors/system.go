package actors

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/parleyhq/parley/events"
	"github.com/parleyhq/parley/llm"
)

// Log attribute keys.
const (
	logKeySession = "session"
	logKeyGen     = "gen"
	logKeyError   = "error"
)

// Config configures a System.
type Config struct {
	// Store is the session event log. Required.
	Store events.Store
	// Index keeps session summaries for listing. Required.
	Index events.Index
	// Snapshots speeds up rehydration: a passivating session writes one,
	// and a session actor starts from it plus the events after it. Zero
	// value means every rehydration replays the whole log.
	Snapshots events.Snapshots
	// SnapshotTail is how many events after its snapshot a rehydrated
	// session may find before it writes a new one. Zero value means 256.
	SnapshotTail int
	// Provider generates replies. Required.
	Provider llm.Provider
	// DefaultModel is the model of sessions created without one. Required.
	DefaultModel string
	// ChunkInterval is how long a running reply may go unpersisted.
	// Zero value means 250ms.
	ChunkInterval time.Duration
	// ChunkBytes is how many unpersisted reply bytes force a chunk.
	// Zero value means 4096.
	ChunkBytes int
	// SessionIdleTimeout is how long a session actor with no attached
	// connection and no generation stays in memory. Zero value means 5m.
	SessionIdleTimeout time.Duration
	// RequestTimeout bounds how long a System method waits for an actor.
	// Zero value means 10s.
	RequestTimeout time.Duration
	// StoreTimeout bounds one event-log write. Zero value means 5s.
	StoreTimeout time.Duration
	// Logger receives structured logs. Zero value means slog.Default().
	Logger *slog.Logger
	// Now is the clock. Zero value means time.Now.
	Now func() time.Time
}

func (c *Config) setDefaults() error {
	if c.Store == nil || c.Index == nil || c.Provider == nil {
		return errors.New("actors: Config needs Store, Index and Provider")
	}
	if c.DefaultModel == "" {
		return errors.New("actors: Config needs DefaultModel")
	}
	if c.SnapshotTail <= 0 {
		c.SnapshotTail = 256
	}
	if c.ChunkInterval <= 0 {
		c.ChunkInterval = 250 * time.Millisecond
	}
	if c.ChunkBytes <= 0 {
		c.ChunkBytes = 4096
	}
	if c.SessionIdleTimeout <= 0 {
		c.SessionIdleTimeout = 5 * time.Minute
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 10 * time.Second
	}
	if c.StoreTimeout <= 0 {
		c.StoreTimeout = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// System runs the actors of one Parley process: the session registry,
// session actors, generation actors and connection actors. Its methods are
// safe for concurrent use and are how the gateway talks to sessions.
type System struct {
	cfg      Config
	log      *slog.Logger
	as       *actor.ActorSystem
	root     *actor.RootContext
	registry *actor.PID
	// connProps spawns every connection actor; each learns its user and
	// sink from its first message (connInit).
	connProps *actor.Props

	// genCtx parents every upstream request; it is cancelled last, on
	// Shutdown, after generations were asked to end.
	genCtx    context.Context
	genCancel context.CancelFunc
	// wg tracks goroutines the system owns: generation streams and the
	// idle ticker.
	wg        sync.WaitGroup
	tickStop  chan struct{}
	drainOnce sync.Once
	closeOnce sync.Once

	passivations atomic.Uint64
	rehydrations atomic.Uint64
	connections  atomic.Int64
}

// Stats counts what the registry did since the system started.
type Stats struct {
	// Connections is how many connection actors are alive now.
	Connections int64
	// Passivations is how many idle session actors were stopped.
	Passivations uint64
	// Rehydrations is how many session actors were rebuilt from the log.
	Rehydrations uint64
}

// Stats returns the registry's counters.
func (s *System) Stats() Stats {
	return Stats{Connections: s.connections.Load(), Passivations: s.passivations.Load(), Rehydrations: s.rehydrations.Load()}
}

// New starts a System.
func New(cfg Config) (*System, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	log := cfg.Logger.With(slog.String("component", "actors"))
	// protoactor logs its own start and stop at info; only its warnings
	// and errors belong in Parley's log.
	libLog := slog.New(minLevel{h: log.Handler(), min: slog.LevelWarn}).With(slog.String("lib", "protoactor"))
	as := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return libLog }))
	s := &System{cfg: cfg, log: log, as: as, root: as.Root, tickStop: make(chan struct{})}
	s.genCtx, s.genCancel = context.WithCancel(context.Background())
	s.registry = s.root.Spawn(actor.PropsFromProducer(func() actor.Actor { return newRegistry(s) }))
	// A connection actor's mailbox is a linked MPSC queue (a stub node when
	// idle) instead of the default ring of 10 slots: about 200 bytes less
	// per idle connection, for a small node allocated per message.
	s.connProps = actor.PropsFromProducer(func() actor.Actor { return &connActor{sys: s} },
		actor.WithMailbox(actor.UnboundedLockfree()))

	interval := cfg.SessionIdleTimeout / 4
	if interval > time.Minute {
		interval = time.Minute
	}
	s.wg.Add(1)
	go s.tick(interval)
	return s, nil
}

// tick sends the registry an idle check on every interval, which it fans
// out to session actors (an explicit message is safer than protoactor's
// ReceiveTimeout, see DESIGN.md).
func (s *System) tick(interval time.Duration) {
	defer s.wg.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.tickStop:
			return
		case <-t.C:
			s.root.Send(s.registry, idleTick{})
		}
	}
}

// newSessionID returns 128 random bits, URL-safe.
func newSessionID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("actors: crypto/rand: %v", err))
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// request sends msg to the registry and waits for the *Reply.
func (s *System) request(ctx context.Context, msg any) (*Reply, error) {
	timeout := s.cfg.RequestTimeout
	if dl, ok := ctx.Deadline(); ok {
		if d := time.Until(dl); d < timeout {
			timeout = d
		}
	}
	res, err := s.root.RequestFuture(s.registry, msg, timeout).Result()
	if err != nil {
		return nil, fmt.Errorf("actors: request %T: %w", msg, err)
	}
	r, ok := res.(*Reply)
	if !ok {
		return nil, fmt.Errorf("actors: request %T: unexpected answer %T", msg, res)
	}
	if r.Err != nil {
		return r, r.Err
	}
	return r, nil
}

// CreateParams are the optional fields of a new session.
type CreateParams struct {
	Model, System, Title string
}

// Create makes a new session owned by user and returns its summary.
func (s *System) Create(ctx context.Context, user string, p CreateParams) (events.SessionInfo, error) {
	r, err := s.request(ctx, &createSession{user: user, model: p.Model, system: p.System, title: p.Title})
	if err != nil {
		return events.SessionInfo{}, err
	}
	return r.Detail.SessionInfo, nil
}

// SendParams is a user message.
type SendParams struct {
	Content     string
	ClientMsgID string
	ExpectSeq   *uint64
}

// Send appends a user message to the session and starts a generation. It
// returns the message's seq once the log has it.
func (s *System) Send(ctx context.Context, user, session string, p SendParams) (uint64, error) {
	r, err := s.request(ctx, &sendMessage{session: session, user: user, content: p.Content, clientMsgID: p.ClientMsgID, expectSeq: p.ExpectSeq})
	if err != nil {
		return 0, err
	}
	return r.Seq, nil
}

// Stop stops the session's running generation and reports whether one ran.
func (s *System) Stop(ctx context.Context, user, session string) (bool, error) {
	r, err := s.request(ctx, &stopGeneration{session: session, user: user})
	if err != nil {
		return false, err
	}
	return r.Stopped != nil && *r.Stopped, nil
}

// Regenerate replaces the last reply with a new generation and returns its
// gen.
func (s *System) Regenerate(ctx context.Context, user, session string) (uint64, error) {
	r, err := s.request(ctx, &regenerate{session: session, user: user})
	if err != nil {
		return 0, err
	}
	return r.Seq, nil
}

// Detail returns the session with its messages.
func (s *System) Detail(ctx context.Context, user, session string) (*SessionDetail, error) {
	r, err := s.request(ctx, &getDetail{session: session, user: user})
	if err != nil {
		return nil, err
	}
	return r.Detail, nil
}

// List returns user's sessions, most recently updated first.
func (s *System) List(ctx context.Context, user string) ([]events.SessionInfo, error) {
	list, err := s.cfg.Index.ListSessions(ctx, user)
	if err != nil {
		return nil, fmt.Errorf("actors: list sessions: %w", err)
	}
	return list, nil
}

// Drain ends every running generation with generation.interrupted (the
// clients attached see that event) and waits until each is persisted.
// Connections stay open. It is safe to call more than once.
func (s *System) Drain(ctx context.Context) error {
	var err error
	s.drainOnce.Do(func() { err = s.drain(ctx) })
	return err
}

// Shutdown drains (if Drain was not called), then stops every actor and
// the goroutines the system owns. It is safe to call more than once.
func (s *System) Shutdown(ctx context.Context) error {
	err := s.Drain(ctx)
	s.closeOnce.Do(func() {
		close(s.tickStop)
		s.genCancel()
		s.wg.Wait()
		s.as.Shutdown()
	})
	return err
}

// drain asks every session to end its generation and waits for all.
func (s *System) drain(ctx context.Context) error {
	timeout := 10 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	res, err := s.root.RequestFuture(s.registry, drainAll{}, timeout).Result()
	if err != nil {
		return fmt.Errorf("actors: drain: %w", err)
	}
	pids, _ := res.([]*actor.PID)
	futures := make([]*actor.Future, 0, len(pids))
	for _, pid := range pids {
		futures = append(futures, s.root.RequestFuture(pid, drainSession{}, timeout))
	}
	var errs []error
	for _, f := range futures {
		if _, err := f.Result(); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("actors: drain: %d sessions did not finish: %w", len(errs), errors.Join(errs...))
	}
	return nil
}

// ActiveSessions returns how many session actors are in memory.
func (s *System) ActiveSessions() int {
	res, err := s.root.RequestFuture(s.registry, countSessions{}, s.cfg.RequestTimeout).Result()
	if err != nil {
		return -1
	}
	n, _ := res.(int)
	return n
}

// minLevel is a slog handler that drops records below min.
type minLevel struct {
	h   slog.Handler
	min slog.Level
}

func (m minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= m.min && m.h.Enabled(ctx, l)
}
func (m minLevel) Handle(ctx context.Context, r slog.Record) error { return m.h.Handle(ctx, r) }
func (m minLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevel{h: m.h.WithAttrs(as), min: m.min}
}
func (m minLevel) WithGroup(g string) slog.Handler { return minLevel{h: m.h.WithGroup(g), min: m.min} }
