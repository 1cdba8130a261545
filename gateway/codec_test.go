package gateway

import (
	"testing"

	"github.com/parleyhq/parley/actors"
)

func TestDecodeCommand(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in       string
		wantType string
		wantCode string
	}{
		{`{"type":"ping"}`, "ping", ""},
		{`{"type":"send","session":"Qk3ZCgAAAAAAAAAAAAAAAA","content":"hi","client_msg_id":"c","expect_seq":4,"extra":true}`, "send", ""},
		{`{"type":"attach","session":"Qk3ZCgAAAAAAAAAAAAAAAA","after":"4:10"}`, "attach", ""},
		{`{"type":"attach","session":"s"}`, "", actors.CodeNotFound},
		{`{"type":"send","session":">","content":"x"}`, "", actors.CodeNotFound},
		{`  {"type":"create","model":"m"}  `, "create", ""},
		{``, "", actors.CodeBadRequest},
		{`null`, "", actors.CodeBadRequest},
		{`"ping"`, "", actors.CodeBadRequest},
		{`{"type":"send","session":"s","content":"x"}x`, "send", actors.CodeBadRequest},
		{`{"type":"send","session":"s","expect_seq":-1,"content":"x"}`, "", actors.CodeBadRequest},
	}
	for _, tt := range tests {
		cmd, e := decodeCommand([]byte(tt.in))
		code := ""
		if e != nil {
			code = e.Code
		}
		if code != tt.wantCode || (e == nil && cmd.Type != tt.wantType) {
			t.Errorf("%s: type %q, error %v", tt.in, cmd.Type, e)
		}
	}
}

// FuzzDecodeCommand: any input is either a valid command or a coded
// bad_request/too_large/not_found error, never a panic.
func FuzzDecodeCommand(f *testing.F) {
	for _, s := range []string{`{"type":"ping"}`, `{"type":"send","session":"s","content":"x"}`, `{"id":1}`, `[`, `{"type":"attach","after":"1:2"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cmd, e := decodeCommand(data)
		if cmd == nil {
			t.Fatal("nil command")
		}
		if e != nil {
			if e.Code != actors.CodeBadRequest && e.Code != actors.CodeTooLarge && e.Code != actors.CodeNotFound {
				t.Fatalf("code %s", e.Code)
			}
			return
		}
		if err := cmd.Validate(); err != nil {
			t.Fatalf("accepted an invalid command: %v", err)
		}
	})
}
