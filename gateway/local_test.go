package gateway_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestLocalOnlyWithoutAuth checks the guards of a server without auth:
// a Host that is not loopback (DNS rebinding) and a cross-site Origin on
// a WebSocket handshake or a POST are refused with 403; loopback names,
// same-origin pages and non-browser clients (no Origin) are served.
func TestLocalOnlyWithoutAuth(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{})
	port := s.base[strings.LastIndexByte(s.base, ':'):]
	ws := map[string]string{"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
	tests := []struct {
		name, method, path, host string
		header                   map[string]string
		want                     int
	}{
		{"loopback ip", "GET", "/v1/sessions", "127.0.0.1" + port, nil, 200},
		{"localhost", "GET", "/v1/sessions", "localhost" + port, nil, 200},
		{"ipv6 loopback", "GET", "/v1/sessions", "[::1]" + port, nil, 200},
		{"rebound dns name", "GET", "/v1/sessions", "evil.example" + port, nil, 403},
		{"rebound dns name, index", "GET", "/", "evil.example", nil, 403},
		{"cross-site post", "POST", "/v1/sessions", "127.0.0.1" + port, map[string]string{"Origin": "http://evil.example", "Content-Type": "text/plain"}, 403},
		{"null origin post", "POST", "/v1/sessions", "127.0.0.1" + port, map[string]string{"Origin": "null"}, 403},
		{"same-origin post", "POST", "/v1/sessions", "127.0.0.1" + port, map[string]string{"Origin": "http://127.0.0.1" + port}, 201},
		{"post without origin (curl)", "POST", "/v1/sessions", "127.0.0.1" + port, nil, 201},
		{"cross-site websocket", "GET", "/v1/ws", "127.0.0.1" + port, merge(ws, map[string]string{"Origin": "http://evil.example"}), 403},
		{"localhost websocket", "GET", "/v1/ws", "127.0.0.1" + port, merge(ws, map[string]string{"Origin": "http://localhost:3000"}), 101},
		{"cross-site get (unreadable without CORS)", "GET", "/healthz", "127.0.0.1" + port, map[string]string{"Origin": "http://evil.example"}, 200},
	}
	for _, tt := range tests {
		req, err := http.NewRequest(tt.method, s.base+tt.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = tt.host
		for k, v := range tt.header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("%s: %d, want %d", tt.name, resp.StatusCode, tt.want)
		}
	}
}

func merge(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}
