package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
	"unicode/utf8"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/parleyhq/parley/events"
	"github.com/parleyhq/parley/llm"
)

// sessionActor owns one session: it is the only writer of its log, holds
// the fold of that log in memory, fans frames out to attached connection
// actors, and runs at most one generation actor as its child.
//
// Its writes go to the event store synchronously from Receive: that is the
// single-writer discipline (the next command sees the result of the last
// write) and the guarantee that an ack follows JetStream's ack. A write
// blocks only this session's mailbox, never an event loop or another
// session.
type sessionActor struct {
	sys   *System
	log   *slog.Logger
	id    string
	fresh bool // being created: there is no log to load

	st      *state
	missing bool  // the session does not exist
	broken  error // its log could not be read

	subs       map[string]*actor.PID // attached connection actors by pid.Id
	gen        *running
	snapPos    events.Position // position of the last snapshot written or read
	received   uint64          // messages routed to it by the registry
	lastActive time.Time
	titleTried bool // a title was asked for in this actor's life
}

// running is the generation in progress.
type running struct {
	gen       uint64
	pid       *actor.PID // the generation actor
	live      []byte     // reply text so far, valid UTF-8
	persisted int        // bytes of live already in chunk events
	reasoning []byte     // thinking text, kept apart from the reply
	start     time.Time
	flush     *time.Timer // armed while unpersisted text waits
	queued    int         // place in the model's line; 0 when not waiting
	admitted  bool        // left the line: later places are stale
}

var _ actor.Actor = (*sessionActor)(nil)

func newSessionActor(sys *System, id string, fresh bool) *sessionActor {
	return &sessionActor{
		sys:   sys,
		log:   sys.log.With(slog.String(logKeySession, id)),
		id:    id,
		fresh: fresh,
		st:    newState(),
		subs:  make(map[string]*actor.PID),
	}
}

func (s *sessionActor) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		s.sys.sessions.Add(1)
		s.lastActive = s.sys.cfg.Now()
		if !s.fresh {
			s.rehydrate(ctx)
		}
	case *actor.Stopping:
		if s.gen != nil && s.gen.flush != nil {
			s.gen.flush.Stop()
		}
	case *actor.Stopped:
		s.sys.sessions.Add(-1)
	case *createSession:
		s.routed()
		s.create(ctx, msg)
	case *attachSession:
		s.routed()
		s.attach(ctx, msg)
	case *detachSession:
		s.routed()
		delete(s.subs, msg.conn.Id)
	case *sendMessage:
		s.routed()
		s.send(ctx, msg, true)
	case *stopGeneration:
		s.routed()
		s.stop(ctx, msg)
	case *regenerate:
		s.routed()
		s.regenerate(ctx, msg, true)
	case *getDetail:
		s.routed()
		if e := s.check(msg.user); e != nil {
			s.fail(ctx, "", e)
			return
		}
		ctx.Respond(&Reply{Session: s.id, Detail: s.st.detail(s.liveText())})
	case *genDelta:
		s.delta(ctx, msg)
	case *genQueued:
		s.queuedAt(ctx, msg)
	case *titleResult:
		s.routed()
		s.titled(ctx, msg)
	case *recoverSession:
		s.routed() // rehydration, at Started, did the work
		if !s.missing && s.broken == nil && s.gen == nil {
			s.putIndex() // the summary may lag the log; the log is the truth
		}
		ctx.Respond(&Reply{Session: s.id})
	case *flushChunk:
		if s.gen != nil && s.gen.gen == msg.gen {
			s.gen.flush = nil
			s.persistChunk()
		}
	case *genDone:
		s.done(ctx, msg)
	case idleTick:
		if len(s.subs) == 0 && s.gen == nil && s.sys.cfg.Now().Sub(s.lastActive) >= s.sys.cfg.SessionIdleTimeout {
			s.snapshot()
			ctx.Request(ctx.Parent(), &passivate{session: s.id, received: s.received})
		}
	case drainSession:
		if s.gen != nil {
			s.end(ctx, events.KindGenerationInterrupted, events.GenerationInterrupted{Gen: s.gen.gen, Text: string(s.gen.live)})
		}
		ctx.Respond(drained{})
	}
}

// routed counts a message the registry routed here and notes activity.
func (s *sessionActor) routed() {
	s.received++
	s.lastActive = s.sys.cfg.Now()
}

