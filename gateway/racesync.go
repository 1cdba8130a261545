package gateway

import (
	"net"
	"sync"

	"github.com/lesismal/nbio"
	"github.com/lesismal/nbio/nbhttp"
)

// nbio hands a new connection from its accept goroutine to a poller
// goroutine through epoll: a real ordering, but one the race detector
// cannot see, so it reports the poller's first read of the connection's
// fields (nbhttp.Conn.Conn, the remote TCPAddr) as a race with the
// accept goroutine's writes. In race builds only, a lock taken after the
// accept goroutine's writes (in the open callback) and before the
// poller's reads (around the data callback) makes that ordering visible.
// Normal builds do nothing here.
var acceptOrder sync.RWMutex

func syncAcceptForRace(e *nbhttp.Engine) {
	if !raceEnabled {
		return
	}
	e.OnOpen(func(net.Conn) {
		acceptOrder.Lock()
		acceptOrder.Unlock() //nolint:staticcheck // an ordering point, not a critical section
	})
	e.Engine.OnData(func(c *nbio.Conn, data []byte) {
		acceptOrder.RLock()
		acceptOrder.RUnlock() //nolint:staticcheck
		c.DataHandler()(c, data)
	})
}
