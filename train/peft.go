package train

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/switchyard-ai/switchyard/formats/peft"
	"github.com/switchyard-ai/switchyard/formats/safetensors"
	"github.com/switchyard-ai/switchyard/internal/fsutil"
	"github.com/switchyard-ai/switchyard/kernels"
	"github.com/switchyard-ai/switchyard/lora"
	"github.com/switchyard-ai/switchyard/model"
)

// PEFT's file names in an adapter directory.
const (
	weightsFile   = "adapter_model.safetensors"
	optimizerFile = "optimizer.safetensors"
	stateFile     = "trainer_state.json"
)

// peftConfig returns the adapter_config.json of the job's adapter.
func (j *job) peftConfig(baseName string) *peft.Config {
	if j.opts.Init != nil && j.opts.Init.Config != nil {
		c := *j.opts.Init.Config
		c.LoraDropout = j.opts.Dropout
		if baseName != "" {
			c.BaseModel = baseName
		}
		return &c
	}
	return configFor(j.opts, baseName, nil)
}

// configFor builds a PEFT LoraConfig from training options. targets, when
// given, replaces opts.Targets (the projections an adapter really has).
func configFor(opts Options, baseName string, targets []model.Module) *peft.Config {
	opts.fill()
	c := &peft.Config{PeftType: "LORA", TaskType: "CAUSAL_LM", BaseModel: baseName, R: opts.Rank, LoraAlpha: opts.Alpha,
		UseRSLoRA: opts.RSLoRA, LoraDropout: opts.Dropout, Bias: "none"}
	if targets == nil {
		targets, _ = targetModules(opts.Targets)
	}
	for _, m := range targets {
		c.TargetModules = append(c.TargetModules, m.String())
	}
	slices.Sort(c.TargetModules)
	c.Extra = map[string]json.RawMessage{"init_lora_weights": json.RawMessage("true"), "inference_mode": json.RawMessage("true")}
	return c
}

// SavePEFT writes a as a PEFT adapter directory that PEFT and lora.Load
// read: adapter_config.json and adapter_model.safetensors with PEFT's key
// names (base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight
// ...), lora_A as [r, in] and lora_B as [out, r], in float32. The
// configuration is a.Config when set (Train sets it), else built from
// opts; baseName goes into base_model_name_or_path.
func SavePEFT(dir string, a *lora.Adapter, opts Options, baseName string) error {
	var conf *peft.Config
	if a.Config != nil {
		c := *a.Config
		if baseName != "" {
			c.BaseModel = baseName
		}
		conf = &c
	} else {
		conf = configFor(opts, baseName, a.Targets())
		conf.R = a.MaxRank
	}
	var tensors []safetensors.Tensor
	for l := range a.Layers {
		for mod := range model.NumModules {
			p := a.Pair(l, mod)
			if p == nil {
				continue
			}
			in, out := p.A.Cols, p.BT.Cols
			av := make([]float32, p.Rank*in)
			bt := make([]float32, out)
			bv := make([]float32, out*p.Rank)
			for k := range p.Rank {
				p.A.Row(k, av[k*in:(k+1)*in])
				p.BT.Row(k, bt)
				for o, v := range bt {
					bv[o*p.Rank+k] = v
				}
			}
			name := peftName(l, mod)
			tensors = append(tensors,
				safetensors.Tensor{Name: name + ".lora_A.weight", DType: kernels.F32, Shape: []int{p.Rank, in}, Data: kernels.F32Bytes(av)},
				safetensors.Tensor{Name: name + ".lora_B.weight", DType: kernels.F32, Shape: []int{out, p.Rank}, Data: kernels.F32Bytes(bv)})
		}
	}
	if len(tensors) == 0 {
		return errors.New("train: the adapter has no LoRA pairs")
	}
	return writeAdapter(dir, conf, tensors)
}

