package adapters

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-ai/switchyard/formats/peft"
	"github.com/switchyard-ai/switchyard/formats/safetensors"
	"github.com/switchyard-ai/switchyard/internal/testshared"
	"github.com/switchyard-ai/switchyard/kernels"
	"github.com/switchyard-ai/switchyard/lora"
	"github.com/switchyard-ai/switchyard/model"
)

// bytesReader returns a reader of b.
func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

// quietLogger discards the warnings that tests provoke on purpose.
func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// fixtureConfig reads the base model config of a shared fixture case.
func fixtureConfig(tb testing.TB, fixture string) *model.Config {
	tb.Helper()
	cfg, err := model.ReadHFConfig(testshared.Path(tb, "fixtures", fixture, "model"))
	if err != nil {
		tb.Fatal(err)
	}
	return cfg
}

// fixtureAdapter returns the path of a shared fixture adapter.
func fixtureAdapter(tb testing.TB, fixture, name string) string {
	return testshared.Path(tb, "fixtures", fixture, "adapters", name)
}

// smolConfig is the SmolLM2-135M base model's shape.
func smolConfig() *model.Config {
	return &model.Config{Arch: "llama", Hidden: 576, Intermediate: 1536, Layers: 30, Heads: 9, KVHeads: 3, HeadDim: 64,
		Vocab: 49152, MaxPositions: 8192, RMSNormEps: 1e-5, RopeTheta: 100000, TiedEmbed: true, BOS: 1, EOS: []int{2}}
}

// peftFiles builds the files of a PEFT adapter for cfg: rank r on q_proj
// and v_proj of every layer, BF16 values drawn from seed.
func peftFiles(tb testing.TB, cfg *model.Config, r int, seed uint64) Files {
	tb.Helper()
	conf := &peft.Config{PeftType: "LORA", TaskType: "CAUSAL_LM", R: r, LoraAlpha: float64(2 * r), TargetModules: []string{"q_proj", "v_proj"}, Bias: "none"}
	js, err := conf.Marshal()
	if err != nil {
		tb.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 1))
	mat := func(rows, cols int) []byte {
		b := make([]byte, 2*rows*cols)
		for i := 0; i < len(b); i += 8 {
			binary.LittleEndian.PutUint64(b[i:], rng.Uint64()&0x3fff3fff3fff3fff) // finite BF16 values
		}
		return b
	}
	var ts []safetensors.Tensor
	for l := range cfg.Layers {
		for _, m := range []model.Module{model.ModQ, model.ModV} {
			base := fmt.Sprintf("base_model.model.model.layers.%d.%s", l, m.Path())
			ts = append(ts,
				safetensors.Tensor{Name: base + ".lora_A.weight", DType: kernels.BF16, Shape: []int{r, cfg.InDim(m)}, Data: mat(r, cfg.InDim(m))},
				safetensors.Tensor{Name: base + ".lora_B.weight", DType: kernels.BF16, Shape: []int{cfg.OutDim(m), r}, Data: mat(cfg.OutDim(m), r)})
		}
	}
	var buf bytes.Buffer
	if err := safetensors.Write(&buf, ts, map[string]string{"format": "pt"}); err != nil {
		tb.Fatal(err)
	}
	return Files{peft.ConfigFile: js, "adapter_model.safetensors": buf.Bytes()}
}

// versionOf describes files as a registered version would.
func versionOf(name string, version int, files Files) Version {
	v := Version{Name: name, Version: version}
	for _, n := range slices.Sorted(func(yield func(string) bool) {
		for k := range files {
			if !yield(k) {
				return
			}
		}
	}) {
		sum := sha256.Sum256(files[n])
		v.Files = append(v.Files, File{Name: n, Size: int64(len(files[n])), SHA256: hex.EncodeToString(sum[:])})
		v.Bytes += int64(len(files[n]))
	}
	v.SHA256 = Digest(v.Files)
	return v
}

