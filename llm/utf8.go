package llm

import "unicode/utf8"

// UTF8Carry reassembles text streamed in pieces that may split a UTF-8
// sequence. Push returns the longest prefix that ends on a character
// boundary and keeps the incomplete tail for the next call. The zero value
// is ready to use; it is not safe for concurrent use.
type UTF8Carry struct {
	tail []byte
}

// Push appends s to the carried tail and returns the complete part.
func (c *UTF8Carry) Push(s string) string {
	if len(c.tail) > 0 {
		s = string(c.tail) + s
		c.tail = c.tail[:0]
	}
	cut := incompleteTail(s)
	if cut == 0 {
		return s
	}
	c.tail = append(c.tail, s[len(s)-cut:]...)
	return s[:len(s)-cut]
}

// Flush returns whatever is still carried (an incomplete sequence at the end
// of the stream) and resets the carry.
func (c *UTF8Carry) Flush() string {
	s := string(c.tail)
	c.tail = c.tail[:0]
	return s
}

// incompleteTail returns how many bytes at the end of s form the start of a
// UTF-8 sequence that is not complete yet.
func incompleteTail(s string) int {
	// A sequence is at most 4 bytes: look back at most 3 for its lead byte.
	for i := 1; i <= 3 && i <= len(s); i++ {
		b := s[len(s)-i]
		if b < 0x80 {
			return 0 // ASCII: nothing pending
		}
		if b >= 0xC0 { // lead byte
			need := 2
			switch {
			case b >= 0xF0:
				need = 4
			case b >= 0xE0:
				need = 3
			}
			if i < need && !utf8.FullRuneInString(s[len(s)-i:]) {
				return i
			}
			return 0
		}
	}
	return 0
}

// Truncate cuts s to at most n bytes, on a character boundary.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