// writeAdapter writes a PEFT directory from its config and tensors.
func writeAdapter(dir string, conf *peft.Config, tensors []safetensors.Tensor) error {
	js, err := conf.Marshal()
	if err != nil {
		return fmt.Errorf("train: adapter config: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	if err := safetensors.WriteFile(filepath.Join(dir, weightsFile), tensors, map[string]string{"format": "pt"}); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(dir, peft.ConfigFile), func(w io.Writer) error {
		_, err := w.Write(js)
		return err
	}); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	return nil
}

// checkpointState is trainer_state.json of a checkpoint.
type checkpointState struct {
	Step   int    `json:"step"`
	Tokens int64  `json:"tokens"`
	Seed   uint64 `json:"seed"`
	Params int    `json:"params"`
}

// paramTensors returns the job's weights (or, with moments, the AdamW
// moments as name.exp_avg / name.exp_avg_sq) as safetensors tensors that
// alias the job's memory.
func (j *job) paramTensors(moments bool) []safetensors.Tensor {
	var ts []safetensors.Tensor
	for _, p := range j.ps.list {
		name := peftName(p.layer, p.mod)
		add := func(key string, shape []int, v []float32) {
			ts = append(ts, safetensors.Tensor{Name: key, DType: kernels.F32, Shape: shape, Data: kernels.F32Bytes(v)})
		}
		if moments {
			add(name+".lora_A.weight.exp_avg", []int{p.r, p.in}, p.ma)
			add(name+".lora_A.weight.exp_avg_sq", []int{p.r, p.in}, p.va)
			add(name+".lora_B.weight.exp_avg", []int{p.out, p.r}, p.mb)
			add(name+".lora_B.weight.exp_avg_sq", []int{p.out, p.r}, p.vb)
		} else {
			add(name+".lora_A.weight", []int{p.r, p.in}, p.a)
			add(name+".lora_B.weight", []int{p.out, p.r}, p.b)
		}
	}
	return ts
}

// saveCheckpoint writes root/checkpoint-NNNNNN: the adapter as a PEFT
// directory (servable as it is), the AdamW moments and the step. The
// directory is written under a temporary name and renamed into place, so
// a crash leaves either a complete checkpoint or none.
func (j *job) saveCheckpoint(root string) error {
	final := filepath.Join(root, fmt.Sprintf("checkpoint-%06d", j.step))
	tmp := final + ".tmp"
	os.RemoveAll(tmp)
	if err := writeAdapter(tmp, j.peftConfig(""), j.paramTensors(false)); err != nil {
		return err
	}
	if err := safetensors.WriteFile(filepath.Join(tmp, optimizerFile), j.paramTensors(true), nil); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	st, _ := json.Marshal(checkpointState{Step: j.step, Tokens: j.tokens, Seed: j.opts.Seed, Params: j.ps.count()})
	if err := os.WriteFile(filepath.Join(tmp, stateFile), st, 0o644); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	os.RemoveAll(final)
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	return nil
}

// loadCheckpoint restores the weights, moments and step of a checkpoint
// written by saveCheckpoint for a job with the same options.
func (j *job) loadCheckpoint(dir string) error {
	raw, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return fmt.Errorf("train: resume: %w", err)
	}
	var st checkpointState
	if err := json.Unmarshal(raw, &st); err != nil {
		return fmt.Errorf("train: resume: %s: %w", stateFile, err)
	}
	if st.Params != j.ps.count() {
		return fmt.Errorf("train: resume: checkpoint %s has %d parameters, these options make %d", dir, st.Params, j.ps.count())
	}
	for _, file := range []string{weightsFile, optimizerFile} {
		f, err := safetensors.Open(filepath.Join(dir, file))
		if err != nil {
			return fmt.Errorf("train: resume: %w", err)
		}
		for _, want := range j.paramTensors(file == optimizerFile) {
			t, err := f.Tensor(want.Name)
			if err != nil || t.DType != kernels.F32 || len(t.Data) != len(want.Data) {
				f.Close()
				return fmt.Errorf("train: resume: %s: tensor %s missing or of the wrong shape", file, want.Name)
			}
			copy(want.Data, t.Data) // want.Data aliases the job's parameters
		}
		f.Close()
	}
	j.step, j.tokens = st.Step, st.Tokens
	return nil
}
