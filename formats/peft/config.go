package peft

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// ConfigFile is the name of the configuration file in a PEFT adapter
// directory.
const ConfigFile = "adapter_config.json"

// Config is a PEFT LoRA adapter configuration: the contents of
// adapter_config.json that decide which modules carry LoRA weights and
// how those weights are scaled.
//
// A Config returned by Parse or ReadFile is read-only and safe for
// concurrent use. A Config built by hand works too (its patterns are
// compiled on each call instead of once); Marshal checks it. Zero values
// stand for PEFT's defaults where PEFT has one (PeftType "LORA", Bias
// "none").
type Config struct {
	PeftType  string // peft_type; only "LORA" is supported
	TaskType  string // task_type, e.g. "CAUSAL_LM"; "" when null
	BaseModel string // base_model_name_or_path; "" when null

	R           int     // r: the rank of every module without a rank_pattern entry
	LoraAlpha   float64 // lora_alpha: the alpha of every module without an alpha_pattern entry
	UseRSLoRA   bool    // use_rslora: scaling is alpha/sqrt(r) instead of alpha/r
	LoraDropout float64 // lora_dropout: training only, inactive at inference
	Bias        string  // bias; only "none" is supported

	// target_modules comes in one of three forms; exactly one is set.
	TargetModules []string // a list of module names or dotted suffixes
	TargetRegex   string   // a regular expression matched against the whole module name
	AllLinear     bool     // the shorthand "all-linear"

	// exclude_modules removes modules before target_modules is consulted:
	// a list of names or suffixes, or a regular expression.
	ExcludeModules []string
	ExcludeRegex   string

	RankPattern  []Pattern // rank_pattern, in file order: per-module ranks
	AlphaPattern []Pattern // alpha_pattern, in file order: per-module alphas

	LayersToTransform []int    // layers_to_transform (an int or a list); nil or empty: every layer
	LayersPattern     []string // layers_pattern (a string or a list): the name before the layer index

	FanInFanOut   bool     // fan_in_fan_out; no effect on torch.nn.Linear layers (see the package doc)
	UseDora       bool     // use_dora; not supported
	ModulesToSave []string // modules_to_save; not supported

	// Extra holds every other key of the file (peft_version,
	// init_lora_weights, ...) as compact JSON. Parse has checked the ones
	// that would change inference; Marshal writes them back.
	Extra map[string]json.RawMessage

	// re caches the compiled form of every pattern, keyed by the
	// expression handed to regexp.Compile. Parse fills it; it is never
	// written afterwards.
	re map[string]*regexp.Regexp
}

// Pattern is one entry of rank_pattern or alpha_pattern: a regular
// expression for module names and the rank or alpha it sets.
type Pattern struct {
	Key   string
	Value float64
}

// unsupportedWhenSet lists keys that Parse keeps in Extra and refuses
// unless they hold their default (null, false, an empty list or object),
// with what they would do.
var unsupportedWhenSet = []struct{ key, what string }{
	{"lora_bias", "LoRA adapters with a trained bias on lora_B are"},
	{"target_parameters", "LoRA on nn.Parameter targets (target_parameters) is"},
	{"layer_replication", "layer replication is"},
	{"trainable_token_indices", "trainable token embeddings (trainable_token_indices) are"},
	{"alora_invocation_tokens", "activated LoRA (aLoRA) is"},
	{"use_qalora", "QA-LoRA is"},
	{"arrow_config", "Arrow routing is"},
}

