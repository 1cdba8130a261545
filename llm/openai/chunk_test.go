package openai

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestDecodeText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		raw, want string
		ok        bool
	}{
		{`"plain"`, "plain", true},
		{`""`, "", true},
		{`null`, "", true},
		{``, "", true},
		{`"a\u003cb\u0026"`, "a<b&", true},
		{`"q\"b\\s\/n\nr\rt\tb\bf\f"`, "q\"b\\s/n\nr\rt\tb\bf\f", true},
		{`"\u00e9\u20AC"`, "é€", true},
		{`"\ud83d\ude00"`, "😀", true},
		{`"\ud83d"`, "\ufffd", true},             // lone high surrogate
		{`"\ude00x"`, "\ufffdx", true},           // lone low surrogate
		{`"\ud83d\u0041"`, "\ufffdA", true},      // high then not low
		{`"\ude00\ud83d"`, "\ufffd\ufffd", true}, // low then high
		{"\"x\xe2\x82\"", "x\xe2\x82", true},     // raw split character kept
		{"\"\xac\\n\xff\"", "\xac\n\xff", true},
		{`12`, "", false},
		{`{"a":1}`, "", false},
	}
	for _, tt := range tests {
		got, err := decodeText(json.RawMessage(tt.raw))
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("decodeText(%s) = %q, %v; want %q ok=%v", tt.raw, got, err, tt.want, tt.ok)
		}
	}
}

// FuzzDecodeText checks decodeText against encoding/json on every string
// encoding/json can write, and that raw bytes survive where it would
// write U+FFFD.
func FuzzDecodeText(f *testing.F) {
	for _, s := range []string{"", "a", "é€😀", "<>&\"\\\n\t\x00\x1f", "\u2028", "x\xe2\x82", "\xff\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		enc, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		var want string
		if err := json.Unmarshal(enc, &want); err != nil {
			t.Fatal(err)
		}
		got, err := decodeText(enc)
		if err != nil || got != want {
			t.Fatalf("decodeText(%s) = %q, %v; encoding/json gives %q", enc, got, err, want)
		}
		// The same text with JSON's escapes but its bytes raw, as a
		// server that streams raw token bytes writes it.
		if !utf8.ValidString(s) {
			raw := rawJSONString(s)
			got, err := decodeText(json.RawMessage(raw))
			if err != nil || got != s {
				t.Fatalf("decodeText(%q) = %q, %v; want the bytes back", raw, got, err)
			}
		}
	})
}

// rawJSONString encodes s as encoding/json does, but copies bytes that
// are not valid UTF-8 instead of writing U+FFFD.
func rawJSONString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for len(s) > 0 {
		r, w := utf8.DecodeRuneInString(s)
		if r == utf8.RuneError && w == 1 {
			b.WriteByte(s[0])
		} else {
			enc, _ := json.Marshal(s[:w])
			b.Write(enc[1 : len(enc)-1])
		}
		s = s[w:]
	}
	b.WriteByte('"')
	return b.String()
}

func TestParseChunk(t *testing.T) {
	t.Parallel()
	const ollama = `{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"tiny","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"role":"assistant","content":%s},"finish_reason":%s}]}`
	tests := []struct {
		name                string
		data                string
		text, thinking, fin string
		usage               *usage
		errMsg, errCode     string
		bad                 bool
	}{
		{name: "ollama content", data: strings.Replace(strings.Replace(ollama, "%s", `"Hel"`, 1), "%s", "null", 1), text: "Hel"},
		{name: "ollama finish", data: strings.Replace(strings.Replace(ollama, "%s", `""`, 1), "%s", `"length"`, 1), fin: "length"},
		{name: "openai role chunk", data: `{"choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}`},
		{name: "openai finish", data: `{"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}`, fin: "stop"},
		{name: "content and finish together", data: `{"choices":[{"index":0,"delta":{"content":"end"},"finish_reason":"stop"}]}`, text: "end", fin: "stop"},
		{name: "null content with reasoning_content", data: `{"choices":[{"index":0,"delta":{"content":null,"reasoning_content":"hm"},"finish_reason":null}]}`, thinking: "hm"},
		{name: "reasoning", data: `{"choices":[{"index":0,"delta":{"content":"","reasoning":"hm"}}]}`, thinking: "hm"},
		{name: "both reasoning fields alike", data: `{"choices":[{"index":0,"delta":{"reasoning":"hm","reasoning_content":"hm"}}]}`, thinking: "hm"},
		{name: "both reasoning fields differ", data: `{"choices":[{"index":0,"delta":{"reasoning":"a","reasoning_content":"b"}}]}`, thinking: "ab"},
		{name: "other choice ignored", data: `{"choices":[{"index":1,"delta":{"content":"no"}},{"index":0,"delta":{"content":"yes"}}]}`, text: "yes"},
		{name: "usage only", data: `{"choices":[],"usage":{"prompt_tokens":20,"completion_tokens":64,"total_tokens":84}}`, usage: &usage{20, 64}},
		{name: "usage with details", data: `{"choices":[],"usage":{"prompt_tokens":2,"completion_tokens":3,"total_tokens":5,"prompt_tokens_details":{"cached_tokens":0}}}`, usage: &usage{2, 3}},
		{name: "error object", data: `{"error":{"message":"The server had an error","type":"server_error","param":null,"code":null}}`, errMsg: "The server had an error"},
		{name: "error with numeric code", data: `{"id":"x","error":{"code":502,"message":"provider down"},"choices":[{"index":0,"delta":{"content":""},"finish_reason":"error"}]}`, errMsg: "provider down", errCode: "502"},
		{name: "error string", data: `{"error":"boom"}`, errMsg: "boom"},
		{name: "error null", data: `{"error":null,"choices":[{"index":0,"delta":{"content":"x"}}]}`, text: "x"},
		{name: "vllm error", data: `{"object":"error","message":"too long","type":"BadRequestError","param":null,"code":400}`, errMsg: "too long"},
		{name: "not json", data: `{not json`, bad: true},
		{name: "content not a string", data: `{"choices":[{"index":0,"delta":{"content":12}}]}`, bad: true},
	}
	var c chunk // reused, as Stream does, so leaks between chunks would show
	for _, tt := range tests {
		p, err := parseChunk([]byte(tt.data), &c)
		if tt.bad {
			if err == nil {
				t.Errorf("%s: no error", tt.name)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if p.text != tt.text || p.thinking != tt.thinking || p.finishReason != tt.fin {
			t.Errorf("%s: text %q thinking %q finish %q", tt.name, p.text, p.thinking, p.finishReason)
		}
		if (p.usage == nil) != (tt.usage == nil) || p.usage != nil && *p.usage != *tt.usage {
			t.Errorf("%s: usage %+v, want %+v", tt.name, p.usage, tt.usage)
		}
		switch {
		case tt.errMsg == "" && p.err != nil:
			t.Errorf("%s: unexpected error object %+v", tt.name, p.err)
		case tt.errMsg != "" && (p.err == nil || p.err.Message != tt.errMsg || p.err.code() != tt.errCode):
			t.Errorf("%s: error object %+v, want message %q code %q", tt.name, p.err, tt.errMsg, tt.errCode)
		}
	}
}