// fakeLoader is an in-memory Loader whose adapters are placeholders of a
// fixed tier-0 size, instrumented to count loads: it records how many
// loads of each key run at once.
type fakeLoader struct {
	size  int64         // tier-0 bytes of every adapter
	delay time.Duration // how long each Fetch takes
	gate  chan struct{} // when set, Fetch waits for it (or ctx, unless stubborn)

	stubborn bool // Fetch waits for gate even when its ctx is done

	mu          sync.Mutex
	versions    map[string][]Version
	files       map[string]Files // by key
	inFlight    map[string]int
	maxInFlight int
	fetches     map[string]int
	watchers    map[int]func(string)
	nextWatch   int
	fetchErr    error
}

func newFakeLoader(size int64) *fakeLoader {
	return &fakeLoader{size: size, versions: map[string][]Version{}, files: map[string]Files{},
		inFlight: map[string]int{}, fetches: map[string]int{}, watchers: map[int]func(string){}}
}

// add registers the next version of name and returns its key.
func (f *fakeLoader) add(name string) string {
	f.mu.Lock()
	n := len(f.versions[name]) + 1
	if vs := f.versions[name]; len(vs) > 0 {
		n = vs[len(vs)-1].Version + 1
	}
	key := fmt.Sprintf("%s@%d", name, n)
	files := Files{"w": []byte("weights of " + key)}
	f.files[key] = files
	f.versions[name] = append(f.versions[name], versionOf(name, n, files))
	f.mu.Unlock()
	f.notify(name)
	return key
}

// remove deletes one version.
func (f *fakeLoader) remove(name string, version int) {
	f.mu.Lock()
	f.versions[name] = slices.DeleteFunc(f.versions[name], func(v Version) bool { return v.Version == version })
	f.mu.Unlock()
	f.notify(name)
}

func (f *fakeLoader) notify(name string) {
	f.mu.Lock()
	var fns []func(string)
	for _, fn := range f.watchers {
		fns = append(fns, fn)
	}
	f.mu.Unlock()
	for _, fn := range fns {
		fn(name)
	}
}

func (f *fakeLoader) Lookup(_ context.Context, ref Ref) (Version, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	vs := f.versions[ref.Name]
	for i := len(vs) - 1; i >= 0; i-- {
		if ref.Version == 0 || vs[i].Version == ref.Version {
			return vs[i], nil
		}
	}
	return Version{}, fmt.Errorf("fake: %s: %w", ref, ErrNotFound)
}

func (f *fakeLoader) Fetch(ctx context.Context, v *Version) (Files, error) {
	key := v.Key()
	f.mu.Lock()
	f.inFlight[key]++
	f.fetches[key]++
	f.maxInFlight = max(f.maxInFlight, f.inFlight[key])
	files, err := f.files[key], f.fetchErr
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inFlight[key]--
		f.mu.Unlock()
	}()
	if f.gate != nil && f.stubborn {
		<-f.gate
	} else if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if f.delay > 0 {
		select {
		case <-time.After(f.delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if err != nil {
		return nil, err
	}
	return files, nil
}

func (f *fakeLoader) Decode(v *Version, files Files) (*lora.Adapter, error) {
	if want := "weights of " + v.Key(); string(files["w"]) != want {
		return nil, fmt.Errorf("fake: decode %s: got files %q", v.Key(), files["w"])
	}
	return &lora.Adapter{Name: v.Key(), Bytes: f.size}, nil
}

func (f *fakeLoader) Watch(fn func(string)) func() {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := f.nextWatch
	f.nextWatch++
	f.watchers[id] = fn
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		delete(f.watchers, id)
	}
}

func (f *fakeLoader) stats() (maxInFlight int, fetches map[string]int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := make(map[string]int, len(f.fetches))
	for k, v := range f.fetches {
		m[k] = v
	}
	return f.maxInFlight, m
}
