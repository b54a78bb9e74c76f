package tokenizer

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// LoadHF reads tokenizer.json from a Hugging Face model directory, and
// tokenizer_config.json beside it when present (for add_bos_token,
// add_eos_token, the bos/eos tokens and chat_template).
func LoadHF(dir string) (*Tokenizer, error) {
	tokPath := filepath.Join(dir, "tokenizer.json")
	tokJSON, err := os.ReadFile(tokPath)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	cfgPath := filepath.Join(dir, "tokenizer_config.json")
	cfgJSON, err := os.ReadFile(cfgPath)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("tokenizer: %w", err)
		}
		cfgJSON = nil
	}
	t, err := ParseHF(tokJSON, cfgJSON)
	if err != nil {
		var fe *FormatError
		if errors.As(err, &fe) {
			switch fe.Source {
			case "tokenizer.json":
				fe.Source = tokPath
			case "tokenizer_config.json":
				fe.Source = cfgPath
			}
		}
		return nil, err
	}
	return t, nil
}

// ParseHF builds a tokenizer from the bytes of tokenizer.json and of
// tokenizer_config.json (which may be nil).
//
// The model must be BPE. Supported are the normalizers Prepend, Replace
// (literal) and NFC; the pre-tokenizers ByteLevel, Metaspace, Digits and
// Split with a literal or with the GPT-2, Llama 3 or Qwen2 expression; the
// post-processors TemplateProcessing, ByteLevel, RobertaProcessing and
// BertProcessing; and the decoders ByteLevel, Metaspace, Replace,
// ByteFallback, Fuse and Strip. Anything else is an error.
func ParseHF(tokenizerJSON, configJSON []byte) (*Tokenizer, error) {
	t, err := parseTokenizerJSON(tokenizerJSON)
	if err != nil {
		return nil, &FormatError{Source: "tokenizer.json", Err: err}
	}
	if err := t.applyHFConfig(configJSON); err != nil {
		return nil, &FormatError{Source: "tokenizer_config.json", Err: err}
	}
	t.finish()
	return t, nil
}

// hfModel is tokenizer.json's model object, less vocab and merges.
type hfModel struct {
	Type                    string
	UnkToken                *string
	ContinuingSubwordPrefix *string
	EndOfWordSuffix         *string
	FuseUnk                 bool
	ByteFallback            bool
	IgnoreMerges            bool
}

// decode fills m from the model object's members.
func (m *hfModel) decode(members map[string][]byte) error {
	for key, dst := range map[string]any{
		"type":                      &m.Type,
		"unk_token":                 &m.UnkToken,
		"continuing_subword_prefix": &m.ContinuingSubwordPrefix,
		"end_of_word_suffix":        &m.EndOfWordSuffix,
		"fuse_unk":                  &m.FuseUnk,
		"byte_fallback":             &m.ByteFallback,
		"ignore_merges":             &m.IgnoreMerges,
	} {
		if raw, ok := members[key]; ok {
			if err := json.Unmarshal(raw, dst); err != nil {
				return fmt.Errorf("model %s: %w", key, err)
			}
		}
	}
	return nil
}

// maxVocab bounds token ids, so that a corrupt file cannot make us
// allocate without limit.
const maxVocab = 1 << 24

func parseTokenizerJSON(data []byte) (*Tokenizer, error) {
	top, err := members(data)
	if err != nil {
		return nil, err
	}
	var added []addedToken
	if raw := top["added_tokens"]; raw != nil && string(raw) != "null" {
		if err := json.Unmarshal(raw, &added); err != nil {
			return nil, fmt.Errorf("added_tokens: %w", err)
		}
	}
	m, vocab, merges, err := parseHFModel(top["model"])
	if err != nil {
		return nil, err
	}
	t, err := newHFVocabulary(vocab, added)
	if err != nil {
		return nil, err
	}
	enc, err := newHFEncoder(top, m, vocab, merges, added)
	if err != nil {
		return nil, err
	}
	t.enc = enc
	if t.prefix, t.suffix, err = parsePostProcessor(top["post_processor"], 0); err != nil {
		return nil, err
	}
	chain, err := parseDecoder(top["decoder"])
	if err != nil {
		return nil, err
	}
	t.dec = newHFDecodeSpec(t.pieces, chain)
	return t, nil
}

// parseHFModel reads the model object: its options, vocabulary and merges.
func parseHFModel(raw []byte) (m hfModel, vocab map[string]int, merges [][2]string, err error) {
	if raw == nil || string(raw) == "null" {
		return m, nil, nil, errors.New("no model")
	}
	model, err := members(raw)
	if err != nil {
		return m, nil, nil, fmt.Errorf("model: %w", err)
	}
	if err := m.decode(model); err != nil {
		return m, nil, nil, err
	}
	if m.Type == "" && model["merges"] != nil {
		m.Type = "BPE"
	}
	if m.Type != "BPE" {
		return m, nil, nil, fmt.Errorf("model type %q is not supported (only BPE)", m.Type)
	}
	if (m.ContinuingSubwordPrefix != nil && *m.ContinuingSubwordPrefix != "") ||
		(m.EndOfWordSuffix != nil && *m.EndOfWordSuffix != "") {
		return m, nil, nil, errors.New("BPE continuing_subword_prefix / end_of_word_suffix are not supported")
	}
	if model["vocab"] == nil {
		return m, nil, nil, errors.New("model has no vocab")
	}
	if vocab, err = scanVocab(model["vocab"]); err != nil {
		return m, nil, nil, fmt.Errorf("model vocab: %w", err)
	}
	if raw := model["merges"]; raw != nil {
		if merges, err = scanMerges(raw); err != nil {
			return m, nil, nil, fmt.Errorf("model merges: %w", err)
		}
	}
	return m, vocab, merges, nil
}

