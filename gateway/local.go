package gateway

import (
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/parleyhq/parley/actors"
)

// localOnly guards a server that runs without auth (PARLEY_AUTH=none,
// loopback only), where every request is the same user and nothing but
// the network stands in the way:
//
//   - the Host header must name the loopback interface, so that a web page
//     cannot reach the server through a DNS name rebound to 127.0.0.1 and
//     read every chat;
//   - a request a web page can send across sites (a WebSocket handshake,
//     or anything but GET and HEAD) must come from a loopback Origin, or
//     from no browser at all (no Origin header), so that any page the user
//     opens cannot drive the local model.
//
// With token auth none of this applies: tokens, not cookies or addresses,
// say who is asking.
func localOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isLoopbackHost(r.Host) {
			writeError(w, &actors.Error{Code: actors.CodeForbidden,
				Message: "without auth this server answers only to loopback host names (localhost, 127.0.0.1, [::1]); set PARLEY_AUTH=token to serve others"})
			return
		}
		crossSiteable := r.Method != http.MethodGet && r.Method != http.MethodHead ||
			strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
		if origin := r.Header.Get("Origin"); crossSiteable && origin != "" && !isLoopbackOrigin(origin) {
			writeError(w, &actors.Error{Code: actors.CodeForbidden,
				Message: "without auth this server takes requests only from pages on a loopback origin"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// isLoopbackHost reports whether a Host header (host or host:port) names
// the loopback interface.
func isLoopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// isLoopbackOrigin reports whether an Origin header is a page served from
// a loopback host ("null", a sandboxed or file page, is not).
func isLoopbackOrigin(origin string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	return isLoopbackHost(u.Host)
}
