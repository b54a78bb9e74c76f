package lora_test

import (
	"testing"

	"github.com/switchyard-ai/switchyard/internal/testshared"
	"github.com/switchyard-ai/switchyard/kernels"
	"github.com/switchyard-ai/switchyard/lora"
	"github.com/switchyard-ai/switchyard/model"
)

func TestRandomFitsItsModel(t *testing.T) {
	cfg, err := model.ReadHFConfig(testshared.Path(t, "fixtures", "llama_tiny", "model"))
	if err != nil {
		t.Fatal(err)
	}
	for _, dt := range []kernels.DType{kernels.F32, kernels.F16, kernels.BF16} {
		a := lora.Random(cfg, 4, []model.Module{model.ModQ, model.ModV, model.ModDown}, dt, 1)
		if err := a.Validate(cfg); err != nil {
			t.Fatalf("%v: %v", dt, err)
		}
		p := a.Pair(1, model.ModDown)
		if p == nil || p.A.DType != dt || p.A.Rows != 4 || p.A.Cols != cfg.Intermediate || p.BT.Cols != cfg.Hidden {
			t.Fatalf("%v: down_proj pair %+v", dt, p)
		}
		if a.Pair(0, model.ModK) != nil {
			t.Errorf("%v: k_proj has a pair but was not a target", dt)
		}
		b := lora.Random(cfg, 4, []model.Module{model.ModQ, model.ModV, model.ModDown}, dt, 1)
		if string(b.Pair(1, model.ModDown).A.Data) != string(p.A.Data) {
			t.Errorf("%v: same seed gave different weights", dt)
		}
	}
}
