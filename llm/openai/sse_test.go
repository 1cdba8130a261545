package openai

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// readAll reads every event of body through an sseReader fed one byte at a
// time (so every line crosses reads), and returns the events and the error
// that ended the stream.
func readAll(body string, maxEvent int) ([]string, error) {
	r := newSSEReader(iotest.OneByteReader(strings.NewReader(body)), maxEvent)
	var evs []string
	for {
		data, err := r.next()
		if err != nil {
			return evs, err
		}
		evs = append(evs, string(data))
	}
}

func TestSSEReader(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 40<<10) // longer than the reader's 16 KiB buffer
	tests := []struct {
		name    string
		body    string
		want    []string
		wantErr error
	}{
		{"openai", "data: {\"a\":1}\n\ndata: [DONE]\n\n", []string{`{"a":1}`, "[DONE]"}, io.EOF},
		{"crlf", "data: a\r\n\r\ndata: b\r\n\r\n", []string{"a", "b"}, io.EOF},
		{"no space after colon", "data:a\n\n", []string{"a"}, io.EOF},
		{"only the first space goes", "data:  a \n\n", []string{" a "}, io.EOF},
		{"multi-line data", "data: a\ndata: b\n\n", []string{"a\nb"}, io.EOF},
		{"empty data line", "data\n\ndata:\n\n", []string{"", ""}, io.EOF},
		{"comments and keepalives", ": OPENROUTER PROCESSING\n\n: ping\ndata: a\n\n", []string{"a"}, io.EOF},
		{"other fields", "event: message\nid: 7\nretry: 100\nfoo: bar\ndata: a\n\n", []string{"a"}, io.EOF},
		{"event without data", "event: ping\n\ndata: a\n\n", []string{"a"}, io.EOF},
		{"blank lines", "\n\n\ndata: a\n\n\n\n", []string{"a"}, io.EOF},
		{"last event without blank line", "data: a\n\ndata: [DONE]\n", []string{"a", "[DONE]"}, io.EOF},
		{"cut inside a line", "data: a\n\ndata: {\"x", []string{"a"}, io.ErrUnexpectedEOF},
		{"cut inside a multi-line event", "data: a\ndata: b", nil, io.ErrUnexpectedEOF},
		{"raw bytes kept", "data: \xe2\x82\n\ndata: \xac\xff\n\n", []string{"\xe2\x82", "\xac\xff"}, io.EOF},
		{"long line", "data: " + long + "\n\n", []string{long}, io.EOF},
		{"empty body", "", nil, io.EOF},
	}
	for _, tt := range tests {
		got, err := readAll(tt.body, maxEventBytes)
		if strings.Join(got, "|") != strings.Join(tt.want, "|") || len(got) != len(tt.want) {
			t.Errorf("%s: events %q, want %q", tt.name, clipQ(got), clipQ(tt.want))
		}
		if !errors.Is(err, tt.wantErr) {
			t.Errorf("%s: error %v, want %v", tt.name, err, tt.wantErr)
		}
	}
}

func clipQ(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		if len(s) > 40 {
			s = s[:40] + "…"
		}
		out[i] = s
	}
	return out
}

func TestSSEReaderLimit(t *testing.T) {
	t.Parallel()
	for _, body := range []string{
		"data: " + strings.Repeat("x", 100) + "\n\n",             // one line
		strings.Repeat("data: "+strings.Repeat("x", 30)+"\n", 5), // many lines
		"data: " + strings.Repeat("x", 40<<10) + "\n\n",          // a line over the buffer
	} {
		if _, err := readAll(body, 64); !errors.Is(err, errEventTooLarge) {
			t.Errorf("%d-byte body: error %v, want errEventTooLarge", len(body), err)
		}
	}
	if got, err := readAll("data: "+strings.Repeat("x", 63)+"\n\n", 64); len(got) != 1 || err != io.EOF {
		t.Errorf("event at the limit: %d events, %v", len(got), err)
	}
}

// refEvents is a plain reading of the SSE rules (LF or CRLF line ends),
// to compare the reader against.
func refEvents(body string) ([]string, error) {
	var evs []string
	var data []string
	has := false
	for {
		i := strings.IndexByte(body, '\n')
		if i < 0 {
			if body != "" {
				return evs, io.ErrUnexpectedEOF
			}
			if has {
				evs = append(evs, strings.Join(data, "\n"))
			}
			return evs, io.EOF
		}
		line := strings.TrimSuffix(body[:i], "\r")
		body = body[i+1:]
		switch {
		case line == "":
			if has {
				evs = append(evs, strings.Join(data, "\n"))
			}
			data, has = nil, false
		case line[0] == ':':
		default:
			name, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			if name == "data" {
				data, has = append(data, value), true
			}
		}
	}
}

func FuzzSSEReader(f *testing.F) {
	for _, s := range []string{
		"data: {\"a\":1}\n\ndata: [DONE]\n\n", "data:a\r\n\r\n", ": c\nevent: x\ndata: a\ndata: b\n\n", "data: a", "data\n\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		want, wantErr := refEvents(body)
		got, err := readAll(body, maxEventBytes)
		if !errors.Is(err, wantErr) {
			t.Fatalf("error %v, want %v", err, wantErr)
		}
		if len(got) != len(want) {
			t.Fatalf("events %q, want %q", got, want)
		}
		for i := range got {
			if !bytes.Equal([]byte(got[i]), []byte(want[i])) {
				t.Fatalf("event %d = %q, want %q", i, got[i], want[i])
			}
		}
	})
}