// Parse decodes the contents of an adapter_config.json. It returns an error
// wrapping ErrInvalid when the file is malformed or PEFT would refuse it,
// and ErrUnsupported when it uses a PEFT feature Switchyard does not serve;
// the error names the field at fault.
func Parse(data []byte) (*Config, error) {
	ms, err := decodeObject(data)
	if err != nil {
		return nil, &FieldError{Msg: "bad JSON: " + err.Error(), Err: ErrInvalid}
	}
	c := &Config{R: 8, LoraAlpha: 8, Bias: "none"} // PEFT's LoraConfig defaults
	seenPeftType, seenTargets := false, false
	for _, m := range ms {
		k, v := m.key, m.val
		switch k {
		case "peft_type":
			c.PeftType, err = decodeString(k, v)
			seenPeftType = true
		case "task_type":
			c.TaskType, err = decodeOptString(k, v)
		case "base_model_name_or_path":
			c.BaseModel, err = decodeOptString(k, v)
		case "r":
			c.R, err = decodeInt(k, v)
		case "lora_alpha":
			c.LoraAlpha, err = decodeFloat(k, v)
		case "use_rslora":
			c.UseRSLoRA, err = decodeOptBool(k, v)
		case "lora_dropout":
			c.LoraDropout, err = decodeFloat(k, v)
		case "bias":
			c.Bias, err = decodeString(k, v)
		case "target_modules":
			seenTargets = !isNull(v)
			err = c.decodeTargets(k, v)
		case "exclude_modules":
			err = c.decodeExclude(k, v)
		case "rank_pattern":
			c.RankPattern, err = decodePatterns(k, v)
		case "alpha_pattern":
			c.AlphaPattern, err = decodePatterns(k, v)
		case "layers_to_transform":
			c.LayersToTransform, err = decodeInts(k, v)
		case "layers_pattern":
			c.LayersPattern, err = decodeStringOrList(k, v)
		case "fan_in_fan_out":
			c.FanInFanOut, err = decodeOptBool(k, v)
		case "use_dora":
			c.UseDora, err = decodeOptBool(k, v)
		case "modules_to_save":
			c.ModulesToSave, err = decodeStrings(k, v)
		default:
			if c.Extra == nil {
				c.Extra = map[string]json.RawMessage{}
			}
			var buf bytes.Buffer
			if err := json.Compact(&buf, v); err != nil {
				return nil, invalid(k, "%v", err)
			}
			c.Extra[k] = buf.Bytes()
		}
		if err != nil {
			return nil, err
		}
	}
	if !seenPeftType {
		return nil, invalid("peft_type", "missing; a PEFT adapter_config.json names its method, e.g. \"LORA\"")
	}
	if !seenTargets {
		return nil, invalid("target_modules", "missing or null; name the target modules explicitly (PEFT would fall back to per-architecture defaults)")
	}
	if err := c.check(); err != nil {
		return nil, err
	}
	return c, nil
}

// ReadFile reads and parses adapter_config.json in the adapter directory
// dir. Errors name the file.
func ReadFile(dir string) (*Config, error) {
	path := filepath.Join(dir, ConfigFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &FieldError{File: path, Msg: err.Error(), Err: ErrInvalid}
	}
	c, err := Parse(data)
	if err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			fe.File = path
		}
		return nil, err
	}
	return c, nil
}

func (c *Config) decodeTargets(k string, v json.RawMessage) error {
	switch jsonKind(v) {
	case '"':
		s, err := decodeString(k, v)
		if err != nil {
			return err
		}
		if strings.ToLower(s) == allLinear {
			c.AllLinear = true
		} else {
			c.TargetRegex = s
		}
		return nil
	case 'n':
		return nil
	}
	ss, err := decodeStrings(k, v)
	if err != nil {
		return invalid(k, "want a list of module names or a regular expression, found %s", v)
	}
	c.TargetModules = ss
	return nil
}

func (c *Config) decodeExclude(k string, v json.RawMessage) error {
	if jsonKind(v) == '"' {
		s, err := decodeString(k, v)
		c.ExcludeRegex = s
		return err
	}
	ss, err := decodeStrings(k, v)
	if err != nil {
		return invalid(k, "want a list of module names or a regular expression, found %s", v)
	}
	c.ExcludeModules = ss
	return nil
}

// decodeStringOrList decodes a string or a list of strings; null gives nil.
func decodeStringOrList(k string, v json.RawMessage) ([]string, error) {
	if jsonKind(v) == '"' {
		// PEFT treats an empty string like no pattern at all.
		s, err := decodeString(k, v)
		if s == "" {
			return []string{}, err
		}
		return []string{s}, err
	}
	ss, err := decodeStrings(k, v)
	if err != nil {
		return nil, invalid(k, "want a string or a list of strings, found %s", v)
	}
	return ss, nil
}

