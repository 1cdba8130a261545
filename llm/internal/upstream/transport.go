package upstream

import (
	"net"
	"net/http"
	"time"
)

// NewTransport returns the transport a provider's http.Client uses. It
// dials with connectTimeout (also the TLS handshake bound), ignores proxy
// environment variables (the model server is a direct peer, and only the
// config package reads the environment), keeps enough idle connections for
// many concurrent generations, and never asks for compression (model
// servers stream uncompressed; asking for gzip only lets a proxy in between
// buffer the stream). It speaks HTTP/1.1 (a custom dialer turns off
// HTTP/2): one connection per running stream, so cancelling a request
// closes its connection and the server sees the client go at once.
//
// The client built on it must have no Timeout: that would cut long
// streams. Streams are bounded by a Watchdog and a total-timeout context
// instead.
func NewTransport(connectTimeout time.Duration) *http.Transport {
	dialer := &net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   connectTimeout,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
	}
}