// rehydrate folds the session's log into memory. A generation that has a
// start and no end belonged to a process that is gone (this actor is the
// session's only writer): it is ended as interrupted with the text its
// chunks persisted.
func (s *sessionActor) rehydrate(ctx actor.Context) {
	if err := s.reload(); err != nil {
		if errors.Is(err, events.ErrNotFound) {
			s.missing = true
		} else {
			s.broken = err
			s.log.Error("session log could not be read", slog.Any(logKeyError, err))
		}
		return
	}
	if open := s.st.open; open != nil {
		s.log.Info("recovering interrupted generation", slog.Uint64(logKeyGen, open.gen), slog.Int("persisted_bytes", len(open.text)))
		ev := s.event(events.KindGenerationInterrupted, events.GenerationInterrupted{Gen: open.gen, Text: string(open.text)})
		if err := s.append(ev); err != nil {
			s.log.Error("could not record interrupted generation", slog.Any(logKeyError, err))
			return
		}
		s.putIndex()
	}
}

// reload rebuilds the state from the log: from the session's snapshot and
// the events after it when there is a usable one, else from the whole
// log. A long tail gets a new snapshot.
func (s *sessionActor) reload() error {
	ctx, cancel := context.WithTimeout(context.Background(), s.sys.cfg.StoreTimeout)
	defer cancel()
	st := newState()
	from := events.Position(0)
	if snaps := s.sys.cfg.Snapshots; snaps != nil {
		snap, err := snaps.GetSnapshot(ctx, s.id)
		switch {
		case err == nil:
			if err := foldInto(st, snap.Events); err == nil && st.lastSeq == snap.LastSeq {
				from = snap.Pos
				s.snapPos = snap.Pos
			} else {
				s.log.Warn("snapshot unusable; replaying the whole log", slog.Any(logKeyError, err))
				st = newState()
			}
		case !errors.Is(err, events.ErrNotFound):
			s.log.Warn("snapshot not read; replaying the whole log", slog.Any(logKeyError, err))
		}
	}
	tail, pos, err := s.sys.cfg.Store.Load(ctx, s.id, from)
	if err != nil {
		return err
	}
	if len(tail) > 0 && tail[0].Seq != st.lastSeq+1 {
		// The snapshot does not meet the log (it was written for an older
		// log under the same name): start over from the log alone.
		s.log.Warn("snapshot does not meet the log; replaying it whole", slog.Uint64("snapshot_seq", st.lastSeq), slog.Uint64("tail_seq", tail[0].Seq))
		s.snapPos = 0
		st = newState()
		if tail, pos, err = s.sys.cfg.Store.Load(ctx, s.id, 0); err != nil {
			return err
		}
	}
	if err := foldInto(st, tail); err != nil {
		return fmt.Errorf("actors: session %s: %w", s.id, err)
	}
	st.pos = pos
	s.st = st
	if len(tail) >= s.sys.cfg.SnapshotTail && st.open == nil {
		s.snapshot()
	}
	return nil
}

func foldInto(st *state, evs []events.Event) error {
	for _, ev := range evs {
		if err := st.apply(ev); err != nil {
			return err
		}
	}
	return nil
}

// snapshot writes the session's state if it moved since the last one. It
// is taken only between generations, so the visible events are the whole
// state. A failed write costs only a longer replay next time.
func (s *sessionActor) snapshot() {
	snaps := s.sys.cfg.Snapshots
	if snaps == nil || s.missing || s.broken != nil || s.gen != nil || s.st.open != nil || s.st.pos == s.snapPos {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.sys.cfg.StoreTimeout)
	defer cancel()
	snap := events.Snapshot{Session: s.id, Pos: s.st.pos, LastSeq: s.st.lastSeq, Events: s.st.visible}
	if err := snaps.PutSnapshot(ctx, snap); err != nil {
		s.log.Warn("snapshot not written", slog.Any(logKeyError, err))
		return
	}
	s.snapPos = s.st.pos
}

// check answers whether user may use the session.
func (s *sessionActor) check(user string) *Error {
	switch {
	case s.missing:
		return errNotFound
	case s.broken != nil:
		return &Error{Code: CodeInternal, Message: "the session's log could not be read"}
	case s.st.info.Owner != user:
		return errForbidden
	}
	return nil
}

// fail answers the current command with e. A session that does not exist
// asks to passivate at once.
func (s *sessionActor) fail(ctx actor.Context, reqID string, e *Error) {
	ctx.Respond(&Reply{ReqID: reqID, Session: s.id, Err: e})
	if s.missing || s.broken != nil {
		ctx.Request(ctx.Parent(), &passivate{session: s.id, received: s.received})
	}
}

