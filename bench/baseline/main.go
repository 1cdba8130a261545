// Command baseline is the yardstick for Parley's connection-scale
// figures: a plain goroutine-per-connection WebSocket server (coder/websocket,
// a reader and a writer goroutine per socket, as most Go chat servers are
// written) that speaks just enough of Parley's protocol for `parley
// loadgen`: create and attach (acked), send (acked, then fake deltas at a
// set rate to every attached socket and a generation.completed event),
// ping. It keeps nothing on disk and calls no model.
//
//	go run ./bench/baseline -listen 127.0.0.1:18081 -tps 50 -tokens 100
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/coder/websocket"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "baseline:", err)
		os.Exit(1)
	}
}

type server struct {
	tps    float64
	tokens int
	ttft   time.Duration
	token  string
	ping   time.Duration

	mu       sync.Mutex
	sessions map[string]*session
}

type session struct {
	subs       map[*client]struct{}
	seq        uint64
	generating bool
}

// client is one socket; its writer goroutine drains out.
type client struct {
	out chan []byte
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("baseline", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:18081", "address (loopback)")
	s := &server{sessions: map[string]*session{}}
	fs.Float64Var(&s.tps, "tps", 50, "deltas per second of each reply")
	fs.IntVar(&s.tokens, "tokens", 100, "deltas per reply")
	fs.DurationVar(&s.ttft, "ttft", 0, "delay before the first delta")
	fs.StringVar(&s.token, "token", "tok ", "text of each delta")
	fs.DurationVar(&s.ping, "ping", 25*time.Second, "WebSocket ping interval")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if host, _, err := net.SplitHostPort(*listen); err != nil || !net.ParseIP(host).IsLoopback() {
		return fmt.Errorf("-listen %q: want a loopback address", *listen)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: http.HandlerFunc(s.serveWS), BaseContext: func(net.Listener) context.Context { return ctx }}
	slog.Info("baseline listening", slog.String("addr", ln.Addr().String()))
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shut) // hijacked sockets end with ctx, their handlers' base context
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

type command struct {
	Type    string `json:"type"`
	ID      string `json:"id"`
	Session string `json:"session"`
}

// serveWS is the reader goroutine of one socket; it starts the writer.
func (s *server) serveWS(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	cl := &client{out: make(chan []byte, 16)} // as coder/websocket's chat example
	go s.writer(ctx, cancel, c, cl)
	attached := map[string]bool{}
	defer func() {
		s.mu.Lock()
		for id := range attached {
			delete(s.sessions[id].subs, cl)
		}
		s.mu.Unlock()
		c.CloseNow()
	}()
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			return
		}
		var cmd command
		if err := json.Unmarshal(b, &cmd); err != nil {
			s.reply(cl, map[string]any{"type": "error", "code": "bad_request", "message": err.Error()})
			continue
		}
		switch cmd.Type {
		case "create", "attach":
			s.mu.Lock()
			id := cmd.Session
			if cmd.Type == "create" {
				id = newID()
				s.sessions[id] = &session{subs: map[*client]struct{}{}, seq: 1}
			}
			sess := s.sessions[id]
			if sess != nil {
				sess.subs[cl] = struct{}{}
				attached[id] = true
			}
			s.mu.Unlock()
			if sess == nil {
				s.reply(cl, map[string]any{"type": "error", "id": cmd.ID, "session": id, "code": "not_found", "message": "no such session"})
				continue
			}
			s.reply(cl, map[string]any{"type": "ack", "id": cmd.ID, "session": id})
		case "send":
			s.send(ctx, cl, cmd)
		case "ping":
			s.reply(cl, map[string]any{"type": "pong"})
		default:
			s.reply(cl, map[string]any{"type": "error", "id": cmd.ID, "code": "bad_request", "message": "unknown type"})
		}
	}
}

// writer is the writer goroutine of one socket: queued frames and pings.
func (s *server) writer(ctx context.Context, cancel context.CancelFunc, c *websocket.Conn, cl *client) {
	defer cancel()
	t := time.NewTicker(s.ping)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case b := <-cl.out:
			wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
			err := c.Write(wctx, websocket.MessageText, b)
			wcancel()
			if err != nil {
				return
			}
		case <-t.C:
			pctx, pcancel := context.WithTimeout(ctx, 10*time.Second)
			err := c.Ping(pctx)
			pcancel()
			if err != nil {
				return
			}
		}
	}
}

// reply queues v for cl; a client whose queue is full misses it.
func (s *server) reply(cl *client, v any) {
	b, _ := json.Marshal(v)
	select {
	case cl.out <- b:
	default:
	}
}

// send acks and streams a fake reply to every socket attached to the
// session, from one goroutine per generation.
func (s *server) send(ctx context.Context, cl *client, cmd command) {
	s.mu.Lock()
	sess := s.sessions[cmd.Session]
	busy := sess != nil && sess.generating
	var gen uint64
	if sess != nil && !busy {
		sess.generating = true
		sess.seq += 2 // message.user, generation.started
		gen = sess.seq
	}
	s.mu.Unlock()
	switch {
	case sess == nil:
		s.reply(cl, map[string]any{"type": "error", "id": cmd.ID, "session": cmd.Session, "code": "not_found", "message": "no such session"})
		return
	case busy:
		s.reply(cl, map[string]any{"type": "error", "id": cmd.ID, "session": cmd.Session, "code": "busy", "message": "a generation is running"})
		return
	}
	s.reply(cl, map[string]any{"type": "ack", "id": cmd.ID, "session": cmd.Session, "seq": gen - 1})
	go func() { // ends after s.tokens deltas, or with the server
		interval := time.Duration(float64(time.Second) / s.tps)
		next := time.Now().Add(s.ttft)
		t := time.NewTimer(time.Until(next))
		defer t.Stop()
		var text strings.Builder
		for range s.tokens {
			select {
			case <-t.C:
			case <-ctx.Done():
				return
			}
			s.broadcast(cmd.Session, map[string]any{"type": "delta", "session": cmd.Session, "gen": gen, "offset": text.Len(), "text": s.token})
			text.WriteString(s.token)
			next = next.Add(interval)
			t.Reset(time.Until(next))
		}
		s.mu.Lock()
		sess.seq++
		seq := sess.seq
		sess.generating = false
		s.mu.Unlock()
		s.broadcast(cmd.Session, map[string]any{"type": "event", "session": cmd.Session, "seq": seq, "kind": "generation.completed",
			"at": time.Now().UTC().Format("2006-01-02T15:04:05.000Z07:00"), "data": map[string]any{"gen": gen, "text": text.String()}})
	}()
}

func (s *server) broadcast(id string, v any) {
	b, _ := json.Marshal(v)
	s.mu.Lock()
	defer s.mu.Unlock()
	for cl := range s.sessions[id].subs {
		select {
		case cl.out <- b:
		default:
		}
	}
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
