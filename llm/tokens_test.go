package llm_test

import (
	"strings"
	"testing"

	"github.com/parleyhq/parley/llm"
)

func TestEstimateTokens(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want int
	}{
		{"", 0},
		{"a", 1},
		{"abc", 1},
		{"abcd", 2},
		{strings.Repeat("word ", 300), 500}, // 1500 bytes of English: real tokenizers give ~300
		{"日本語", 3},
		{"é", 1},
		{"\xff\xfe", 2}, // invalid bytes count one each
	}
	for _, tt := range tests {
		if got := llm.EstimateTokens(tt.in); got != tt.want {
			t.Errorf("EstimateTokens(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestReplyReserve(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ window, want int }{
		{100, 50}, {2048, 512}, {4096, 1024}, {128000, 2048},
	} {
		if got := llm.ReplyReserve(tt.window); got != tt.want {
			t.Errorf("ReplyReserve(%d) = %d, want %d", tt.window, got, tt.want)
		}
	}
}