// failCreate answers a create that appended nothing: the error names no
// session, as none exists, and the actor asks to passivate.
func (s *sessionActor) failCreate(ctx actor.Context, reqID string, e *Error) {
	s.missing = true
	ctx.Respond(&Reply{ReqID: reqID, Err: e})
	ctx.Request(ctx.Parent(), &passivate{session: s.id, received: s.received})
}

// event builds the next event of the log.
func (s *sessionActor) event(kind events.Kind, data any) events.Event {
	return events.New(s.id, s.st.lastSeq+1, kind, s.sys.cfg.Now(), data)
}

// append writes evs (consecutive seqs) to the log and folds them in.
func (s *sessionActor) append(evs ...events.Event) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.sys.cfg.StoreTimeout)
	defer cancel()
	start := time.Now()
	pos, err := s.sys.cfg.Store.Append(ctx, s.id, s.st.pos, evs...)
	s.sys.appends.Add(1)
	s.sys.appendNanos.Add(uint64(time.Since(start)))
	if err != nil {
		s.sys.appendErrors.Add(1)
		return err
	}
	s.sys.appendEvents.Add(uint64(len(evs)))
	s.st.pos = pos
	for _, ev := range evs {
		if err := s.st.apply(ev); err != nil {
			return err
		}
	}
	return nil
}

// writeError turns a failed append into the answer to a command. On a
// conflict the log moved on under this actor: the state is reloaded and
// retry says whether the command should run once more on it.
func (s *sessionActor) writeError(err error) (e *Error, retry bool) {
	if errors.Is(err, events.ErrConflict) {
		s.log.Warn("log moved on; reloading", slog.Any(logKeyError, err))
		if rerr := s.reload(); rerr != nil {
			s.log.Error("reload after conflict failed", slog.Any(logKeyError, rerr))
			return &Error{Code: CodeInternal, Message: "the session could not be reloaded"}, false
		}
		return &Error{Code: CodeConflict, Message: "the session changed; reload and retry"}, true
	}
	s.log.Error("append failed", slog.Any(logKeyError, err))
	return &Error{Code: CodeInternal, Message: "the event log did not accept the write; nothing was stored"}, false
}

// putIndex writes the session's summary. The log is the truth; a failed
// summary write is logged and fixed by the next one.
func (s *sessionActor) putIndex() {
	ctx, cancel := context.WithTimeout(context.Background(), s.sys.cfg.StoreTimeout)
	defer cancel()
	if err := s.sys.cfg.Index.PutSession(ctx, s.st.info); err != nil {
		s.log.Warn("session summary not written", slog.Any(logKeyError, err))
	}
}

func (s *sessionActor) broadcast(ctx actor.Context, f *Frame) {
	for _, pid := range s.subs {
		ctx.Send(pid, f)
	}
}

// lastVisible is the seq of the newest event clients receive.
func (s *sessionActor) lastVisible() uint64 {
	if n := len(s.st.visible); n > 0 {
		return s.st.visible[n-1].Seq
	}
	return 0
}

func (s *sessionActor) liveText() string {
	if s.gen == nil {
		return ""
	}
	return string(s.gen.live)
}

func (s *sessionActor) create(ctx actor.Context, m *createSession) {
	model := m.model
	if model == "" {
		model = s.sys.cfg.DefaultModel
	}
	if e := s.sys.models.check(context.Background(), model); e != nil {
		if m.model == "" {
			e = Errorf(CodeBadRequest, "the server's default model %q is not on the %s server: name a model (GET /v1/models lists them), or ask the operator to set PARLEY_MODEL",
				model, s.sys.cfg.Provider.Name())
		}
		s.failCreate(ctx, m.reqID, e)
		return
	}
	ev := s.event(events.KindSessionCreated, events.SessionCreated{Owner: m.user, Model: model, System: m.system, Title: m.title})
	if err := s.append(ev); err != nil {
		s.log.Error("session not created", slog.Any(logKeyError, err))
		s.failCreate(ctx, m.reqID, &Error{Code: CodeInternal, Message: "the event log did not accept the new session"})
		return
	}
	s.fresh = false
	s.putIndex()
	r := &Reply{ReqID: m.reqID, Session: s.id, Detail: s.st.detail("")}
	if m.conn != nil {
		s.subs[m.conn.Id] = m.conn
		r.Attached = true
	}
	ctx.Respond(r)
	if m.conn != nil {
		ctx.Send(m.conn, EventFrame(ev))
	}
}

