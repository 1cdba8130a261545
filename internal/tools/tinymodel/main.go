// Command tinymodel writes a tiny, deterministic, random-weight
// llama-architecture GGUF model (about 470 KB) that a real Ollama can load
// and generate from at well over 1,000 tokens/s on one CPU core.
//
// It exists so end-to-end tests can talk to a real Ollama server without
// downloading a model: scripts/ollama-test-env.sh runs it, then
// `ollama create`s the models "tiny" and "tiny-long" from its output.
//
// The model has 2 blocks, embedding size 64, 4 heads, a GPT-2 byte-level
// BPE vocabulary (the 256 byte symbols plus a BOS and an EOS token, one
// merge) and F32 tensors: norms are all ones, every other weight is small
// normal noise from a fixed seed, so the file is byte-for-byte the same on
// every run. Its replies are random bytes (control characters, split UTF-8
// sequences and all), which is exactly the hostile input a gateway must
// carry intact.
//
// Usage:
//
//	go run ./internal/tools/tinymodel -o tiny.gguf
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"

	"github.com/ollama/ollama/fs/ggml"
)

const (
	contextLength = 2048
	embedding     = 64
	blocks        = 2
	feedForward   = 128
	heads         = 4
	headsKV       = 4
	ropeDims      = 16

	noiseStd = 0.02
	seed1    = 0x7061726c6579 // "parley"
	seed2    = 0x74696e79     // "tiny"
)

func main() {
	out := flag.String("o", "tiny.gguf", "path of the GGUF file to write")
	flag.Parse()
	if flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: tinymodel [-o path]")
		os.Exit(2)
	}
	if err := write(*out); err != nil {
		fmt.Fprintln(os.Stderr, "tinymodel:", err)
		os.Exit(1)
	}
}

func write(path string) error {
	kv, tensors := build()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := ggml.WriteGGUF(f, kv, tensors); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}

// build returns the model's metadata and tensors.
func build() (ggml.KV, []*ggml.Tensor) {
	tokens, types := vocabulary()
	bos, eos := uint32(len(tokens)-2), uint32(len(tokens)-1)
	vocab := uint64(len(tokens))

	kv := ggml.KV{
		"general.architecture": "llama",
		"general.name":         "parley-tiny",
		"general.file_type":    uint32(ggml.FileTypeF32),
		"general.alignment":    uint32(32),

		"llama.context_length":                   uint32(contextLength),
		"llama.embedding_length":                 uint32(embedding),
		"llama.block_count":                      uint32(blocks),
		"llama.feed_forward_length":              uint32(feedForward),
		"llama.attention.head_count":             uint32(heads),
		"llama.attention.head_count_kv":          uint32(headsKV),
		"llama.attention.layer_norm_rms_epsilon": float32(1e-5),
		"llama.rope.dimension_count":             uint32(ropeDims),
		"llama.rope.freq_base":                   float32(10000),
		"llama.vocab_size":                       uint32(vocab),

		"tokenizer.ggml.model":         "gpt2",
		"tokenizer.ggml.pre":           "default",
		"tokenizer.ggml.tokens":        tokens,
		"tokenizer.ggml.token_type":    types,
		"tokenizer.ggml.merges":        []string{"Ġ t"},
		"tokenizer.ggml.bos_token_id":  bos,
		"tokenizer.ggml.eos_token_id":  eos,
		"tokenizer.ggml.add_bos_token": false,
		"tokenizer.ggml.add_eos_token": false,
	}

	rng := rand.New(rand.NewPCG(seed1, seed2))
	noise := func(name string, shape ...uint64) *ggml.Tensor {
		return tensor(name, shape, func() float32 { return float32(rng.NormFloat64() * noiseStd) })
	}
	ones := func(name string, shape ...uint64) *ggml.Tensor {
		return tensor(name, shape, func() float32 { return 1 })
	}

	// GGUF shapes are [in, out]. Tensors are generated in this fixed order,
	// so the noise (and the file) is deterministic.
	ts := []*ggml.Tensor{
		noise("token_embd.weight", embedding, vocab),
		ones("output_norm.weight", embedding),
		noise("output.weight", embedding, vocab),
	}
	for i := range blocks {
		p := fmt.Sprintf("blk.%d.", i)
		ts = append(ts,
			ones(p+"attn_norm.weight", embedding),
			noise(p+"attn_q.weight", embedding, embedding),
			noise(p+"attn_k.weight", embedding, embedding),
			noise(p+"attn_v.weight", embedding, embedding),
			noise(p+"attn_output.weight", embedding, embedding),
			ones(p+"ffn_norm.weight", embedding),
			noise(p+"ffn_gate.weight", embedding, feedForward),
			noise(p+"ffn_up.weight", embedding, feedForward),
			noise(p+"ffn_down.weight", feedForward, embedding),
		)
	}
	return kv, ts
}

// vocabulary returns the GPT-2 byte-level symbols for bytes 0..255 (token id
// = byte value, token type 1 "normal"), then BOS and EOS (token type 3
// "control").
func vocabulary() ([]string, []int32) {
	tokens := make([]string, 0, 258)
	types := make([]int32, 0, 258)
	for _, r := range byteSymbols() {
		tokens = append(tokens, string(r))
		types = append(types, 1)
	}
	tokens = append(tokens, "<|begin_of_text|>", "<|end_of_text|>")
	types = append(types, 3, 3)
	return tokens, types
}

// byteSymbols is GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for
// themselves, the rest map to U+0100 onwards in byte order.
func byteSymbols() [256]rune {
	var syms [256]rune
	n := 0
	for b := range 256 {
		if ('!' <= b && b <= '~') || ('¡' <= b && b <= '¬') || ('®' <= b && b <= 'ÿ') {
			syms[b] = rune(b)
		} else {
			syms[b] = rune(256 + n)
			n++
		}
	}
	return syms
}

// f32 is the F32 tensor data, written little-endian.
type f32 []float32

func (d f32) WriteTo(w io.Writer) (int64, error) {
	if err := binary.Write(w, binary.LittleEndian, []float32(d)); err != nil {
		return 0, err
	}
	return int64(len(d)) * 4, nil
}

func tensor(name string, shape []uint64, gen func() float32) *ggml.Tensor {
	n := uint64(1)
	for _, s := range shape {
		n *= s
	}
	data := make(f32, n)
	for i := range data {
		data[i] = gen()
	}
	return &ggml.Tensor{
		Name:     name,
		Kind:     uint32(ggml.TensorTypeF32),
		Shape:    shape,
		WriterTo: data,
	}
}
