package loadgen

import "sync"

// A dialling goroutine fills a connection's fields and then hands it to a
// poller goroutine through epoll: a real ordering the race detector cannot
// see. In race builds a lock taken before AddConn and around every data
// callback makes it visible (as gateway/racesync.go does for the server);
// normal builds skip it.
var handoff sync.RWMutex

func raceHandoff() {
	if raceEnabled {
		handoff.Lock()
		handoff.Unlock() //nolint:staticcheck // an ordering point, not a critical section
	}
}

func raceHandoffRead() {
	if raceEnabled {
		handoff.RLock()
		handoff.RUnlock() //nolint:staticcheck
	}
}