func (s *sessionActor) attach(ctx actor.Context, m *attachSession) {
	if e := s.check(m.user); e != nil {
		s.fail(ctx, m.reqID, e)
		return
	}
	s.subs[m.conn.Id] = m.conn
	ctx.Respond(&Reply{ReqID: m.reqID, Session: s.id, Attached: true})
	for _, ev := range s.st.visible {
		if ev.Seq > m.after.Seq {
			ctx.Send(m.conn, EventFrame(ev))
		}
	}
	if g := s.gen; g != nil && len(g.live) > 0 {
		from := 0
		if g.gen <= m.after.Seq {
			from = min(m.after.Offset, len(g.live))
			for from > 0 && from < len(g.live) && !utf8.RuneStart(g.live[from]) {
				from-- // a cursor inside a character: resend that character whole
			}
		}
		if from < len(g.live) {
			ctx.Send(m.conn, DeltaFrame(s.id, g.gen, from, string(g.live[from:]), s.lastVisible()))
		}
	}
	if g := s.gen; g != nil && g.queued > 0 {
		ctx.Send(m.conn, QueuedFrame(s.id, g.gen, g.queued, s.lastVisible()))
	}
}

func (s *sessionActor) send(ctx actor.Context, m *sendMessage, retry bool) {
	if e := s.check(m.user); e != nil {
		s.fail(ctx, m.reqID, e)
		return
	}
	if m.clientMsgID != "" {
		if seq, ok := s.st.msgIDs[m.clientMsgID]; ok {
			ctx.Respond(&Reply{ReqID: m.reqID, Session: s.id, Seq: seq, HasSeq: true})
			return
		}
	}
	if s.gen != nil {
		s.fail(ctx, m.reqID, errBusy)
		return
	}
	if m.expectSeq != nil && *m.expectSeq != s.st.lastSeq {
		s.fail(ctx, m.reqID, Errorf(CodeConflict, "the session is at seq %d, not %d: another client wrote; catch up and retry", s.st.lastSeq, *m.expectSeq))
		return
	}
	userEv := s.event(events.KindMessageUser, events.MessageUser{Content: m.content, ClientMsgID: m.clientMsgID})
	req, info := s.request(userEv.Seq, &turn{seq: userEv.Seq, role: "user", content: m.content, state: StateCompleted})
	startEv := events.New(s.id, userEv.Seq+1, events.KindGenerationStarted, userEv.At.Time(),
		events.GenerationStarted{Model: s.st.info.Model, Provider: s.sys.cfg.Provider.Name(), ReplyTo: userEv.Seq, Context: &info})
	if err := s.append(userEv, startEv); err != nil {
		e, again := s.writeError(err)
		if again && retry {
			s.send(ctx, m, false)
			return
		}
		s.fail(ctx, m.reqID, e)
		return
	}
	// The generation takes its place in the model's line before the ack
	// goes out: a client that sends to two sessions one after the other
	// is served in that order.
	s.startGeneration(ctx, startEv.Seq, req)
	ctx.Respond(&Reply{ReqID: m.reqID, Session: s.id, Seq: userEv.Seq, HasSeq: true})
	s.broadcast(ctx, EventFrame(userEv))
	s.broadcast(ctx, EventFrame(startEv))
	s.putIndex()
}

func (s *sessionActor) regenerate(ctx actor.Context, m *regenerate, retry bool) {
	if e := s.check(m.user); e != nil {
		s.fail(ctx, m.reqID, e)
		return
	}
	if s.gen != nil {
		s.fail(ctx, m.reqID, errBusy)
		return
	}
	replyTo := s.st.lastUserSeq()
	if replyTo == 0 {
		s.fail(ctx, m.reqID, Errorf(CodeBadRequest, "the session has no message to reply to"))
		return
	}
	req, info := s.request(replyTo, nil)
	startEv := s.event(events.KindGenerationStarted, events.GenerationStarted{Model: s.st.info.Model, Provider: s.sys.cfg.Provider.Name(), ReplyTo: replyTo, Context: &info})
	if err := s.append(startEv); err != nil {
		e, again := s.writeError(err)
		if again && retry {
			s.regenerate(ctx, m, false)
			return
		}
		s.fail(ctx, m.reqID, e)
		return
	}
	s.startGeneration(ctx, startEv.Seq, req)
	ctx.Respond(&Reply{ReqID: m.reqID, Session: s.id, Seq: startEv.Seq, HasSeq: true})
	s.broadcast(ctx, EventFrame(startEv))
	s.putIndex()
}

