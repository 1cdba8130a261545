package loadgen

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

func TestScanFrame(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want frameFields
		err  bool
	}{
		{
			name: "delta",
			in:   `{"type":"delta","session":"abc","gen":12,"offset":40,"text":"he said \"kind\":\"x\" {["}`,
			want: frameFields{typ: []byte("delta"), session: []byte("abc"), gen: 12, hasGen: true},
		},
		{
			name: "event with nested data",
			in:   `{"type":"event","session":"s1","seq":7,"kind":"generation.completed","at":"2026-01-01T00:00:00.000Z","data":{"gen":5,"kind":"nope","text":"}{"}}`,
			want: frameFields{typ: []byte("event"), session: []byte("s1"), seq: 7, kind: []byte("generation.completed")},
		},
		{
			name: "ack",
			in:   ` { "type" : "ack" , "id" : "o", "session":"x1", "seq": 3 } `,
			want: frameFields{typ: []byte("ack"), id: []byte("o"), session: []byte("x1"), seq: 3},
		},
		{
			name: "error",
			in:   `{"type":"error","id":"s4","session":"x","code":"busy","message":"a \\ generation"}`,
			want: frameFields{typ: []byte("error"), id: []byte("s4"), session: []byte("x"), code: []byte("busy")},
		},
		{
			name: "literals and arrays skipped",
			in:   `{"a":true,"b":null,"c":[1,{"type":"no"}],"type":"pong"}`,
			want: frameFields{typ: []byte("pong")},
		},
		{name: "empty object", in: `{}`, want: frameFields{}},
		{name: "not an object", in: `["type"]`, err: true},
		{name: "unterminated string", in: `{"type":"delta`, err: true},
		{name: "unterminated object", in: `{"data":{"a":1}`, err: true},
		{name: "missing colon", in: `{"type" "x"}`, err: true},
		{name: "garbage between members", in: `{"type":"x" "id":"y"}`, err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got frameFields
			err := scanFrame([]byte(tt.in), &got)
			if tt.err {
				if !errors.Is(err, errProtocol) {
					t.Fatalf("err = %v, want a protocol error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.typ, tt.want.typ) || !bytes.Equal(got.id, tt.want.id) || !bytes.Equal(got.session, tt.want.session) ||
				!bytes.Equal(got.kind, tt.want.kind) || !bytes.Equal(got.code, tt.want.code) ||
				got.gen != tt.want.gen || got.hasGen != tt.want.hasGen || got.seq != tt.want.seq {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func (f frameFields) String() string {
	return fmt.Sprintf("{type %q id %q session %q kind %q code %q gen %d(%v) seq %d}", f.typ, f.id, f.session, f.kind, f.code, f.gen, f.hasGen, f.seq)
}

func TestScanFrameDoesNotAllocate(t *testing.T) {
	msg := []byte(`{"type":"delta","session":"abc","gen":12,"offset":40,"text":"token"}`)
	var f frameFields
	if n := testing.AllocsPerRun(100, func() { _ = scanFrame(msg, &f) }); n != 0 {
		t.Errorf("%v allocations per frame", n)
	}
}

// serverFrame encodes an unmasked server frame.
func serverFrame(op byte, fin bool, payload []byte) []byte {
	b := appendFrame(nil, op, payload, [4]byte{})
	if !fin {
		b[0] &^= 0x80
	}
	// Drop the mask bit and the (zero) mask key.
	b[1] &^= 0x80
	hdr := len(b) - len(payload) - 4
	return append(b[:hdr:hdr], payload...)
}

func TestFrameRoundTrip(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 1, 125, 126, 127, 65535, 65536, 70000} {
		payload := bytes.Repeat([]byte{'x'}, n)
		mask := [4]byte{1, 2, 3, 4}
		b := appendFrame(nil, opText, payload, mask)
		h, ok, err := parseHeader(b)
		if err != nil || !ok {
			t.Fatalf("n=%d: ok %v err %v", n, ok, err)
		}
		if !h.fin || h.op != opText || !h.masked || h.mask != mask || h.length != n || h.size+n != len(b) {
			t.Fatalf("n=%d: header %+v, frame %d bytes", n, h, len(b))
		}
		got := append([]byte(nil), b[h.size:]...)
		for i := range got {
			got[i] ^= mask[i&3]
		}
		if !bytes.Equal(got, payload) {
			t.Fatalf("n=%d: payload differs after unmasking", n)
		}
		// Every prefix of the header is "not yet".
		for cut := range h.size {
			if _, ok, err := parseHeader(b[:cut]); ok || err != nil {
				t.Fatalf("n=%d: header prefix of %d bytes: ok %v err %v", n, cut, ok, err)
			}
		}
	}
}

func TestParseHeaderRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   []byte
	}{
		{"reserved bit", []byte{0x80 | 0x40 | opText, 0}},
		{"long control frame", []byte{0x80 | opPing, 126, 0, 200}},
		{"fragmented control frame", []byte{opClose, 0}},
		{"too large", []byte{0x80 | opText, 127, 0, 0, 0, 0, 0x10, 0, 0, 0}},
	}
	for _, tt := range tests {
		if _, _, err := parseHeader(tt.in); !errors.Is(err, errProtocol) {
			t.Errorf("%s: err = %v", tt.name, err)
		}
	}
}

// TestFeedAcrossReads splits a stream of frames at every byte boundary
// and checks that the connection sees the same messages.
func TestFeedAcrossReads(t *testing.T) {
	t.Parallel()
	frames := [][]byte{
		serverFrame(opText, true, []byte(`{"type":"pong"}`)),
		serverFrame(opText, false, []byte(`{"type":"de`)),
		serverFrame(opContinuation, false, []byte(`lta","gen":3,`)),
		serverFrame(opContinuation, true, []byte(`"text":"x"}`)),
		serverFrame(opText, true, []byte(`{"type":"delta","gen":3,"text":"`+string(bytes.Repeat([]byte{'y'}, 300))+`"}`)),
	}
	stream := bytes.Join(frames, nil)
	for cut := 1; cut < len(stream); cut++ {
		w := &worker{}
		c := &conn{w: w, sess: &session{}}
		c.feed(append([]byte(nil), stream[:cut]...))
		c.feed(append([]byte(nil), stream[cut:]...))
		if got := w.deltas.Load(); got != 2 {
			t.Fatalf("cut at %d: %d deltas, want 2 (errors %v)", cut, got, w.errs.snapshot())
		}
		if e := w.errs.snapshot(); e != nil {
			t.Fatalf("cut at %d: errors %v", cut, e)
		}
		if c.partial != nil || c.frag != nil {
			t.Fatalf("cut at %d: leftover state", cut)
		}
	}
}

func TestCheckLoopback(t *testing.T) {
	t.Parallel()
	tests := []struct {
		host string
		ok   bool
	}{
		{"127.0.0.1:8080", true},
		{"127.3.4.5:1", true},
		{"localhost:8080", true},
		{"LOCALHOST", true},
		{"10.0.0.1:8080", false},
		{"[::1]:8080", false}, // IPv6 loopback is not 127.0.0.0/8
		{"example.com:80", false},
		{"0.0.0.0:8080", false},
		{"128.0.0.1:80", false},
	}
	for _, tt := range tests {
		err := checkLoopback(tt.host)
		if (err == nil) != tt.ok {
			t.Errorf("%s: err = %v, want ok=%v", tt.host, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrNotLoopback) {
			t.Errorf("%s: err = %v, want ErrNotLoopback", tt.host, err)
		}
	}
	cfg := Config{URL: "ws://10.1.2.3:8080/v1/ws"}
	if err := cfg.setDefaults(); !errors.Is(err, ErrNotLoopback) {
		t.Errorf("non-loopback target accepted: %v", err)
	}
	cfg = Config{NATSURL: "nats://192.168.1.1:4222"}
	if err := cfg.setDefaults(); !errors.Is(err, ErrNotLoopback) {
		t.Errorf("non-loopback NATS accepted: %v", err)
	}
	cfg = Config{SourceIPs: []string{"10.0.0.2"}}
	if err := cfg.setDefaults(); err == nil {
		t.Error("non-loopback source address accepted")
	}
}

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	cfg := Config{Conns: []int{5000, 10000, 60000}, Duration: 10 * MaxDuration}
	if err := cfg.setDefaults(); err != nil {
		t.Fatal(err)
	}
	if cfg.Duration != MaxDuration {
		t.Errorf("duration %v, want the cap %v", cfg.Duration, MaxDuration)
	}
	if cfg.Sessions != 6000 || cfg.Procs != 4 {
		t.Errorf("sessions %d procs %d, want 6000 and 4", cfg.Sessions, cfg.Procs)
	}
	if len(cfg.SourceIPs) != 3 || cfg.SourceIPs[2] != "127.0.0.3" {
		t.Errorf("source addresses %v, want three", cfg.SourceIPs)
	}
	for _, bad := range []Config{
		{Conns: []int{100, 50}},
		{Conns: []int{0}},
		{Conns: []int{100}, Sessions: 10, Chats: 11},
		{Conns: []int{10}, Sessions: 20, Chats: 1},
		{URL: "wss://127.0.0.1/v1/ws"},
	} {
		if err := bad.setDefaults(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