// check validates a decoded Config and compiles its patterns into c.re.
func (c *Config) check() error {
	switch {
	case c.PeftType != "LORA":
		return unsupported("peft_type", "only LORA is served; %q adapters are", c.PeftType)
	case c.R <= 0:
		return invalid("r", "rank %d must be a positive integer", c.R)
	case c.Bias != "none":
		return unsupported("bias", "%q: adapters that train the base model's biases are", c.Bias)
	case c.UseDora:
		return unsupported("use_dora", "DoRA adapters are")
	case len(c.ModulesToSave) > 0:
		return unsupported("modules_to_save", "%q: adapters that carry full copies of base modules are", c.ModulesToSave)
	}
	for _, u := range unsupportedWhenSet {
		if v, ok := c.Extra[u.key]; ok && isSet(v) {
			return unsupported(u.key, "%s: %s", v, u.what)
		}
	}
	forms := 0
	if c.TargetModules != nil {
		forms++
	}
	if c.TargetRegex != "" {
		forms++
	}
	if c.AllLinear {
		forms++
	}
	switch {
	case forms == 0:
		return invalid("target_modules", "missing or empty: the adapter targets no module")
	case forms > 1:
		return invalid("target_modules", "set in more than one form (list, regular expression, all-linear)")
	case c.TargetModules != nil && len(c.TargetModules) == 0:
		return invalid("target_modules", "empty list: the adapter targets no module")
	case c.TargetModules == nil && c.LayersToTransform != nil:
		return invalid("layers_to_transform", "cannot be used when target_modules is a string (as in PEFT)")
	case c.TargetModules == nil && c.LayersPattern != nil:
		return invalid("layers_pattern", "cannot be used when target_modules is a string (as in PEFT)")
	case len(c.LayersPattern) > 0 && len(c.LayersToTransform) == 0:
		return invalid("layers_pattern", "given without layers_to_transform (as in PEFT)")
	case c.ExcludeModules != nil && c.ExcludeRegex != "":
		return invalid("exclude_modules", "set as both a list and a regular expression")
	}
	for _, p := range c.RankPattern {
		if p.Value <= 0 || p.Value != float64(int(p.Value)) {
			return invalid("rank_pattern", "key %q: rank %v must be a positive integer", p.Key, p.Value)
		}
	}

	// Compile every regular expression once, so that a pattern Go cannot
	// handle is reported here and not silently skipped later.
	c.re = map[string]*regexp.Regexp{}
	compile := func(field, what, expr string) error {
		if _, ok := c.re[expr]; ok {
			return nil
		}
		re, err := regexp.Compile(expr)
		if err != nil {
			return invalid(field, "%s cannot be compiled by Go's regexp (RE2 syntax): %v", what, err)
		}
		c.re[expr] = re
		return nil
	}
	for _, p := range c.RankPattern {
		if err := compile("rank_pattern", "key "+quote(p.Key), patternExpr(p.Key)); err != nil {
			return err
		}
	}
	for _, p := range c.AlphaPattern {
		if err := compile("alpha_pattern", "key "+quote(p.Key), patternExpr(p.Key)); err != nil {
			return err
		}
	}
	if c.TargetRegex != "" {
		if err := compile("target_modules", quote(c.TargetRegex), fullExpr(c.TargetRegex)); err != nil {
			return err
		}
	}
	if c.ExcludeRegex != "" {
		if err := compile("exclude_modules", quote(c.ExcludeRegex), fullExpr(c.ExcludeRegex)); err != nil {
			return err
		}
	}
	for _, lp := range c.LayersPattern {
		if err := compile("layers_pattern", quote(lp), layerExpr(lp)); err != nil {
			return err
		}
	}
	if err := compile("layers_pattern", "the default layer pattern", defaultLayerExpr); err != nil {
		return err
	}

	for _, name := range []string{"model.embed_tokens", "lm_head"} {
		if c.Targets(name) {
			return unsupported("target_modules", "selects %s: LoRA on the token embedding or the output head is", name)
		}
	}
	return nil
}

