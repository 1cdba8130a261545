package llm

import "unicode/utf8"

// MessageOverheadTokens is what EstimateMessages adds per message for the
// chat template's role markers and separators.
const MessageOverheadTokens = 4

// EstimateTokens is a conservative (high) estimate of how many tokens s
// takes in a typical BPE vocabulary, without the model's tokenizer: one
// token per 3 ASCII bytes (English text runs near 4 bytes a token, code
// near 3) and one per other character (CJK runs near one a character;
// most accented letters share tokens with their neighbours).
func EstimateTokens(s string) int {
	ascii, other := 0, 0
	for i := 0; i < len(s); {
		if s[i] < utf8.RuneSelf {
			ascii++
			i++
			continue
		}
		_, size := utf8.DecodeRuneInString(s[i:])
		other++
		i += size
	}
	return (ascii+2)/3 + other
}

// EstimateMessage is EstimateTokens of m's content plus the per-message
// overhead.
func EstimateMessage(m Message) int {
	return EstimateTokens(m.Content) + MessageOverheadTokens
}

// ReplyReserve is how many tokens of a window of n to leave for the reply
// when trimming history to fit: a quarter, at least 256 and at most 2048
// (and never more than half the window).
func ReplyReserve(n int) int {
	r := min(max(n/4, 256), 2048)
	return min(r, n/2)
}
