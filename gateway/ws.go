package gateway

import (
	"log/slog"
	"net/http"

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

func (s *Server) newUpgrader() *websocket.Upgrader {
	u := websocket.NewUpgrader()
	u.KeepaliveTime = s.cfg.IdleTimeout
	u.MessageLengthLimit = s.cfg.MaxFrameBytes
	u.CheckOrigin = func(*http.Request) bool { return true } // tokens, not cookies, authenticate
	u.OnMessage(s.onMessage)
	u.OnClose(func(c *websocket.Conn, err error) {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		if ac, ok := c.Session().(*actors.Conn); ok {
			ac.Closed()
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
	c, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		s.log.Debug("websocket upgrade failed", slog.Any(logKeyError, err))
		return
	}
	s.counters.wsOpened.Add(1)
	c.SetSession(s.cfg.System.Connect(user, wsSink{c}))
	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.mu.Unlock()
}

// onMessage decodes one client frame and hands the command to the
// connection actor. It runs on nbio's handler pool and never waits: the
// decoded command owns copies of every string, so the payload buffer,
// which nbio reuses after this returns, is not referenced.
func (s *Server) onMessage(c *websocket.Conn, mt websocket.MessageType, data []byte) {
	ac, ok := c.Session().(*actors.Conn)
	if !ok {
		return
	}
	s.counters.frames.Add(1)
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
		return
	}
	ac.Deliver(cmd)
}

func writeFrame(c *websocket.Conn, f *actors.Frame) {
	_ = c.WriteMessage(websocket.TextMessage, f.JSON)
}
