package gateway

import (
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/lesismal/nbio/nbhttp/websocket"

	"github.com/parleyhq/parley/actors"
)

// wsSink writes frames to one WebSocket. nbio's WriteMessage never blocks
// on an engine connection: it writes what the kernel takes and buffers the
// rest, and closes a connection whose buffer passes MaxWriteBuffer.
type wsSink struct{ c *websocket.Conn }

func (w wsSink) Write(f *actors.Frame) { _ = w.c.WriteMessage(websocket.TextMessage, f.JSON) }

func (w wsSink) Close(code int, reason string) {
	_ = w.c.WriteClose(code, reason)
	_ = w.c.Close()
}

// wsConn is the gateway's state of one WebSocket, its nbio session: the
// connection actor, and when the client was last heard from. Silent
// sockets are found by sweepIdle, so that no socket has a timer of its
// own (nbio's read deadline is a runtime timer and a closure per socket,
// about 280 bytes).
type wsConn struct {
	ac   *actors.Conn
	seen atomic.Int64 // unix nanoseconds of the last frame received
	rate bucket       // commands the client may still send; onMessage only
}

func (w *wsConn) touch() { w.seen.Store(time.Now().UnixNano()) }

// heard notes a frame from the client at now, and clears the socket's
// read deadline. nbio arms the HTTP keep-alive deadline from its accept
// goroutine after it has handed the socket to a poller, so with a quick
// client that deadline can land after the upgrade cleared it, and would
// cut a healthy WebSocket IdleTimeout after it opened (seen in `bench/run.sh
// idle`: a few of 19,000 sockets). Clearing it on every client frame,
// pongs included, removes such a stray timer long before it fires (the
// first pong comes within a ping interval); an upgraded socket has no
// other deadline: sweepIdle is its idle timer.
func (w *wsConn) heard(c *websocket.Conn, now time.Time) {
	w.seen.Store(now.UnixNano())
	_ = c.SetReadDeadline(time.Time{})
}

func (s *Server) newUpgrader() *websocket.Upgrader {
	u := websocket.NewUpgrader()
	u.KeepaliveTime = 0 // no read deadline: sweepIdle closes silent sockets
	u.MessageLengthLimit = s.cfg.MaxFrameBytes
	u.CheckOrigin = func(*http.Request) bool { return true } // tokens, not cookies, authenticate
	u.OnMessage(s.onMessage)
	u.SetPongHandler(func(c *websocket.Conn, _ string) {
		if w, ok := c.Session().(*wsConn); ok {
			w.heard(c, time.Now())
		}
	})
	u.SetPingHandler(func(c *websocket.Conn, data string) {
		if w, ok := c.Session().(*wsConn); ok {
			w.heard(c, time.Now())
		}
		if err := c.WriteMessage(websocket.PongMessage, []byte(data)); err != nil {
			_ = c.Close()
		}
	})
	u.OnClose(func(c *websocket.Conn, err error) {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		if w, ok := c.Session().(*wsConn); ok {
			w.ac.Closed()
		}
	})
	return u
}

// handleWS authenticates and upgrades a request to a WebSocket with its
// own connection actor.
func (s *Server) handleWS(w http.ResponseWriter, r *http.Request) {
	user, e := s.auth.user(r, true)
	if e != nil {
		writeError(w, e)
		return
	}
	if s.draining.Load() {
		writeError(w, &actors.Error{Code: actors.CodeInternal, Message: "server is shutting down"})
		return
	}
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		writeError(w, &actors.Error{Code: actors.CodeBadRequest, Message: "/v1/ws speaks WebSocket: send an Upgrade: websocket handshake"})
		return
	}
	c, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		s.log.Debug("websocket upgrade failed", slog.Any(logKeyError, err))
		return
	}
	s.counters.wsOpened.Add(1)
	wc := &wsConn{ac: s.cfg.System.Connect(user, wsSink{c})}
	wc.touch()
	c.SetSession(wc)
	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.mu.Unlock()
}

// onMessage decodes one client frame and hands the command to the
// connection actor. It runs on nbio's handler pool and never waits: the
// decoded command owns copies of every string, so the payload buffer,
// which nbio reuses after this returns, is not referenced.
func (s *Server) onMessage(c *websocket.Conn, mt websocket.MessageType, data []byte) {
	w, ok := c.Session().(*wsConn)
	if !ok {
		return
	}
	s.counters.frames.Add(1)
	now := time.Now()
	w.heard(c, now)
	if !w.rate.take(now, s.cfg.CommandRate, s.cfg.CommandBurst) {
		// A flood: drop the frame, say so (a client that does not read
		// either is closed by the write buffer limit), and keep the
		// connection's memory and its actor's mailbox bounded.
		s.counters.limited.Add(1)
		ids := salvage(data) // the answer names the command it drops
		writeFrame(c, actors.ErrorFrame(ids.ID, ids.Session, errRateLimited))
		return
	}
	if mt != websocket.TextMessage {
		s.counters.badFrames.Add(1)
		writeFrame(c, actors.ErrorFrame("", "", actors.Errorf(actors.CodeBadRequest, "binary frames are not accepted; send JSON text frames")))
		return
	}
	cmd, e := decodeCommand(data)
	if e != nil {
		s.counters.badFrames.Add(1)
		writeFrame(c, actors.ErrorFrame(cmd.ID, cmd.Session, e))
		return
	}
	if cmd.Type == actors.CmdPing {
		writeFrame(c, actors.PongFrame)
		if cmd.ID != "" {
			// A command with an id gets exactly one ack (PROTOCOL.md 3).
			writeFrame(c, actors.ReplyFrame(&actors.Reply{ReqID: cmd.ID}))
		}
		return
	}
	w.ac.Deliver(cmd)
}

// errRateLimited answers a frame over the connection's command rate.
var errRateLimited = &actors.Error{Code: actors.CodeRateLimited, Message: "too many frames: slow down (the frame was dropped)"}

// bucket is a token bucket of client frames: it refills at a rate per
// second up to a burst. Its zero value is full. It is used from one
// goroutine at a time (nbio delivers a connection's frames in order).
type bucket struct {
	used float32 // tokens spent, refilled over time
	last int64   // unix nanoseconds of the last take
}

// take spends one token at now, and reports false when none is left.
func (b *bucket) take(now time.Time, rate float64, burst int) bool {
	t := now.UnixNano()
	if b.last != 0 {
		b.used -= float32(float64(t-b.last) / 1e9 * rate)
		if b.used < 0 {
			b.used = 0
		}
	}
	b.last = t
	if b.used+1 > float32(burst) {
		return false
	}
	b.used++
	return true
}

func writeFrame(c *websocket.Conn, f *actors.Frame) {
	_ = c.WriteMessage(websocket.TextMessage, f.JSON)
}