// request builds the upstream request of a reply to the user message
// replyTo (pending when it is not appended yet): the conversation trimmed
// to the model's context window, less what the reply needs.
func (s *sessionActor) request(replyTo uint64, pending *turn) (llm.Request, events.ContextInfo) {
	model := s.st.info.Model
	window := s.sys.models.window(context.Background(), model)
	msgs, info := s.st.context(replyTo, pending, window-llm.ReplyReserve(window))
	info.Window = window
	if info.Omitted > 0 {
		s.log.Debug("history trimmed to the context window", slog.Int("window", window),
			slog.Int("omitted_messages", info.Omitted), slog.Uint64("omitted_through", info.OmittedThrough))
	}
	return llm.Request{Model: model, Messages: msgs}, info
}

// startGeneration takes gen's place in the model's line (now, in the
// order sessions start generations) and spawns its generation actor as a
// child, which waits for the slot and streams.
func (s *sessionActor) startGeneration(ctx actor.Context, gen uint64, req llm.Request) {
	self, sys := ctx.Self(), s.sys
	s.gen = &running{gen: gen, start: s.sys.cfg.Now()}
	ticket := sys.gate.Join(req.Model, func(place int) {
		sys.root.Send(self, &genQueued{gen: gen, place: place})
	})
	s.gen.pid = ctx.Spawn(actor.PropsFromProducer(func() actor.Actor {
		return &generationActor{sys: sys, session: self, gen: gen, req: req, ticket: ticket}
	}))
}

func (s *sessionActor) delta(ctx actor.Context, m *genDelta) {
	g := s.gen
	if g == nil || g.gen != m.gen {
		return // a stopped or ended generation's late output
	}
	if len(g.live)+len(g.reasoning)+len(m.thinking) > s.sys.cfg.MaxReplyBytes {
		s.tooLong(ctx)
		return
	}
	g.reasoning = append(g.reasoning, m.thinking...)
	if m.text == "" {
		return
	}
	if len(g.live)+len(m.text)+len(g.reasoning) > s.sys.cfg.MaxReplyBytes {
		s.tooLong(ctx)
		return
	}
	off := len(g.live)
	g.live = append(g.live, m.text...)
	s.sys.deltas.Add(1)
	s.sys.deltaBytes.Add(uint64(len(m.text)))
	s.broadcast(ctx, DeltaFrame(s.id, g.gen, off, m.text, s.lastVisible()))
	switch {
	case len(g.live)-g.persisted >= s.sys.cfg.ChunkBytes:
		if g.flush != nil {
			g.flush.Stop()
			g.flush = nil
		}
		s.persistChunk()
	case g.flush == nil:
		self, gen := ctx.Self(), g.gen
		g.flush = time.AfterFunc(s.sys.cfg.ChunkInterval, func() { s.sys.root.Send(self, &flushChunk{gen: gen}) })
	}
}

// persistChunk appends the unpersisted part of the reply as a
// generation.chunk. A failed write is logged; the text stays in memory and
// goes out with the next chunk or the terminal event.
func (s *sessionActor) persistChunk() {
	g := s.gen
	if len(g.live) == g.persisted {
		return
	}
	ev := s.event(events.KindGenerationChunk, events.GenerationChunk{Gen: g.gen, Offset: g.persisted, Text: string(g.live[g.persisted:])})
	if err := s.append(ev); err != nil {
		s.log.Warn("chunk not persisted", slog.Uint64(logKeyGen, g.gen), slog.Any(logKeyError, err))
		if errors.Is(err, events.ErrConflict) {
			_, _ = s.writeError(err)
		}
		return
	}
	g.persisted = len(g.live)
}

