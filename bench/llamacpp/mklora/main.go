// Command mklora writes a random rank-r LoRA adapter (q_proj and v_proj of
// every layer) in llama.cpp's GGUF adapter format for a base GGUF model,
// so that llama.cpp and Switchyard can be benchmarked with adapters of the
// same shape. The weights are small random values: only speed matters.
//
//	go run ./bench/llamacpp/mklora --model base.gguf --rank 8 --out lora.gguf
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"

	"github.com/switchyard-ai/switchyard/formats/gguf"
	"github.com/switchyard-ai/switchyard/kernels"
	"github.com/switchyard-ai/switchyard/lora"
	"github.com/switchyard-ai/switchyard/model"
)

func main() {
	modelPath := flag.String("model", "", "base model GGUF file")
	rank := flag.Int("rank", 8, "adapter rank")
	out := flag.String("out", "", "adapter GGUF file to write")
	seed := flag.Uint64("seed", 1, "random seed")
	flag.Parse()
	if *modelPath == "" || *out == "" || *rank < 1 {
		fmt.Fprintln(os.Stderr, "usage: mklora --model base.gguf --out lora.gguf [--rank 8] [--seed 1]")
		os.Exit(2)
	}
	if err := run(*modelPath, *out, *rank, *seed); err != nil {
		fmt.Fprintln(os.Stderr, "mklora:", err)
		os.Exit(1)
	}
}

func run(modelPath, out string, rank int, seed uint64) error {
	pool := kernels.NewPool(1)
	defer pool.Close()
	m, err := model.Load(modelPath, pool)
	if err != nil {
		return err
	}
	cfg := m.Config
	m.Close()

	rng := rand.New(rand.NewPCG(seed, 0x1a))
	f32 := func(n int) []byte {
		b := make([]byte, 0, 4*n)
		for range n {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(rng.NormFloat64()*0.02)))
		}
		return b
	}
	w := gguf.NewWriter()
	w.AddString("general.architecture", "llama")
	w.AddString("general.type", "adapter")
	w.AddString("adapter.type", "lora")
	w.AddFloat32("adapter.lora.alpha", float32(2*rank)) // scale 2, as lora.Random
	for l := range cfg.Layers {
		for _, mod := range []model.Module{model.ModQ, model.ModV} {
			in, outDim := cfg.InDim(mod), cfg.OutDim(mod)
			name := fmt.Sprintf("blk.%d.%s.weight", l, mod.GGUFName())
			if err := w.AddTensor(name+".lora_a", kernels.F32, []int{rank, in}, f32(rank*in)); err != nil {
				return err
			}
			if err := w.AddTensor(name+".lora_b", kernels.F32, []int{outDim, rank}, f32(outDim*rank)); err != nil {
				return err
			}
		}
	}
	if err := w.WriteFile(out); err != nil {
		return err
	}
	// Check that Switchyard reads the file back for this base model.
	_, err = lora.LoadGGUF(out, &cfg)
	return err
}