// newHFVocabulary lays out the ids: the model vocabulary, then the added
// tokens, which take precedence for their id and text as in
// AddedVocabulary.
func newHFVocabulary(vocab map[string]int, added []addedToken) (*Tokenizer, error) {
	size := 0
	for p, id := range vocab {
		if id < 0 || id >= maxVocab {
			return nil, fmt.Errorf("model vocab: token %q has id %d", p, id)
		}
		size = max(size, id+1)
	}
	for _, a := range added {
		if a.ID < 0 || a.ID >= maxVocab {
			return nil, fmt.Errorf("added token %q has id %d", a.Content, a.ID)
		}
		size = max(size, a.ID+1)
	}
	if n := len(vocab) + len(added); size > 2*n+1024 {
		return nil, fmt.Errorf("token ids reach %d for %d tokens", size-1, n)
	}
	t := &Tokenizer{
		pieces: make([]string, size),
		kinds:  make([]tokenKind, size),
		ids:    vocab,
		added:  make(map[string]int, len(added)),
		bos:    -1,
		eos:    -1,
	}
	seen := make([]bool, size)
	for p, id := range vocab {
		if seen[id] {
			other := t.pieces[id]
			return nil, fmt.Errorf("model vocab: tokens %q and %q share id %d", min(p, other), max(p, other), id)
		}
		seen[id] = true
		t.pieces[id] = p
	}
	for _, a := range added {
		t.pieces[a.ID] = a.Content
		t.added[a.Content] = a.ID
		t.kinds[a.ID] = kindUserDefined
		if a.Special {
			t.kinds[a.ID] = kindControl
		}
	}
	return t, nil
}

// newHFEncoder builds the encoding pipeline of a tokenizer.json.
func newHFEncoder(top map[string][]byte, m hfModel, vocab map[string]int, merges [][2]string, added []addedToken) (*hfEncoder, error) {
	bpe := newBPEModel(vocab, merges)
	bpe.ignoreMerges = m.IgnoreMerges
	bpe.byteFallback = m.ByteFallback
	bpe.fuseUnk = m.FuseUnk
	if bpe.byteFallback {
		bpe.setByteTokens()
	}
	if m.UnkToken != nil {
		if id, ok := vocab[*m.UnkToken]; ok {
			bpe.unk = int32(id)
		}
	}
	enc := &hfEncoder{model: bpe}
	var err error
	if enc.norm, err = parseNormalizer(top["normalizer"], 0); err != nil {
		return nil, err
	}
	if enc.pre, err = parsePreTokenizer(top["pre_tokenizer"], 0); err != nil {
		return nil, err
	}
	// Tokens with normalized: true are matched in the normalized text, so
	// their content is normalized too.
	var plain, normalized []addedToken
	for _, a := range added {
		if !a.Normalized {
			plain = append(plain, a)
			continue
		}
		for _, op := range enc.norm {
			a.Content = op.apply(a.Content)
		}
		normalized = append(normalized, a)
	}
	enc.added, enc.addedNorm = newAddedMatcher(plain), newAddedMatcher(normalized)
	return enc, nil
}

