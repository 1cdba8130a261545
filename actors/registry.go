package actors

import (
	"log/slog"

	"github.com/asynkron/protoactor-go/actor"
)

// registry is the parent of every session actor. It finds the actor of a
// session, spawning it (which rehydrates the session from its log) on the
// first message, and stops it when it asks to passivate. Because it routes
// every message to a session, it knows whether a passivating actor still
// has messages in flight and never drops one.
type registry struct {
	sys      *System
	sessions map[string]*liveSession
	byPID    map[string]string // pid.Id -> session id
}

// liveSession is the registry's record of one session actor.
type liveSession struct {
	pid    *actor.PID
	routed uint64 // messages forwarded to it
}

var _ actor.Actor = (*registry)(nil)

func newRegistry(sys *System) *registry {
	return &registry{sys: sys, sessions: make(map[string]*liveSession), byPID: make(map[string]string)}
}

func (r *registry) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *createSession:
		id := newSessionID()
		ls := r.spawn(ctx, id, true)
		ls.routed++
		ctx.Forward(ls.pid)
	case sessionMsg:
		id := msg.sessionID()
		if !ValidSessionID(id) {
			// Callers validate; this guard keeps such an id out of the
			// event log's subjects whatever the caller.
			if ctx.Sender() != nil {
				ctx.Respond(&Reply{Session: id, Err: errNotFound})
			}
			return
		}
		ls, ok := r.sessions[id]
		if !ok {
			if _, isDetach := msg.(*detachSession); isDetach {
				return // nothing to detach from
			}
			ls = r.spawn(ctx, id, false)
		}
		ls.routed++
		ctx.Forward(ls.pid)
	case *passivate:
		ls, ok := r.sessions[msg.session]
		if !ok || ls.pid.Id != ctx.Sender().Id || ls.routed != msg.received {
			return // a command is on its way to it: it stays
		}
		delete(r.sessions, msg.session)
		ctx.Stop(ls.pid)
		r.sys.passivations.Add(1)
	case *actor.Terminated:
		if id, ok := r.byPID[msg.Who.Id]; ok {
			delete(r.byPID, msg.Who.Id)
			if ls, ok := r.sessions[id]; ok && ls.pid.Id == msg.Who.Id {
				// It stopped on its own (a failure): the next message
				// rehydrates it.
				delete(r.sessions, id)
			}
		}
	case idleTick:
		for _, ls := range r.sessions {
			ctx.Send(ls.pid, idleTick{})
		}
	case drainAll:
		pids := make([]*actor.PID, 0, len(r.sessions))
		for _, ls := range r.sessions {
			pids = append(pids, ls.pid)
		}
		ctx.Respond(pids)
	case countSessions:
		ctx.Respond(len(r.sessions))
	}
}

// spawn starts the actor of session id. fresh is for a session being
// created, which has no log to load.
func (r *registry) spawn(ctx actor.Context, id string, fresh bool) *liveSession {
	// A restarted actor (after a panic) must rehydrate from the log, so
	// only the first incarnation is fresh.
	first := fresh
	props := actor.PropsFromProducer(func() actor.Actor {
		f := first
		first = false
		return newSessionActor(r.sys, id, f)
	})
	pid := ctx.Spawn(props)
	ls := &liveSession{pid: pid}
	if !fresh {
		r.sys.rehydrations.Add(1)
	}
	r.sessions[id] = ls
	r.byPID[pid.Id] = id
	r.sys.log.Debug("session actor spawned", slog.String(logKeySession, id), slog.Bool("fresh", fresh))
	return ls
}
