package gateway

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"

	"github.com/parleyhq/parley/actors"
)

// LocalUser is the user of every request when auth is off.
const LocalUser = "local"

// AuthConfig says how clients prove who they are (PROTOCOL.md section 2).
type AuthConfig struct {
	// Required turns auth on. Zero value means every request is LocalUser
	// (the loopback-only "none" mode; config refuses it elsewhere).
	Required bool
	// APIKeys maps static API keys to user ids.
	APIKeys map[string]string
	// JWTSecret verifies HS256 JWTs whose "sub" is the user id. Zero
	// value means JWTs are not accepted.
	JWTSecret []byte
}

// authenticator resolves the user of a request.
type authenticator struct {
	cfg  AuthConfig
	keys [][2][]byte // key, user: compared in constant time
}

func newAuthenticator(cfg AuthConfig) *authenticator {
	a := &authenticator{cfg: cfg}
	for k, u := range cfg.APIKeys {
		a.keys = append(a.keys, [2][]byte{[]byte(k), []byte(u)})
	}
	return a
}

var (
	errNoToken  = &actors.Error{Code: actors.CodeUnauthorized, Message: "missing bearer token (Authorization header or access_token parameter)"}
	errBadToken = &actors.Error{Code: actors.CodeUnauthorized, Message: "invalid or expired token"}
)

// user returns the user id of r. allowQuery accepts ?access_token=, for
// the WebSocket and SSE, where browsers cannot set headers.
func (a *authenticator) user(r *http.Request, allowQuery bool) (string, *actors.Error) {
	if !a.cfg.Required {
		return LocalUser, nil
	}
	token := ""
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, rest, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return "", errBadToken
		}
		token = strings.TrimSpace(rest)
	} else if allowQuery {
		token = r.URL.Query().Get("access_token")
	}
	if token == "" {
		return "", errNoToken
	}
	if u, ok := a.apiKey(token); ok {
		return u, nil
	}
	if len(a.cfg.JWTSecret) > 0 {
		if u, err := a.jwtUser(token); err == nil {
			return u, nil
		}
	}
	return "", errBadToken
}

func (a *authenticator) apiKey(token string) (string, bool) {
	t := []byte(token)
	user, found := "", false
	for _, kv := range a.keys {
		if subtle.ConstantTimeCompare(kv[0], t) == 1 {
			user, found = string(kv[1]), true
		}
	}
	return user, found
}

func (a *authenticator) jwtUser(token string) (string, error) {
	tok, err := jwt.Parse(token, func(*jwt.Token) (any, error) { return a.cfg.JWTSecret, nil },
		jwt.WithValidMethods([]string{"HS256"}))
	if err != nil {
		return "", fmt.Errorf("gateway: jwt: %w", err)
	}
	sub, err := tok.Claims.GetSubject()
	if err != nil || sub == "" {
		return "", errors.New("gateway: jwt has no sub")
	}
	if !validUser(sub) {
		return "", errors.New("gateway: jwt sub is too long or has control characters")
	}
	return sub, nil
}

// MaxUserBytes bounds a user id: it is part of event-log keys.
const MaxUserBytes = 128

// validUser reports whether a user id is short enough and printable.
func validUser(u string) bool {
	if u == "" || len(u) > MaxUserBytes || !utf8.ValidString(u) {
		return false
	}
	for _, r := range u {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}
