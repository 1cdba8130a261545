package openai

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf16"
	"unicode/utf8"
)

// doneMarker is the data of the event that ends an OpenAI stream.
var doneMarker = []byte("[DONE]")

// chunk is the part of a chat.completion.chunk this provider reads. Text
// fields are kept raw and decoded by decodeText, because encoding/json
// would turn bytes that are not valid UTF-8 (a character a server split
// across two chunks) into U+FFFD.
type chunk struct {
	Choices []choice `json:"choices"`
	Usage   *usage   `json:"usage"`
	// Error is an error object ({"message","type","code"}) or a string,
	// sent instead of a chunk when the server fails mid-stream.
	Error json.RawMessage `json:"error"`
	// Object "error" with a top-level Message is vLLM's older in-stream
	// error form.
	Object  string          `json:"object"`
	Message json.RawMessage `json:"message"`
}

type choice struct {
	Index int `json:"index"`
	Delta struct {
		Content json.RawMessage `json:"content"`
		// Reasoning text: "reasoning" (Ollama, OpenRouter, Groq, newer
		// vLLM) or "reasoning_content" (DeepSeek, older vLLM).
		Reasoning        json.RawMessage `json:"reasoning"`
		ReasoningContent json.RawMessage `json:"reasoning_content"`
	} `json:"delta"`
	FinishReason *string `json:"finish_reason"`
}

type usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
}

// errorObject is the OpenAI error object, in error bodies and in-stream.
type errorObject struct {
	Message string          `json:"message"`
	Type    string          `json:"type"`
	Code    json.RawMessage `json:"code"` // a string (OpenAI) or a number (vLLM, OpenRouter)
}

// parsed is what one chunk contributes to a stream.
type parsed struct {
	text, thinking string
	finishReason   string // "" when the chunk has none
	usage          *usage
	err            *errorObject // an in-stream error
}

// parseChunk decodes one event's data (not [DONE]). Only choice 0 is
// read; a request asks for one.
func parseChunk(data []byte, c *chunk) (parsed, error) {
	// encoding/json decodes into reused slice elements without zeroing
	// them: clear them, or a field absent from this chunk would keep the
	// last chunk's value.
	choices := c.Choices[:cap(c.Choices)]
	clear(choices)
	*c = chunk{Choices: choices[:0]}
	if err := json.Unmarshal(data, c); err != nil {
		return parsed{}, fmt.Errorf("malformed chunk: %w", err)
	}
	var p parsed
	if e, err := parseError(c.Error); err != nil {
		return parsed{}, err
	} else if e != nil {
		p.err = e
		return p, nil
	}
	if c.Object == "error" {
		msg, _ := decodeText(c.Message)
		p.err = &errorObject{Message: msg, Type: "error"}
		return p, nil
	}
	p.usage = c.Usage
	for i := range c.Choices {
		ch := &c.Choices[i]
		if ch.Index != 0 {
			continue
		}
		var err error
		if p.text, err = decodeText(ch.Delta.Content); err != nil {
			return parsed{}, fmt.Errorf("malformed chunk: delta.content: %w", err)
		}
		r1, err := decodeText(ch.Delta.Reasoning)
		if err != nil {
			return parsed{}, fmt.Errorf("malformed chunk: delta.reasoning: %w", err)
		}
		r2, err := decodeText(ch.Delta.ReasoningContent)
		if err != nil {
			return parsed{}, fmt.Errorf("malformed chunk: delta.reasoning_content: %w", err)
		}
		switch {
		case r1 == "" || r1 == r2: // some servers send both, alike
			p.thinking = r2
		case r2 == "":
			p.thinking = r1
		default:
			p.thinking = r1 + r2
		}
		if ch.FinishReason != nil {
			p.finishReason = *ch.FinishReason
		}
		break
	}
	return p, nil
}

// parseError decodes an "error" member: absent or null is nil, a string
// is the message, an object is read as errorObject.
func parseError(raw json.RawMessage) (*errorObject, error) {
	raw = bytes.TrimSpace(raw)
	switch {
	case len(raw) == 0 || string(raw) == "null":
		return nil, nil
	case raw[0] == '"':
		msg, err := decodeText(raw)
		if err != nil {
			return nil, err
		}
		return &errorObject{Message: msg}, nil
	case raw[0] == '{':
		var e errorObject
		if err := json.Unmarshal(raw, &e); err != nil {
			return nil, fmt.Errorf("malformed error object: %w", err)
		}
		if e.Message == "" {
			e.Message = string(raw)
		}
		return &e, nil
	}
	return &errorObject{Message: string(raw)}, nil
}

// code returns the error's code as text ("" for none).
func (e *errorObject) code() string {
	c := bytes.TrimSpace(e.Code)
	if len(c) == 0 || string(c) == "null" {
		return ""
	}
	if c[0] == '"' {
		s, _ := decodeText(c)
		return s
	}
	return string(c)
}

var errNotString = errors.New("not a string")

// decodeText decodes a JSON string value as encoding/json does, except
// that bytes which are not valid UTF-8 are kept as they are (encoding/json
// replaces them with U+FFFD). A missing value or null is "". raw must
// come from encoding/json (a RawMessage), so its syntax is valid.
func decodeText(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", errNotString
	}
	s := raw[1 : len(raw)-1]
	i := bytes.IndexByte(s, '\\')
	if i < 0 {
		return string(s), nil // the common case: one copy
	}
	b := make([]byte, 0, len(s))
	b = append(b, s[:i]...)
	for i < len(s) {
		c := s[i]
		if c != '\\' {
			j := bytes.IndexByte(s[i:], '\\')
			if j < 0 {
				b = append(b, s[i:]...)
				break
			}
			b = append(b, s[i:i+j]...)
			i += j
			continue
		}
		if i+1 >= len(s) {
			return "", errors.New("truncated escape")
		}
		switch e := s[i+1]; e {
		case '"', '\\', '/':
			b = append(b, e)
			i += 2
		case 'b':
			b = append(b, '\b')
			i += 2
		case 'f':
			b = append(b, '\f')
			i += 2
		case 'n':
			b = append(b, '\n')
			i += 2
		case 'r':
			b = append(b, '\r')
			i += 2
		case 't':
			b = append(b, '\t')
			i += 2
		case 'u':
			r, ok := hex4(s[i+2:])
			if !ok {
				return "", errors.New("bad \\u escape")
			}
			i += 6
			if utf16.IsSurrogate(r) {
				// A pair makes one character; a lone half is U+FFFD, as
				// encoding/json decodes it.
				if r2, ok := lowSurrogate(s[i:]); ok && r < 0xDC00 {
					if c := utf16.DecodeRune(r, r2); c != utf8.RuneError {
						b = utf8.AppendRune(b, c)
						i += 6
						continue
					}
				}
				r = utf8.RuneError
			}
			b = utf8.AppendRune(b, r)
		default:
			return "", fmt.Errorf("bad escape \\%c", e)
		}
	}
	return string(b), nil
}

// lowSurrogate reads a `\uXXXX` escape at the start of s.
func lowSurrogate(s []byte) (rune, bool) {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return 0, false
	}
	r, ok := hex4(s[2:])
	return r, ok && r >= 0xDC00 && r < 0xE000
}

// hex4 reads four hex digits at the start of s.
func hex4(s []byte) (rune, bool) {
	if len(s) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range s[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}
