package openai

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// errEventTooLarge is returned by sseReader.next for an event whose data
// exceeds the reader's limit.
var errEventTooLarge = errors.New("openai: stream event exceeds the size limit")

// sseReader reads the events of a text/event-stream body as the HTML
// Server-Sent Events spec defines them, keeping only what a chat stream
// uses: "data" lines (joined with "\n"), and the end of an event (a blank
// line). Comment lines (": …"), "event", "id" and "retry" fields and
// unknown fields are skipped. Lines end in LF or CRLF; a lone CR, which
// the spec also allows but no OpenAI-compatible server sends, is not a
// line end.
//
// At the end of the body, an event whose last line was complete but which
// had no blank line after it is still returned (some servers end with
// "data: [DONE]\n"); a line cut before its newline never is.
type sseReader struct {
	br   *bufio.Reader
	max  int    // limit on one event's data, in bytes
	data []byte // the data of the event being read; reused
	long []byte // a line longer than br's buffer, assembled; reused
}

func newSSEReader(r io.Reader, maxEvent int) *sseReader {
	return &sseReader{br: bufio.NewReaderSize(r, 16<<10), max: maxEvent}
}

// next returns the data of the next event that has any. The slice is valid
// until the following call. At the end of the body it returns io.EOF, and
// it passes on any other read error as it is.
func (s *sseReader) next() ([]byte, error) {
	s.data = s.data[:0]
	hasData := false
	for {
		line, err := s.readLine()
		if err != nil {
			if errors.Is(err, io.EOF) && hasData {
				// The body ended after a complete line but before the
				// blank line: deliver what was complete.
				return s.data[:len(s.data)-1], nil
			}
			return nil, err
		}
		if len(line) == 0 { // end of event
			if hasData {
				return s.data[:len(s.data)-1], nil // without the last "\n"
			}
			continue
		}
		if line[0] == ':' { // comment
			continue
		}
		name, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			name, value = line[:i], line[i+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		if string(name) != "data" {
			continue // event, id, retry and unknown fields
		}
		if len(s.data)+len(value)+1 > s.max {
			return nil, errEventTooLarge
		}
		s.data = append(s.data, value...)
		s.data = append(s.data, '\n')
		hasData = true
	}
}

// readLine returns the next line without its LF or CRLF. A line cut by the
// end of the body is returned as nil with io.ErrUnexpectedEOF; the end of
// the body at a line boundary is nil with io.EOF.
func (s *sseReader) readLine() ([]byte, error) {
	line, err := s.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		s.long = append(s.long[:0], line...)
		for errors.Is(err, bufio.ErrBufferFull) {
			if len(s.long) > s.max+2 {
				return nil, errEventTooLarge
			}
			line, err = s.br.ReadSlice('\n')
			s.long = append(s.long, line...)
		}
		line = s.long
	}
	if err != nil {
		if errors.Is(err, io.EOF) {
			if len(line) > 0 {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, io.EOF
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}
