package actors

import (
	"fmt"
	"strconv"
	"strings"
)

// Cursor is a client's position in a session: every event up to Seq, and
// of the generation running at that point its first Offset bytes
// (PROTOCOL.md "Cursors and resume").
type Cursor struct {
	Seq    uint64
	Offset int
}

// String formats the cursor as "<seq>" or "<seq>:<offset>".
func (c Cursor) String() string {
	if c.Offset > 0 {
		return strconv.FormatUint(c.Seq, 10) + ":" + strconv.Itoa(c.Offset)
	}
	return strconv.FormatUint(c.Seq, 10)
}

// ParseCursor parses "<seq>" or "<seq>:<offset>". The empty string is the
// zero cursor (everything).
func ParseCursor(s string) (Cursor, error) {
	if s == "" {
		return Cursor{}, nil
	}
	seqPart, offPart, hasOff := strings.Cut(s, ":")
	seq, err := strconv.ParseUint(seqPart, 10, 64)
	if err != nil {
		return Cursor{}, fmt.Errorf("cursor %q: bad seq", s)
	}
	c := Cursor{Seq: seq}
	if hasOff {
		off, err := strconv.Atoi(offPart)
		if err != nil || off < 0 {
			return Cursor{}, fmt.Errorf("cursor %q: bad offset", s)
		}
		c.Offset = off
	}
	return c, nil
}
