package sim

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/parleyhq/parley/llm"
)

// The reply is word-like text: sentences of words from a fixed vocabulary,
// each word one token, with punctuation and paragraph breaks as tokens of
// their own, as real tokenizers do. Some words hold multi-byte UTF-8 (2, 3
// and 4 bytes) so that clients meet it; a stream sometimes splits one of
// them across two deltas (see splitter).

// words are the vocabulary. About one in six has a multi-byte character.
var words = [...]string{
	"stream", "token", "model", "reply", "session", "quiet", "river",
	"signal", "latency", "buffer", "garden", "orbit", "lantern", "copper",
	"harbor", "window", "simple", "steady", "gentle", "bright", "measure",
	"pattern", "thread", "actor", "event", "replay", "cursor", "socket",
	"paper", "maple", "cloud", "north", "little", "every", "across",
	"between", "under", "without", "winter", "silver", "engine", "answer",
	"question", "morning", "distant", "careful", "ledger", "compass",
	"café", "naïve", "déjà", "façade", "über", "→", "≈", "日本語", "🙂",
	"🚀", "Ærø", "señor", "crème",
}

// glue are short function words, drawn more often than the vocabulary.
var glue = [...]string{
	"the", "a", "of", "and", "to", "in", "is", "it", "that", "with",
	"for", "on", "as", "at", "by", "we",
}

// Word tokens with a leading space, lower and capitalized; the form
// without the space is a substring ([1:]), so emitting a word never
// allocates.
var (
	spaced    []string // " word"
	spacedCap []string // " Word"
)

func init() {
	all := make([]string, 0, len(words)+len(glue))
	all = append(all, words[:]...)
	all = append(all, glue[:]...)
	spaced = make([]string, len(all))
	spacedCap = make([]string, len(all))
	for i, w := range all {
		spaced[i] = " " + w
		r, size := utf8.DecodeRuneInString(w)
		spacedCap[i] = " " + string(unicode.ToUpper(r)) + w[size:]
	}
}

const (
	paragraphBreak = "\n\n"
	minSentence    = 5  // words
	maxSentence    = 16 // words
	minParagraph   = 2  // sentences
	maxParagraph   = 5  // sentences
)

// textGen produces one reply's tokens from its seed. It is the whole
// source of the reply text: the same seed gives the same tokens.
type textGen struct {
	r             rng
	wordsLeft     int  // words left in the current sentence
	sentencesLeft int  // sentences left in the current paragraph, after this one
	sentenceStart bool // the next word is capitalized
	noSpace       bool // the next word has no leading space
	comma         bool // a comma is due after this word
	endDue        bool // the sentence is over: end punctuation is next
	breakDue      bool // the paragraph is over: a break is next
	prev          kind // what the previous token was
}

// kind is what a token is, for ending a reply cleanly.
type kind uint8

const (
	kindNone kind = iota // nothing yet
	kindWord
	kindComma
	kindEnd   // . ? !
	kindBreak // paragraph break
)

func newTextGen(seed uint64) textGen {
	g := textGen{r: rng{seed}, sentenceStart: true, noSpace: true}
	g.sentencesLeft = g.r.between(minParagraph, maxParagraph) - 1
	g.wordsLeft = g.r.between(minSentence, maxSentence)
	return g
}

// next returns the next token. last says it is the final token of a
// reply that ends with "stop": it closes the reply cleanly instead, so
// that a completed reply never stops mid-sentence, while a shorter one
// stays a prefix of it.
func (g *textGen) next(last bool) string {
	if last {
		switch g.prev {
		case kindWord:
			return "."
		case kindComma:
			return " etc."
		case kindEnd:
			return " 🙂"
		default:
			return "🙂"
		}
	}
	switch {
	case g.endDue:
		g.endDue, g.prev = false, kindEnd
		g.sentenceStart = true
		g.wordsLeft = g.r.between(minSentence, maxSentence)
		if g.sentencesLeft == 0 {
			g.breakDue = true
			g.sentencesLeft = g.r.between(minParagraph, maxParagraph) - 1
		} else {
			g.sentencesLeft--
		}
		switch g.r.intn(10) {
		case 0:
			return "?"
		case 1:
			return "!"
		}
		return "."
	case g.breakDue:
		g.breakDue, g.prev = false, kindBreak
		g.noSpace = true
		return paragraphBreak
	case g.comma:
		g.comma, g.prev = false, kindComma
		return ","
	}
	var i int
	if g.r.intn(3) == 0 {
		i = len(words) + g.r.intn(len(glue))
	} else {
		i = g.r.intn(len(words))
	}
	tok := spaced[i]
	if g.sentenceStart {
		tok = spacedCap[i]
	}
	if g.noSpace {
		tok = tok[1:]
	}
	g.sentenceStart, g.noSpace, g.prev = false, false, kindWord
	g.wordsLeft--
	switch {
	case g.wordsLeft == 0:
		g.endDue = true
	case g.wordsLeft > 2 && g.r.intn(8) == 0:
		g.comma = true
	}
	return tok
}

// splitter decides, from its own random sequence (so that splitting does
// not change the text), where a token with multi-byte characters is cut
// across two deltas: about half of them are, inside one of their
// characters, as an upstream that splits a byte stream does.
type splitter struct{ r rng }

// cut returns the byte offset inside tok where its delta ends and the
// next one begins, or 0 to send tok whole.
func (s *splitter) cut(tok string) int {
	if tok == "" || isASCII(tok) || s.r.intn(2) == 0 {
		return 0
	}
	var inside [16]int
	n := 0
	for i := 1; i < len(tok) && n < len(inside); i++ {
		if !utf8.RuneStart(tok[i]) {
			inside[n] = i
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return inside[s.r.intn(n)]
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// rng is splitmix64: tiny, fast, and good enough for text.
type rng struct{ s uint64 }

func (r *rng) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	return mix64(r.s)
}

// intn returns a number in [0, n); n must be positive. The modulo bias is
// irrelevant here.
func (r *rng) intn(n int) int { return int(r.next() % uint64(n)) }

// between returns a number in [lo, hi].
func (r *rng) between(lo, hi int) int { return lo + r.intn(hi-lo+1) }

// mix64 is splitmix64's finalizer, a good 64-bit hash of x.
func mix64(x uint64) uint64 {
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// unitFloat maps x to [0, 1).
func unitFloat(x uint64) float64 { return float64(x>>11) / (1 << 53) }

// seedOf hashes what makes a request (its model and messages, not
// MaxTokens) with FNV-1a, so the same request always gets the same reply
// and a different prompt a different one. Model names compare as
// llm.SameModel does ("x" is "x:latest"), so both spellings agree.
func seedOf(req *llm.Request) uint64 {
	const (
		offset = 14695981039346656037
		prime  = 1099511628211
	)
	h := uint64(offset)
	add := func(s string) {
		for i := 0; i < len(s); i++ {
			h ^= uint64(s[i])
			h *= prime
		}
		h ^= 0xff // a separator no UTF-8 text contains
		h *= prime
	}
	model := strings.ToLower(req.Model)
	if !strings.Contains(model, ":") {
		model += ":latest"
	}
	add(model)
	for _, m := range req.Messages {
		add(m.Role)
		add(m.Content)
	}
	return h
}

// promptTokens estimates the prompt's size in tokens the way OpenAI's
// rule of thumb does: about four characters per token, plus a few per
// message for the chat template.
func promptTokens(msgs []llm.Message) int {
	n := 3
	for _, m := range msgs {
		n += 4 + (utf8.RuneCountInString(m.Content)+3)/4
	}
	return n
}
