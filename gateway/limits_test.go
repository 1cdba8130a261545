package gateway_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/parleyhq/parley/internal/testkit"
)

// TestFlood sends far more frames than the connection's command rate
// allows: the excess is dropped, each dropped command is answered
// rate_limited with its id, every command gets exactly one answer, and
// the connection is usable again once the rate allows.
func TestFlood(t *testing.T) {
	t.Parallel()
	const burst, flood = 20, 300
	s := newStack(t, stackOpts{commandRate: 10, commandBurst: burst})
	c := s.dial("")
	for i := 0; i < flood; i++ {
		c.Send(map[string]any{"type": "detach", "session": "Qk3ZCgAAAAAAAAAAAAAAAA", "id": fmt.Sprint(i)})
	}
	answers := map[string]string{}
	for len(answers) < flood {
		f := c.Next()
		if f.Type != "ack" && f.Type != "error" {
			t.Fatalf("unexpected frame %s", f.Raw)
		}
		if _, dup := answers[f.ID]; dup {
			t.Fatalf("command %s answered twice", f.ID)
		}
		answers[f.ID] = f.Type + ":" + f.Code
	}
	acked, limited := 0, 0
	for _, a := range answers {
		switch a {
		case "ack:":
			acked++
		case "error:rate_limited":
			limited++
		default:
			t.Errorf("answer %s", a)
		}
	}
	// The burst, plus what the rate refilled while the flood went on.
	if acked < burst || acked > burst+10 || limited != flood-acked {
		t.Errorf("%d acked, %d rate_limited; want about %d acked", acked, limited, burst)
	}
	m := scrape(t, s)
	if got := m["parley_client_frames_rate_limited_total"]; got != float64(limited) {
		t.Errorf("metric says %v dropped, answers say %d", got, limited)
	}
	// The bucket refills (10 a second): the connection works again.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c.Send(map[string]any{"type": "ping"})
		f := c.Next()
		if f.Type == "pong" {
			break
		}
		if f.Code != "rate_limited" || time.Now().After(deadline) {
			t.Fatalf("after the flood: %s", f.Raw)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// dialSlowReader opens a WebSocket with a tiny receive buffer and never
// reads from it, so the server's writes back up.
func dialSlowReader(t *testing.T, url string) *websocket.Conn {
	t.Helper()
	d := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	hc := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.CloseNow() })
	return conn
}

// TestSlowReader attaches a client that never reads to a session
// streaming a long reply: once more than MaxWriteBuffer bytes wait for
// it, the server closes it, while the generation and a reading client go
// on unharmed. The slow client can come back and resume from its cursor.
func TestSlowReader(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{maxWriteBuffer: 512 << 10, maxReplyBytes: 5 << 20})
	// 4 MB of reply in 4 KB deltas: far more than the socket buffers and
	// the 64 KiB write buffer hold.
	piece := strings.Repeat("slow readers get closed. ", 160)[:4000]
	pieces := make([]string, 1000)
	for i := range pieces {
		pieces[i] = piece
	}
	// Paced (1 ms a delta), so that the reading client keeps up while the
	// one that does not read falls behind.
	s.upstream.Push(testkit.TokenReply(time.Millisecond, pieces...))
	good := s.dial("")
	id := create(t, good, nil)

	slow := dialSlowReader(t, s.wsURL())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := slow.Write(ctx, websocket.MessageText, []byte(`{"type":"attach","session":"`+id+`"}`)); err != nil {
		t.Fatal(err)
	}
	// Its one read: the attach's ack, so it is attached before the send.
	// It never reads again.
	if _, ack, err := slow.Read(ctx); err != nil || !strings.Contains(string(ack), `"type":"ack"`) {
		t.Fatalf("slow reader's attach: %s %v", ack, err)
	}

	send(t, good, id, "a long one")
	// The slow reader is closed while the reply streams, while the reading
	// client gets the whole reply. On a loaded machine the reading client
	// may fall behind too and be closed; then it resumes from its cursor,
	// as any client would, and still assembles the reply exactly.
	var frames []testkit.Frame
	resumes := 0
	for {
		f, err := good.TryNext()
		if err != nil {
			resumes++
			good = s.dial("")
			_, before := good.Reply(good.Command(map[string]any{"type": "attach", "session": id, "after": cursorOf(frames)}))
			frames = append(frames, before...)
			continue
		}
		frames = append(frames, f)
		if f.Type == "event" && testkit.IsTerminal(f.Kind) {
			break
		}
	}
	waitCount(t, "open sockets", 1, s.srv.OpenConnections) // the slow one is gone
	final := frames[len(frames)-1]
	if final.Kind != "generation.completed" || final.DataText() != strings.Join(pieces, "") {
		t.Fatalf("reading client: %s with %d bytes", final.Kind, len(final.DataText()))
	}
	if text := testkit.Assemble(t, frames, 3); !strings.HasPrefix(final.DataText(), text) || resumes == 0 && text != final.DataText() {
		t.Errorf("reading client assembled %d of %d bytes", len(text), len(final.DataText()))
	}
	t.Logf("the reading client resumed %d times", resumes)
	// The slow client comes back (here, after the end) and gets the final
	// state from its cursor.
	r := s.dial("")
	r.Ack(r.Command(map[string]any{"type": "attach", "session": id, "after": "1"}))
	rest := r.Terminal(id, 3)
	if rest[len(rest)-1].DataText() != final.DataText() {
		t.Errorf("resumed client got %d bytes", len(rest[len(rest)-1].DataText()))
	}
}

// TestReplySizeCap ends a reply that grows past MaxReplyBytes: failed with
// too_large and the text so far, the upstream request cancelled, and the
// terminal event in the log (it must fit one NATS message).
func TestReplySizeCap(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{maxReplyBytes: 10_000})
	pieces := make([]string, 0, 100)
	for i := 0; i < 100; i++ {
		pieces = append(pieces, strings.Repeat("x", 999)+"\n")
	}
	s.upstream.Push(testkit.TokenReply(time.Millisecond, pieces...))
	c := s.dial("")
	id := create(t, c, nil)
	send(t, c, id, "go on and on")
	fs := c.Terminal(id, 3)
	final := fs[len(fs)-1]
	if final.Kind != "generation.failed" || jsonField(t, final.Data, "error.code") != "too_large" ||
		final.DataText() != strings.Join(pieces[:10], "") || testkit.Assemble(t, fs, 3) != final.DataText() {
		t.Fatalf("terminal %.300s", final.Raw)
	}
	s.upstream.WaitCancelled(t, 1)
	evs, _, err := s.nats.Store(t).Load(context.Background(), id, 0)
	if err != nil || evs[len(evs)-1].Kind != "generation.failed" {
		t.Fatalf("log ends %v, %v", evs[len(evs)-1].Kind, err)
	}
}
