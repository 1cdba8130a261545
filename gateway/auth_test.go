package gateway_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/parleyhq/parley/gateway"
	"github.com/parleyhq/parley/internal/testkit"
)

const (
	aliceKey = "alice-key-0123456789abcdef"
	bobKey   = "bob-key-0123456789abcdef00"
)

var jwtSecret = []byte("a-secret-of-at-least-32-bytes-long!!")

func authStack(t *testing.T) *stack {
	return newStack(t, stackOpts{auth: gateway.AuthConfig{
		Required:  true,
		APIKeys:   map[string]string{aliceKey: "alice", bobKey: "bob"},
		JWTSecret: jwtSecret,
	}})
}

func signJWT(t *testing.T, secret []byte, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestAuthRequired refuses requests without a valid token.
func TestAuthRequired(t *testing.T) {
	t.Parallel()
	s := authStack(t)
	expired := signJWT(t, jwtSecret, jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(-time.Hour).Unix()})
	forged := signJWT(t, []byte("another-secret-of-at-least-32-bytes"), jwt.MapClaims{"sub": "alice"})
	noSub := signJWT(t, jwtSecret, jwt.MapClaims{"name": "x"})
	for _, tok := range []string{"", "wrong-key", expired, forged, noSub} {
		status, body := s.do("GET", "/v1/sessions", tok, nil)
		if status != 401 || !strings.Contains(string(body), "unauthorized") {
			t.Errorf("token %q: %d %s", tok, status, body)
		}
		var h http.Header
		if tok != "" {
			h = http.Header{"Authorization": {"Bearer " + tok}}
		}
		c, resp, err := testkit.TryDialWS(s.wsURL(), h)
		if err == nil {
			c.Close()
			t.Errorf("token %q: WebSocket accepted", tok)
		} else if resp == nil || resp.StatusCode != 401 {
			t.Errorf("token %q: WebSocket refused with %v", tok, resp)
		}
	}
	// Health checks need no token.
	if status, _ := s.do("GET", "/healthz", "", nil); status != 200 {
		t.Errorf("healthz: %d", status)
	}
	// Valid: an API key, a JWT, and the query parameter on the WebSocket.
	if status, body := s.do("GET", "/v1/sessions", aliceKey, nil); status != 200 {
		t.Errorf("api key: %d %s", status, body)
	}
	good := signJWT(t, jwtSecret, jwt.MapClaims{"sub": "carol", "exp": time.Now().Add(time.Hour).Unix()})
	if status, body := s.do("POST", "/v1/sessions", good, nil); status != 201 || !strings.Contains(string(body), `"id"`) {
		t.Errorf("jwt: %d %s", status, body)
	}
	c := testkit.DialWS(t, s.wsURL()+"?access_token="+good, nil)
	create(t, c, nil)
}

// TestOtherUsersSession shows that a session is neither readable nor
// writable by another user, over the WebSocket and HTTP.
func TestOtherUsersSession(t *testing.T) {
	t.Parallel()
	s := authStack(t)
	alice := s.dial(aliceKey)
	id := create(t, alice, map[string]any{"title": "secret"})
	bob := s.dial(bobKey)
	for _, cmd := range []map[string]any{
		{"type": "attach", "session": id},
		{"type": "send", "session": id, "content": "hi"},
		{"type": "stop", "session": id},
		{"type": "regenerate", "session": id},
	} {
		r, before := bob.Reply(bob.Command(cmd))
		if r.Type != "error" || r.Code != "forbidden" || len(before) != 0 {
			t.Errorf("bob %s: %s (after %d frames)", cmd["type"], r.Raw, len(before))
		}
	}
	for _, req := range []struct{ method, path string }{
		{"GET", "/v1/sessions/" + id},
		{"POST", "/v1/sessions/" + id + "/messages"},
		{"POST", "/v1/sessions/" + id + "/stop"},
	} {
		status, body := s.do(req.method, req.path, bobKey, map[string]any{"content": "x"})
		if status != 403 || strings.Contains(string(body), "secret") {
			t.Errorf("bob %s %s: %d %s", req.method, req.path, status, body)
		}
	}
	_, body := s.do("GET", "/v1/sessions", bobKey, nil)
	if strings.Contains(string(body), id) {
		t.Errorf("bob's list shows alice's session: %s", body)
	}
	_, body = s.do("GET", "/v1/sessions", aliceKey, nil)
	if !strings.Contains(string(body), id) {
		t.Errorf("alice's list lacks her session: %s", body)
	}
	// Nothing of bob's attempts reached the log.
	_, body = s.do("GET", "/v1/sessions/"+id, aliceKey, nil)
	if jsonField(t, body, "last_seq") != "1" {
		t.Errorf("alice's session changed: %s", body)
	}
}