// parsePostProcessor returns the ids a post-processor puts around a
// single sequence.
func parsePostProcessor(raw json.RawMessage, depth int) (prefix, suffix []int, err error) {
	c, ok, err := parseComponent(raw, "post_processor")
	if err != nil || !ok {
		return nil, nil, err
	}
	if depth > 8 {
		return nil, nil, errors.New("post_processor: Sequence nested too deep")
	}
	switch c.Type {
	case "ByteLevel":
		return nil, nil, nil
	case "Sequence":
		for _, r := range c.Processors {
			p, s, err := parsePostProcessor(r, depth+1)
			if err != nil {
				return nil, nil, err
			}
			prefix = append(p, prefix...)
			suffix = append(suffix, s...)
		}
		return prefix, suffix, nil
	case "TemplateProcessing":
		seen := false
		for _, item := range c.Single {
			var it struct {
				SpecialToken *struct{ ID string } `json:"SpecialToken"`
				Sequence     *struct{ ID string } `json:"Sequence"`
			}
			if err := json.Unmarshal(item, &it); err != nil {
				return nil, nil, fmt.Errorf("post_processor: template item: %w", err)
			}
			switch {
			case it.Sequence != nil:
				if seen {
					return nil, nil, errors.New("post_processor: single template has two sequences")
				}
				seen = true
			case it.SpecialToken != nil:
				spec, ok := c.SpecialTokens[it.SpecialToken.ID]
				if !ok {
					return nil, nil, fmt.Errorf("post_processor: special token %q is not defined", it.SpecialToken.ID)
				}
				for _, id := range spec.IDs {
					if id < 0 || id >= maxVocab {
						return nil, nil, fmt.Errorf("post_processor: special token %q has id %d", it.SpecialToken.ID, id)
					}
				}
				if seen {
					suffix = append(suffix, spec.IDs...)
				} else {
					prefix = append(prefix, spec.IDs...)
				}
			default:
				return nil, nil, errors.New("post_processor: template item is neither SpecialToken nor Sequence")
			}
		}
		return prefix, suffix, nil
	case "RobertaProcessing", "BertProcessing":
		cls, err := processorToken(c.Cls)
		if err != nil {
			return nil, nil, err
		}
		sep, err := processorToken(c.Sep)
		if err != nil {
			return nil, nil, err
		}
		return []int{cls}, []int{sep}, nil
	}
	return nil, nil, fmt.Errorf("post_processor: type %q is not supported", c.Type)
}

// processorToken reads a ["<s>", 0] pair of RobertaProcessing.
func processorToken(raw []json.RawMessage) (int, error) {
	var id int
	if len(raw) != 2 || json.Unmarshal(raw[1], &id) != nil || id < 0 || id >= maxVocab {
		return 0, errors.New("post_processor: cls/sep is not a [token, id] pair")
	}
	return id, nil
}

// hfConfig is the part of tokenizer_config.json this package reads.
type hfConfig struct {
	AddBOSToken  *bool           `json:"add_bos_token"`
	AddEOSToken  *bool           `json:"add_eos_token"`
	BOSToken     json.RawMessage `json:"bos_token"`
	EOSToken     json.RawMessage `json:"eos_token"`
	ChatTemplate json.RawMessage `json:"chat_template"`
}

// applyHFConfig sets BOS, EOS, the chat template and, as transformers'
// Llama-style tokenizers do, rebuilds the BOS/EOS template from
// add_bos_token / add_eos_token when the file sets them.
func (t *Tokenizer) applyHFConfig(data []byte) error {
	var c hfConfig
	if len(data) > 0 {
		if err := json.Unmarshal(data, &c); err != nil {
			return err
		}
	}
	bos, err := t.configToken(c.BOSToken, "bos_token")
	if err != nil {
		return err
	}
	eos, err := t.configToken(c.EOSToken, "eos_token")
	if err != nil {
		return err
	}
	// Without the config, the template's tokens tell BOS and EOS.
	if bos < 0 && c.BOSToken == nil && len(t.prefix) > 0 {
		bos = t.prefix[0]
	}
	if eos < 0 && c.EOSToken == nil && len(t.suffix) > 0 {
		eos = t.suffix[len(t.suffix)-1]
	}
	for _, id := range append(t.prefix[:len(t.prefix):len(t.prefix)], t.suffix...) {
		if id >= len(t.pieces) {
			return fmt.Errorf("post-processor token id %d is outside the vocabulary", id)
		}
	}
	t.bos, t.eos = bos, eos
	if c.AddBOSToken != nil {
		t.prefix = nil
		if *c.AddBOSToken && bos >= 0 {
			t.prefix = []int{bos}
		}
	}
	if c.AddEOSToken != nil {
		t.suffix = nil
		if *c.AddEOSToken && eos >= 0 {
			t.suffix = []int{eos}
		}
	}
	tmpl, err := chatTemplate(c.ChatTemplate)
	if err != nil {
		return err
	}
	if tmpl != "" {
		t.SetChatTemplate(tmpl)
	}
	return nil
}

// configToken resolves a bos_token/eos_token entry, written as a string or
// as an AddedToken object, to an id; -1 when it is absent, null or not in
// the vocabulary.
func (t *Tokenizer) configToken(raw json.RawMessage, name string) (int, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return -1, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		var obj struct {
			Content string `json:"content"`
		}
		if err := json.Unmarshal(raw, &obj); err != nil {
			return -1, fmt.Errorf("%s is neither a string nor a token object", name)
		}
		s = obj.Content
	}
	if s == "" {
		return -1, nil
	}
	id, ok := t.ID(s)
	if !ok {
		return -1, nil // some configs name tokens the vocabulary lacks
	}
	return id, nil
}

// chatTemplate reads chat_template: a string, or a list of named templates
// of which "default" (else the first) is taken.
func chatTemplate(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var named []struct {
		Name     string `json:"name"`
		Template string `json:"template"`
	}
	if err := json.Unmarshal(raw, &named); err != nil {
		return "", errors.New("chat_template is neither a string nor a list of named templates")
	}
	for _, n := range named {
		if strings.EqualFold(n.Name, "default") {
			return n.Template, nil
		}
	}
	if len(named) > 0 {
		return named[0].Template, nil
	}
	return "", nil
}