// isSet reports whether a JSON value differs from the "off" values null,
// false, 0, "", [] and {}.
func isSet(v json.RawMessage) bool {
	var x any
	if err := json.Unmarshal(v, &x); err != nil {
		return true
	}
	switch x := x.(type) {
	case nil:
		return false
	case bool:
		return x
	case float64:
		return x != 0
	case string:
		return x != ""
	case []any:
		return len(x) > 0
	case map[string]any:
		return len(x) > 0
	}
	return true
}

// Marshal encodes the Config as an adapter_config.json that PEFT loads:
// keys sorted as PEFT writes them, rank_pattern and alpha_pattern in the
// Config's order (which decides the first match), Extra written back. It
// refuses a Config that Parse would refuse, so Parse(Marshal(c)) always
// succeeds and gives back c.
func (c *Config) Marshal() ([]byte, error) {
	fields := map[string]any{}
	for k, v := range c.Extra {
		fields[k] = v
	}
	set := func(k string, v any) { fields[k] = v }
	set("peft_type", orDefault(c.PeftType, "LORA"))
	set("task_type", nullIfEmpty(c.TaskType))
	set("base_model_name_or_path", nullIfEmpty(c.BaseModel))
	set("r", c.R)
	set("lora_alpha", c.LoraAlpha)
	set("use_rslora", c.UseRSLoRA)
	set("lora_dropout", c.LoraDropout)
	set("bias", orDefault(c.Bias, "none"))
	switch {
	case c.AllLinear:
		set("target_modules", allLinear)
	case c.TargetRegex != "":
		set("target_modules", c.TargetRegex)
	default:
		set("target_modules", c.TargetModules)
	}
	switch {
	case c.ExcludeRegex != "":
		set("exclude_modules", c.ExcludeRegex)
	case c.ExcludeModules != nil:
		set("exclude_modules", c.ExcludeModules)
	default:
		set("exclude_modules", nil)
	}
	set("rank_pattern", orderedPatterns(c.RankPattern))
	set("alpha_pattern", orderedPatterns(c.AlphaPattern))
	if c.LayersToTransform != nil {
		set("layers_to_transform", c.LayersToTransform)
	} else {
		set("layers_to_transform", nil)
	}
	if c.LayersPattern != nil {
		set("layers_pattern", c.LayersPattern)
	} else {
		set("layers_pattern", nil)
	}
	set("fan_in_fan_out", c.FanInFanOut)
	set("use_dora", c.UseDora)
	if c.ModulesToSave != nil {
		set("modules_to_save", c.ModulesToSave)
	} else {
		set("modules_to_save", nil)
	}

	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep "<", ">" and "&" as they were read
	buf.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			buf.WriteByte(',')
		}
		if err := enc.Encode(k); err != nil {
			return nil, &FieldError{Field: k, Msg: err.Error(), Err: ErrInvalid}
		}
		buf.WriteByte(':')
		if err := enc.Encode(fields[k]); err != nil {
			return nil, &FieldError{Field: k, Msg: err.Error(), Err: ErrInvalid}
		}
	}
	buf.WriteByte('}')
	var out bytes.Buffer
	if err := json.Indent(&out, buf.Bytes(), "", "  "); err != nil {
		return nil, &FieldError{Msg: err.Error(), Err: ErrInvalid}
	}
	out.WriteByte('\n')
	if _, err := Parse(out.Bytes()); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// orderedPatterns is a pattern list that encodes as a JSON object in its
// own order.
type orderedPatterns []Pattern

func (ps orderedPatterns) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, p := range ps {
		if i > 0 {
			buf.WriteByte(',')
		}
		kb, err := marshalNoEscape(p.Key)
		if err != nil {
			return nil, err
		}
		vb, err := json.Marshal(p.Value)
		if err != nil {
			return nil, err
		}
		buf.Write(kb)
		buf.WriteByte(':')
		buf.Write(vb)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// marshalNoEscape encodes v without escaping HTML characters.
func marshalNoEscape(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}