func (s *sessionActor) done(ctx actor.Context, m *genDone) {
	g := s.gen
	if g == nil || g.gen != m.gen {
		return
	}
	text := string(g.live)
	switch {
	case m.err == nil:
		s.end(ctx, events.KindGenerationCompleted, events.GenerationCompleted{
			Gen: g.gen, Text: text, DoneReason: m.result.DoneReason,
			Usage:      events.Usage{PromptTokens: m.result.Usage.PromptTokens, CompletionTokens: m.result.Usage.CompletionTokens},
			TTFTMs:     m.ttft.Milliseconds(),
			DurationMs: s.sys.cfg.Now().Sub(g.start).Milliseconds(),
			Reasoning:  string(g.reasoning),
		})
		s.maybeTitle(g.gen)
	case errors.Is(m.err, context.Canceled):
		// Only the system's shutdown cancels a stream this actor did not
		// stop itself.
		s.end(ctx, events.KindGenerationInterrupted, events.GenerationInterrupted{Gen: g.gen, Text: text})
	default:
		code, msg := llm.CodeOf(m.err), m.err.Error()
		var le *llm.Error
		if errors.As(m.err, &le) {
			msg = le.Message
		}
		if code == "" {
			code = CodeUpstreamError
		}
		s.log.Warn("generation failed", slog.Uint64(logKeyGen, g.gen), slog.Any(logKeyError, m.err))
		s.end(ctx, events.KindGenerationFailed, events.GenerationFailed{Gen: g.gen, Text: text, Error: events.ErrorInfo{Code: code, Message: msg}, Reasoning: string(g.reasoning)})
	}
}

// tooLong ends a reply that reached MaxReplyBytes, keeping what it has;
// stopping the generation actor cancels the upstream request.
func (s *sessionActor) tooLong(ctx actor.Context) {
	g := s.gen
	s.log.Warn("reply reached the size cap; ending it", slog.Uint64(logKeyGen, g.gen), slog.Int("max_reply_bytes", s.sys.cfg.MaxReplyBytes))
	s.end(ctx, events.KindGenerationFailed, events.GenerationFailed{
		Gen: g.gen, Text: string(g.live), Reasoning: string(g.reasoning),
		Error: events.ErrorInfo{Code: CodeTooLarge, Message: fmt.Sprintf("the reply reached %d bytes, the most one reply may have", s.sys.cfg.MaxReplyBytes)},
	})
}

// stop ends the running generation at once with what it has produced;
// stopping the generation actor cancels the upstream request.
func (s *sessionActor) stop(ctx actor.Context, m *stopGeneration) {
	if e := s.check(m.user); e != nil {
		s.fail(ctx, m.reqID, e)
		return
	}
	// The ack goes first, then the stopped event it causes (as for every
	// command: docs/protocol.md, answer order).
	stopped := s.gen != nil
	ctx.Respond(&Reply{ReqID: m.reqID, Session: s.id, Stopped: &stopped})
	if stopped {
		s.end(ctx, events.KindGenerationStopped, events.GenerationStopped{Gen: s.gen.gen, Text: string(s.gen.live), Reasoning: string(s.gen.reasoning)})
	}
}

// end appends the terminal event of the running generation and fans it
// out. The chunks before it are for recovery only: its text is the whole
// reply.
func (s *sessionActor) end(ctx actor.Context, kind events.Kind, data any) {
	g := s.gen
	if g.flush != nil {
		g.flush.Stop()
	}
	s.gen = nil
	s.lastActive = s.sys.cfg.Now()
	ctx.Stop(g.pid)
	ev := s.event(kind, data)
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if err = s.append(ev); err == nil || errors.Is(err, events.ErrConflict) {
			break
		}
	}
	if err != nil {
		// The log keeps an open generation, which the next rehydration
		// records as interrupted with its persisted text.
		s.log.Error("terminal event not persisted", slog.Uint64(logKeyGen, g.gen), slog.String("kind", string(kind)), slog.Any(logKeyError, err))
		s.st.end(g.gen, string(g.live), StateFailed)
		// Clients must not wait for an end that will not come.
		s.broadcast(ctx, ErrorFrame("", s.id, Errorf(CodeInternal,
			"the reply ended (%s) but the event log did not store its end; reload the session", kind)))
		return
	}
	s.sys.ended[endIndex(kind)].Add(1)
	s.broadcast(ctx, EventFrame(ev))
	s.putIndex()
}

// queuedAt records the generation's place in the model's line and tells
// the attached clients. Places reported after the generation left the
// line are stale and dropped.
func (s *sessionActor) queuedAt(ctx actor.Context, m *genQueued) {
	g := s.gen
	if g == nil || g.gen != m.gen || g.admitted {
		return
	}
	if m.place == 0 {
		g.admitted, g.queued = true, 0
	} else if g.queued != 0 && m.place >= g.queued {
		return // places only shrink: this one is older news
	} else {
		g.queued = m.place
	}
	s.broadcast(ctx, QueuedFrame(s.id, g.gen, m.place, s.lastVisible()))
}
