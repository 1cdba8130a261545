package loadgen

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// WebSocket opcodes (RFC 6455 section 5.2).
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA
)

// maxFrame bounds one server message; Parley's frames are small, a larger
// one means a broken stream.
const maxFrame = 16 << 20

var errProtocol = errors.New("loadgen: websocket protocol error")

// handshake upgrades conn, already dialled to u's host, to a WebSocket and
// returns the bytes that followed the response headers (frames the server
// sent at once, usually none). It blocks until the server answered or ctx
// ends; it runs on a dialling goroutine, never on an event loop.
func handshake(ctx context.Context, conn net.Conn, u *url.URL, header http.Header) ([]byte, error) {
	var nonce [16]byte
	_, _ = rand.Read(nonce[:])
	key := base64.StdEncoding.EncodeToString(nonce[:])
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
		defer conn.SetDeadline(time.Time{})
	}
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n",
		u.RequestURI(), u.Host, key)
	for k, vs := range header {
		for _, v := range vs {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(conn, b.String()); err != nil {
		return nil, fmt.Errorf("write upgrade request: %w", err)
	}
	br := bufio.NewReaderSize(conn, 1024)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return nil, fmt.Errorf("read upgrade response: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return nil, &statusError{code: resp.StatusCode}
	}
	if got, want := resp.Header.Get("Sec-WebSocket-Accept"), acceptKey(key); got != want {
		return nil, fmt.Errorf("%w: bad Sec-WebSocket-Accept %q", errProtocol, got)
	}
	var rest []byte
	if n := br.Buffered(); n > 0 {
		p, _ := br.Peek(n)
		rest = append([]byte(nil), p...)
	}
	return rest, nil
}

// statusError is an upgrade refused with an HTTP status.
type statusError struct{ code int }

func (e *statusError) Error() string { return fmt.Sprintf("upgrade refused: HTTP %d", e.code) }

func acceptKey(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

// appendFrame appends one final, masked client frame (clients must mask,
// RFC 6455 section 5.3) with the given opcode and payload.
func appendFrame(dst []byte, op byte, payload []byte, mask [4]byte) []byte {
	dst = append(dst, 0x80|op)
	n := len(payload)
	switch {
	case n < 126:
		dst = append(dst, 0x80|byte(n))
	case n <= 0xFFFF:
		dst = append(dst, 0x80|126)
		dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	default:
		dst = append(dst, 0x80|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	dst = append(dst, mask[:]...)
	start := len(dst)
	dst = append(dst, payload...)
	for i := range n {
		dst[start+i] ^= mask[i&3]
	}
	return dst
}

// frameHeader is one parsed frame header.
type frameHeader struct {
	fin    bool
	op     byte
	masked bool
	mask   [4]byte
	length int
	size   int // header bytes
}

// parseHeader reads a frame header from b. ok is false when b holds only
// part of it.
func parseHeader(b []byte) (h frameHeader, ok bool, err error) {
	if len(b) < 2 {
		return h, false, nil
	}
	h.fin = b[0]&0x80 != 0
	if b[0]&0x70 != 0 {
		return h, false, fmt.Errorf("%w: reserved bits set (no extension was negotiated)", errProtocol)
	}
	h.op = b[0] & 0x0F
	h.masked = b[1]&0x80 != 0
	n := int(b[1] & 0x7F)
	h.size = 2
	switch n {
	case 126:
		if len(b) < 4 {
			return h, false, nil
		}
		n = int(binary.BigEndian.Uint16(b[2:]))
		h.size = 4
	case 127:
		if len(b) < 10 {
			return h, false, nil
		}
		l := binary.BigEndian.Uint64(b[2:])
		if l > maxFrame {
			return h, false, fmt.Errorf("%w: frame of %d bytes", errProtocol, l)
		}
		n = int(l)
		h.size = 10
	}
	if n > maxFrame {
		return h, false, fmt.Errorf("%w: frame of %d bytes", errProtocol, n)
	}
	if h.masked {
		if len(b) < h.size+4 {
			return h, false, nil
		}
		copy(h.mask[:], b[h.size:])
		h.size += 4
	}
	if h.op >= opClose && (n > 125 || !h.fin) {
		return h, false, fmt.Errorf("%w: bad control frame", errProtocol)
	}
	h.length = n
	return h, true, nil
}

// frameFields are the top-level fields of a Parley server frame that the
// load generator reads. Byte slices alias the frame being parsed.
type frameFields struct {
	typ, id, session, kind, code []byte
	gen, seq                     int64
	hasGen                       bool
}

// scanFrame extracts frameFields from one JSON object without allocating.
// It reads only top-level members and skips nested values whole, so the
// text of a reply can never be mistaken for a field. String values are
// returned raw (escapes are not decoded: ids, kinds and codes have none).
func scanFrame(b []byte, f *frameFields) error {
	*f = frameFields{}
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return fmt.Errorf("%w: frame is not a JSON object", errProtocol)
	}
	i++
	for {
		i = skipSpace(b, i)
		if i < len(b) && b[i] == '}' {
			return nil
		}
		if i >= len(b) || b[i] != '"' {
			return fmt.Errorf("%w: bad JSON at byte %d", errProtocol, i)
		}
		kEnd, err := skipString(b, i)
		if err != nil {
			return err
		}
		key := b[i+1 : kEnd-1]
		i = skipSpace(b, kEnd)
		if i >= len(b) || b[i] != ':' {
			return fmt.Errorf("%w: bad JSON at byte %d", errProtocol, i)
		}
		i = skipSpace(b, i+1)
		vEnd, err := skipValue(b, i)
		if err != nil {
			return err
		}
		val := b[i:vEnd]
		switch string(key) { // no allocation: the compiler special-cases this
		case "type":
			f.typ = unquote(val)
		case "id":
			f.id = unquote(val)
		case "session":
			f.session = unquote(val)
		case "kind":
			f.kind = unquote(val)
		case "code":
			f.code = unquote(val)
		case "gen":
			f.gen, f.hasGen = atoi(val), true
		case "seq":
			f.seq = atoi(val)
		}
		i = skipSpace(b, vEnd)
		if i < len(b) && b[i] == ',' {
			i++
			continue
		}
		if i < len(b) && b[i] == '}' {
			return nil
		}
		return fmt.Errorf("%w: bad JSON at byte %d", errProtocol, i)
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\t' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index just past the string starting at b[i]=='"'.
func skipString(b []byte, i int) (int, error) {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1, nil
		}
	}
	return 0, fmt.Errorf("%w: unterminated string", errProtocol)
}

// skipValue returns the index just past the JSON value starting at b[i].
func skipValue(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, fmt.Errorf("%w: missing value", errProtocol)
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end, err := skipString(b, j)
				if err != nil {
					return 0, err
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1, nil
				}
			}
		}
		return 0, fmt.Errorf("%w: unterminated %c", errProtocol, b[i])
	default: // number, true, false, null
		j := i
		for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\n' && b[j] != '\t' && b[j] != '\r' {
			j++
		}
		if j == i {
			return 0, fmt.Errorf("%w: bad value at byte %d", errProtocol, i)
		}
		return j, nil
	}
}

func unquote(v []byte) []byte {
	if len(v) >= 2 && v[0] == '"' {
		return v[1 : len(v)-1]
	}
	return nil
}

// atoi parses a non-negative JSON integer; anything else is -1.
func atoi(v []byte) int64 {
	if len(v) == 0 {
		return -1
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int64(c-'0')
	}
	return n
}

// appendJSONString appends s as a JSON string literal.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, fmt.Sprintf(`\u%04x`, c)...)
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
