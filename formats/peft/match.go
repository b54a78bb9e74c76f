package peft

import (
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// allLinear is PEFT's INCLUDE_LINEAR_LAYERS_SHORTHAND.
const allLinear = "all-linear"

// linearNames are the base names of the linear layers of the supported
// decoder architectures that "all-linear" selects. The output head
// (lm_head) is a linear layer too, but PEFT leaves it out.
var linearNames = []string{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}

// defaultLayerExpr extracts the layer index from a module name when
// layers_pattern is empty: the number after any dotted component.
const defaultLayerExpr = `^.*\.[^.]*\.(\d+)\.`

// patternExpr is PEFT's get_pattern_key test, re.match(rf"(.*\.)?({key})$").
func patternExpr(key string) string { return `^(?:.*\.)?(?:` + key + `)$` }

// fullExpr is re.fullmatch(expr).
func fullExpr(expr string) string { return `^(?:` + expr + `)$` }

// layerExpr is PEFT's re.match(rf".*\.{pattern}\.(\d+)\."), with the
// pattern grouped so that its own alternations and groups cannot take the
// place of the layer index.
func layerExpr(pattern string) string { return `^.*\.(?:` + pattern + `)\.(\d+)\.` }

func quote(s string) string { return strconv.Quote(s) }

// regexp returns the compiled expression, from the cache Parse filled or
// compiled now for a hand-built Config; nil if it does not compile.
func (c *Config) regexp(expr string) *regexp.Regexp {
	if re, ok := c.re[expr]; ok {
		return re
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil
	}
	return re
}

// lookup returns the value of the first pattern matching module, in
// order, as PEFT's get_pattern_key followed by dict.get does.
func (c *Config) lookup(ps []Pattern, module string) (float64, bool) {
	for _, p := range ps {
		if re := c.regexp(patternExpr(p.Key)); re != nil && re.MatchString(module) {
			return p.Value, true
		}
	}
	// get_pattern_key falls back to the module name itself, which is then
	// looked up as a key: only differs when a key is not a regular
	// expression that matches itself.
	for _, p := range ps {
		if p.Key == module {
			return p.Value, true
		}
	}
	return 0, false
}

// Rank returns the LoRA rank of the module with the given full name (e.g.
// "model.layers.1.self_attn.v_proj"): the value of the first rank_pattern
// entry that matches it, or r.
func (c *Config) Rank(module string) int {
	if v, ok := c.lookup(c.RankPattern, module); ok {
		return int(v)
	}
	return c.R
}

// Alpha returns lora_alpha for the module with the given full name: the
// value of the first alpha_pattern entry that matches it, or lora_alpha.
func (c *Config) Alpha(module string) float64 {
	if v, ok := c.lookup(c.AlphaPattern, module); ok {
		return v
	}
	return c.LoraAlpha
}

// Scaling returns the factor PEFT multiplies the module's LoRA output
// with: Alpha/Rank, or Alpha/sqrt(Rank) with use_rslora.
func (c *Config) Scaling(module string) float64 {
	r, alpha := float64(c.Rank(module)), c.Alpha(module)
	if c.UseRSLoRA {
		return alpha / math.Sqrt(r)
	}
	return alpha / r
}

// Targets reports whether PEFT puts LoRA weights on the module with the
// given full name (e.g. "model.layers.1.self_attn.v_proj"), following
// check_target_module_exists: exclude_modules first, then target_modules
// as a list (with layers_to_transform), a regular expression or
// "all-linear".
func (c *Config) Targets(module string) bool {
	if c.excluded(module) {
		return false
	}
	switch {
	case c.TargetRegex != "":
		re := c.regexp(fullExpr(c.TargetRegex))
		return re != nil && re.MatchString(module)
	case c.AllLinear:
		// PEFT replaces "all-linear" by the base names of the model's
		// linear layers before matching, so this is the list rule.
		return matchList(linearNames, module)
	}
	if slices.Contains(c.TargetModules, module) {
		return true // an exact name skips layers_to_transform, as in PEFT
	}
	if !matchList(c.TargetModules, module) {
		return false
	}
	if len(c.LayersToTransform) == 0 {
		return true
	}
	layer, ok := c.layerIndex(module)
	return ok && slices.Contains(c.LayersToTransform, layer)
}

func (c *Config) excluded(module string) bool {
	if c.ExcludeRegex != "" {
		re := c.regexp(fullExpr(c.ExcludeRegex))
		return re != nil && re.MatchString(module)
	}
	return matchList(c.ExcludeModules, module)
}

// matchList reports whether module equals one of names or ends with "." +
// one of them.
func matchList(names []string, module string) bool {
	for _, n := range names {
		if module == n || strings.HasSuffix(module, "."+n) {
			return true
		}
	}
	return false
}

// layerIndex extracts the layer index from a module name as PEFT does for
// layers_to_transform: after one of layers_pattern (first that matches),
// or after any dotted component when layers_pattern is empty.
func (c *Config) layerIndex(module string) (int, bool) {
	exprs := []string{defaultLayerExpr}
	if len(c.LayersPattern) > 0 {
		exprs = exprs[:0]
		for _, p := range c.LayersPattern {
			exprs = append(exprs, layerExpr(p))
		}
	}
	for _, e := range exprs {
		re := c.regexp(e)
		if re == nil {
			continue
		}
		m := re.FindStringSubmatch(module)
		if m == nil {
			continue
		}
		i, err := strconv.Atoi(m[len(m)-1])
		if err != nil {
			return 0, false
		}
		return i, true
	}
	return 0, false
}
