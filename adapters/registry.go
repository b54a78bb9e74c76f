package adapters

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/switchyard-ai/switchyard/adapters/store"
	"github.com/switchyard-ai/switchyard/lora"
	"github.com/switchyard-ai/switchyard/model"
)

// Files and buckets of a registry directory.
const (
	dbFile   = "registry.db"
	blobsDir = "blobs"
	// blobPrefix starts the name of every blob in the blob store:
	// "sha256/<64 hex digits>".
	blobPrefix = "sha256/"

	defaultMaxAdapterBytes = 4 << 30
)

var (
	bucketMeta     = []byte("meta")     // "base" -> baseInfo JSON
	bucketVersions = []byte("versions") // name "\x00" uint32 BE -> Version JSON
	bucketNext     = []byte("next")     // name -> uint32 BE: the next version number
	keyBase        = []byte("base")
)

// RegistryOptions configures a Registry. A nil *RegistryOptions means
// the zero value: blobs under the registry directory, stores configured
// from the environment, 4 GiB per adapter, slog.Default.
type RegistryOptions struct {
	// Blobs is the URI of the store that keeps the adapters' files
	// (tier 3 of a Cache), such as "s3://bucket/switchyard"; empty means
	// the directory "blobs" beside registry.db. The store belongs to the
	// registry: Open and Delete remove blobs that no version references.
	Blobs string

	// Store configures the stores that Register and Blobs open; nil
	// means store.OptionsFromEnv().
	Store *store.Options

	// MaxAdapterBytes bounds the files of one adapter; 0 means 4 GiB.
	MaxAdapterBytes int64

	// Logger receives warnings (such as a blob that could not be
	// removed); nil means slog.Default().
	Logger *slog.Logger
}

// baseInfo is the base model a registry belongs to, stored at creation.
type baseInfo struct {
	Name        string    `json:"name"`
	Fingerprint string    `json:"fingerprint"`
	Arch        string    `json:"arch"`
	Created     time.Time `json:"created"`
}

// Registry is the catalogue of the adapters of one base model: named,
// versioned, validated against the base, with their files kept
// content-addressed in a blob store and their metadata in a bbolt
// database. It is safe for concurrent use, and it is the usual Loader of
// a Cache.
type Registry struct {
	dir      string
	db       *bolt.DB
	base     *model.Config
	baseName string
	baseFP   string
	blobs    store.Store
	blobsAt  string // prefix of every blob name in blobs
	localDir string // the blob directory when it is local, for cleaning; "" otherwise
	opts     RegistryOptions
	log      *slog.Logger

	// writeMu serialises the changes that add or remove blobs (Register's
	// blob writes and commit, Delete's commit and blob removal), so a
	// blob shared by two versions is never removed while one of them is
	// being committed.
	writeMu sync.Mutex

	mu     sync.RWMutex         // guards byName and closed
	byName map[string][]Version // committed versions, ascending
	closed bool

	watchMu  sync.Mutex // guards watchers and nextID
	watchers map[int]func(string)
	nextID   int

	// testHook, when set, is called at named points of Register and
	// Delete; tests use it to simulate a crash.
	testHook func(stage string)
}

// Open opens (creating it if needed) the registry in dir for the base
// model described by base and called baseName. A registry belongs to one
// base model: opening it with another name or a configuration of another
// shape is an error wrapping ErrBaseMismatch.
//
// Open removes what a crash may have left: temporary files in the local
// blob directory, and blobs written by a Register whose metadata was
// never committed. Only one process may have a registry open; another
// Open of the same dir fails after a second.
func Open(ctx context.Context, dir string, base *model.Config, baseName string, opts *RegistryOptions) (*Registry, error) {
	if opts == nil {
		opts = &RegistryOptions{}
	}
	r := &Registry{
		dir: dir, base: base, baseName: baseName, baseFP: Fingerprint(base),
		opts: *opts, log: opts.Logger, byName: make(map[string][]Version),
		watchers: make(map[int]func(string)),
	}
	if r.log == nil {
		r.log = slog.Default()
	}
	if r.opts.MaxAdapterBytes <= 0 {
		r.opts.MaxAdapterBytes = defaultMaxAdapterBytes
	}
	if baseName == "" {
		return nil, fmt.Errorf("adapters: open registry %s: empty base model name", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("adapters: open registry: %w", err)
	}
	db, err := bolt.Open(filepath.Join(dir, dbFile), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, fmt.Errorf("adapters: open registry %s: in use by another process", dir)
		}
		return nil, fmt.Errorf("adapters: open registry %s: %w", dir, err)
	}
	r.db = db
	if err := r.init(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return r, nil
}

// init checks the base model, loads the versions and cleans the blobs.
func (r *Registry) init(ctx context.Context) error {
	err := r.db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketMeta, bucketVersions, bucketNext} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		want := baseInfo{Name: r.baseName, Fingerprint: r.baseFP, Arch: r.base.Arch, Created: time.Now().UTC()}
		raw := meta.Get(keyBase)
		if raw == nil {
			b, err := json.Marshal(want)
			if err != nil {
				return err
			}
			return meta.Put(keyBase, b)
		}
		var have baseInfo
		if err := json.Unmarshal(raw, &have); err != nil {
			return fmt.Errorf("corrupt base record: %w", err)
		}
		if have.Name != want.Name || have.Fingerprint != want.Fingerprint {
			return fmt.Errorf("%w: created for %q (%s, fingerprint %s), opened for %q (%s, fingerprint %s)",
				ErrBaseMismatch, have.Name, have.Arch, have.Fingerprint, want.Name, want.Arch, want.Fingerprint)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("adapters: open registry %s: %w", r.dir, err)
	}
	err = r.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketVersions).ForEach(func(k, v []byte) error {
			var ver Version
			if err := json.Unmarshal(v, &ver); err != nil {
				return fmt.Errorf("corrupt version record %q: %w", k, err)
			}
			r.byName[ver.Name] = append(r.byName[ver.Name], ver)
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("adapters: open registry %s: %w", r.dir, err)
	}

	if r.opts.Blobs == "" {
		r.localDir = filepath.Join(r.dir, blobsDir)
		if err := os.MkdirAll(filepath.Join(r.localDir, filepath.FromSlash(blobPrefix)), 0o755); err != nil {
			return fmt.Errorf("adapters: open registry: %w", err)
		}
		d, err := store.NewDir(r.localDir)
		if err != nil {
			return fmt.Errorf("adapters: open registry: %w", err)
		}
		r.blobs = d
		r.removeTempBlobs()
	} else {
		s, prefix, err := store.Open(ctx, r.opts.Blobs, r.opts.Store)
		if err != nil {
			return fmt.Errorf("adapters: open registry blob store %s: %w", r.opts.Blobs, err)
		}
		r.blobs, r.blobsAt = s, prefix
	}
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	return r.collectBlobs(ctx, nil)
}

// removeTempBlobs deletes whatever is in the local blob directory that is
// not a blob: the temporary files of a write that a crash interrupted.
// No other process writes there, since the database lock is ours.
func (r *Registry) removeTempBlobs() {
	dir := filepath.Join(r.localDir, filepath.FromSlash(blobPrefix))
	ents, err := os.ReadDir(dir)
	if err != nil {
		r.log.Warn("adapters: cannot list blobs", "dir", dir, "err", err)
		return
	}
	for _, e := range ents {
		if e.Type().IsRegular() && isHexDigest(e.Name()) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if err := os.RemoveAll(p); err != nil {
			r.log.Warn("adapters: cannot remove stray file", "path", p, "err", err)
		} else {
			r.log.Info("adapters: removed stray file left by an interrupted write", "path", p)
		}
	}
}

// collectBlobs removes the blobs that no committed version references,
// limited to candidates when it is not nil. r.writeMu must be held.
func (r *Registry) collectBlobs(ctx context.Context, candidates []string) error {
	live := make(map[string]bool)
	r.mu.RLock()
	for _, vs := range r.byName {
		for _, v := range vs {
			for _, f := range v.Files {
				live[f.SHA256] = true
			}
		}
	}
	r.mu.RUnlock()
	if candidates == nil {
		objs, err := r.blobs.List(ctx, r.blobsAt+blobPrefix)
		if err != nil {
			return fmt.Errorf("adapters: list blobs: %w", err)
		}
		for _, o := range objs {
			if sum, ok := strings.CutPrefix(o.Name, r.blobsAt+blobPrefix); ok && isHexDigest(sum) {
				candidates = append(candidates, sum)
			}
		}
	}
	for _, sum := range candidates {
		if live[sum] {
			continue
		}
		if err := r.blobs.Delete(ctx, r.blobName(sum)); err != nil && !errors.Is(err, store.ErrNotFound) {
			r.log.Warn("adapters: cannot remove unreferenced blob", "sha256", sum, "err", err)
		}
	}
	return nil
}

// isHexDigest reports whether s is 64 lowercase hex digits.
func isHexDigest(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// blobName returns the store name of the blob with the given digest.
func (r *Registry) blobName(sum string) string { return r.blobsAt + blobPrefix + sum }

// Close closes the database. Handles that Caches gave out stay valid;
// Register, Delete and Fetch fail with ErrClosed afterwards.
func (r *Registry) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.mu.Unlock()
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	return r.db.Close()
}

// Base returns the base model's name and configuration.
func (r *Registry) Base() (string, *model.Config) { return r.baseName, r.base }

// Register fetches the adapter at uri (any URI store.Open accepts: a
// directory with adapter_config.json and adapter_model.safetensors, or a
// GGUF LoRA file), validates it against the base model, stores its
// files and records it as the next version of name.
//
// An adapter that does not fit the base (a tensor of the wrong shape, a
// module the base lacks, another architecture) is refused with an error
// wrapping ErrMismatch that names the tensor; unreadable files with one
// wrapping ErrInvalid; a store that cannot be reached with the store's
// error (store.ErrUnreachable). Nothing is recorded then.
//
// The files are written (temporary file, fsync, rename) before the
// metadata is committed in one transaction, so a crash at any moment
// leaves either the whole version or no trace of it once the registry is
// opened again.
func (r *Registry) Register(ctx context.Context, name, uri string) (Version, error) {
	if err := ValidName(name); err != nil {
		return Version{}, err
	}
	if r.isClosed() {
		return Version{}, fmt.Errorf("adapters: register %s: registry %w", name, ErrClosed)
	}
	files, err := r.readSource(ctx, uri)
	if err != nil {
		return Version{}, fmt.Errorf("adapters: register %s from %s: %w", name, uri, err)
	}
	a, err := lora.LoadFiles(name, files, r.base)
	if err != nil {
		if !errors.Is(err, ErrMismatch) && !errors.Is(err, lora.ErrUnsupported) {
			err = fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		return Version{}, fmt.Errorf("adapters: register %s from %s: %w", name, uri, err)
	}
	v := r.describe(name, uri, files, a)

	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	if r.isClosed() {
		return Version{}, fmt.Errorf("adapters: register %s: registry %w", name, ErrClosed)
	}
	var written []string
	for _, f := range v.Files {
		n, err := r.putBlob(ctx, f, files[f.Name])
		if n {
			written = append(written, f.SHA256)
		}
		if err != nil {
			r.collectBlobs(context.WithoutCancel(ctx), written)
			return Version{}, fmt.Errorf("adapters: register %s: store %s: %w", name, f.Name, err)
		}
	}
	if r.testHook != nil {
		r.testHook("blobs-written")
	}
	err = r.db.Update(func(tx *bolt.Tx) error {
		next := tx.Bucket(bucketNext)
		v.Version = 1
		if b := next.Get([]byte(name)); len(b) == 4 {
			v.Version = int(binary.BigEndian.Uint32(b))
		}
		raw, err := json.Marshal(v)
		if err != nil {
			return err
		}
		if err := tx.Bucket(bucketVersions).Put(versionKey(name, v.Version), raw); err != nil {
			return err
		}
		return next.Put([]byte(name), binary.BigEndian.AppendUint32(nil, uint32(v.Version+1)))
	})
	if err != nil {
		r.collectBlobs(context.WithoutCancel(ctx), written)
		return Version{}, fmt.Errorf("adapters: register %s: commit: %w", name, err)
	}
	r.mu.Lock()
	r.byName[name] = append(r.byName[name], v)
	r.mu.Unlock()
	r.notify(name)
	return v, nil
}

// describe builds the metadata of a validated adapter (without its
// version number).
func (r *Registry) describe(name, uri string, files Files, a *lora.Adapter) Version {
	v := Version{
		Name: name, Base: r.baseName, BaseFingerprint: r.baseFP, Arch: r.base.Arch,
		Format: "peft", Rank: a.MaxRank, TensorBytes: a.Bytes, Source: uri, Created: time.Now().UTC(),
	}
	if a.Config == nil {
		v.Format = "gguf"
	}
	for _, m := range a.Targets() {
		v.Targets = append(v.Targets, m.String())
	}
	for _, l := range a.Layers {
		for _, p := range l {
			if p != nil && !slices.Contains(v.Ranks, p.Rank) {
				v.Ranks = append(v.Ranks, p.Rank)
			}
		}
	}
	slices.Sort(v.Ranks)
	for _, fname := range slices.Sorted(func(yield func(string) bool) {
		for k := range files {
			if !yield(k) {
				return
			}
		}
	}) {
		b := files[fname]
		sum := sha256.Sum256(b)
		v.Files = append(v.Files, File{Name: fname, Size: int64(len(b)), SHA256: hex.EncodeToString(sum[:])})
		v.Bytes += int64(len(b))
	}
	v.SHA256 = Digest(v.Files)
	return v
}

// putBlob stores one file under its digest unless an intact blob of that
// digest is there already (a damaged one is replaced, so registering the
// same files again repairs it); it reports whether it wrote one.
func (r *Registry) putBlob(ctx context.Context, f File, b []byte) (bool, error) {
	if info, err := r.blobs.Stat(ctx, r.blobName(f.SHA256)); err == nil && info.Size == f.Size {
		if old, err := readObject(ctx, r.blobs, r.blobName(f.SHA256), f.Size, f.Size); err == nil && checkBlob(f, old) == nil {
			return false, nil
		}
	}
	return true, r.blobs.Put(ctx, r.blobName(f.SHA256), bytes.NewReader(b), f.Size)
}

// adapterFile reports whether a file found at a registration URI belongs
// to the adapter (other files, such as README.md or the trainer's state,
// are not fetched).
func adapterFile(name string) bool {
	switch name {
	case "adapter_config.json", "adapter_model.safetensors", "adapter_model.bin":
		return true
	}
	return !strings.Contains(name, "/") && strings.HasSuffix(strings.ToLower(name), ".gguf")
}

// readSource reads the adapter files at uri into memory.
func (r *Registry) readSource(ctx context.Context, uri string) (Files, error) {
	src, prefix, err := store.Open(ctx, uri, r.opts.Store)
	if err != nil {
		return nil, err
	}
	objs, err := src.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	files := make(Files)
	var total int64
	for _, o := range objs {
		rel, _ := strings.CutPrefix(o.Name, prefix)
		if rel == "" {
			rel = o.Name[strings.LastIndexByte(o.Name, '/')+1:] // the prefix names one file
		}
		if !adapterFile(rel) {
			continue
		}
		if total += o.Size; total > r.opts.MaxAdapterBytes {
			return nil, fmt.Errorf("%w: more than %d bytes of files", ErrInvalid, r.opts.MaxAdapterBytes)
		}
		b, err := readObject(ctx, src, o.Name, o.Size, r.opts.MaxAdapterBytes)
		if err != nil {
			return nil, err
		}
		files[rel] = b
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%w: no adapter files (adapter_config.json and adapter_model.safetensors, or a .gguf file) there", ErrInvalid)
	}
	return files, nil
}

// readObject reads one object of the given size (-1 when unknown) whole,
// refusing more than limit bytes.
func readObject(ctx context.Context, s store.Store, name string, size, limit int64) ([]byte, error) {
	body, err := s.Get(ctx, name)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	if size >= 0 {
		limit = size
	}
	buf := bytes.NewBuffer(make([]byte, 0, max(0, min(size, limit))+bytes.MinRead))
	n, err := buf.ReadFrom(io.LimitReader(body, limit+1))
	if err != nil {
		return nil, err
	}
	if n > limit {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrInvalid, name, limit)
	}
	if size >= 0 && n != size {
		return nil, fmt.Errorf("%w: %s ended after %d of %d bytes", store.ErrShortBody, name, n, size)
	}
	return buf.Bytes(), nil
}

// versionKey is the database key of a version: its name, a NUL (which no
// name contains, so one name's keys never interleave with another's) and
// the version number in big-endian order.
func versionKey(name string, version int) []byte {
	return binary.BigEndian.AppendUint32(append([]byte(name), 0), uint32(version))
}

func (r *Registry) isClosed() bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.closed
}

// Resolve returns the version that ref ("name" for the latest, or
// "name@N") names. The error wraps ErrBadName or ErrNotFound.
func (r *Registry) Resolve(ref string) (Version, error) {
	rf, err := ParseRef(ref)
	if err != nil {
		return Version{}, err
	}
	return r.Lookup(context.Background(), rf)
}

// Lookup is Resolve for a parsed reference; it implements Loader. It
// reads only memory.
func (r *Registry) Lookup(_ context.Context, ref Ref) (Version, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	vs := r.byName[ref.Name]
	if len(vs) == 0 {
		return Version{}, fmt.Errorf("adapters: %s: %w", ref, ErrNotFound)
	}
	if ref.Version == 0 {
		return vs[len(vs)-1], nil
	}
	i, ok := slices.BinarySearchFunc(vs, ref.Version, func(v Version, n int) int { return v.Version - n })
	if !ok {
		return Version{}, fmt.Errorf("adapters: %s: %w (versions of %s: %s)", ref, ErrNotFound, ref.Name, versionList(vs))
	}
	return vs[i], nil
}

// versionList formats the version numbers of vs for messages.
func versionList(vs []Version) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = fmt.Sprint(v.Version)
	}
	return strings.Join(parts, ", ")
}

// List returns every registered version, sorted by name and version.
func (r *Registry) List() []Version {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []Version
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range r.byName {
			if !yield(k) {
				return
			}
		}
	}) {
		out = append(out, r.byName[name]...)
	}
	return out
}

// Versions returns the versions of name, ascending; none when it is not
// registered.
func (r *Registry) Versions(name string) []Version {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.Clone(r.byName[name])
}

// Delete removes "name@N", or every version of "name". Version numbers
// are never reused, so a Cache never mistakes a later registration for
// the deleted one. Blobs that no remaining version references are
// removed from the blob store. Handles that a Cache gave out for a
// deleted version stay valid until released.
func (r *Registry) Delete(ctx context.Context, ref string) error {
	rf, err := ParseRef(ref)
	if err != nil {
		return err
	}
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	if r.isClosed() {
		return fmt.Errorf("adapters: delete %s: registry %w", ref, ErrClosed)
	}
	r.mu.RLock()
	var gone []Version
	for _, v := range r.byName[rf.Name] {
		if rf.Version == 0 || v.Version == rf.Version {
			gone = append(gone, v)
		}
	}
	r.mu.RUnlock()
	if len(gone) == 0 {
		return fmt.Errorf("adapters: delete %s: %w", ref, ErrNotFound)
	}
	err = r.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketVersions)
		for _, v := range gone {
			if err := b.Delete(versionKey(v.Name, v.Version)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("adapters: delete %s: %w", ref, err)
	}
	r.mu.Lock()
	r.byName[rf.Name] = slices.DeleteFunc(r.byName[rf.Name], func(v Version) bool {
		return rf.Version == 0 || v.Version == rf.Version
	})
	if len(r.byName[rf.Name]) == 0 {
		delete(r.byName, rf.Name)
	}
	r.mu.Unlock()
	r.notify(rf.Name)
	if r.testHook != nil {
		r.testHook("deleted")
	}
	var sums []string
	for _, v := range gone {
		for _, f := range v.Files {
			sums = append(sums, f.SHA256)
		}
	}
	return r.collectBlobs(context.WithoutCancel(ctx), sums)
}

// Fetch reads the files of v from the blob store and checks each
// against the size and SHA-256 recorded at registration; a damaged file
// is an error wrapping ErrChecksum. It implements Loader (tier 3).
func (r *Registry) Fetch(ctx context.Context, v *Version) (Files, error) {
	files := make(Files, len(v.Files))
	for _, f := range v.Files {
		b, err := r.readBlob(ctx, f)
		if err != nil {
			return nil, fmt.Errorf("adapters: fetch %s: %w", v.Key(), err)
		}
		files[f.Name] = b
	}
	return files, nil
}

// readBlob reads the blob of f, hashing it as it arrives (while each
// chunk is still in the CPU's cache), and checks its size and SHA-256;
// the error wraps ErrChecksum when they differ from f's.
func (r *Registry) readBlob(ctx context.Context, f File) ([]byte, error) {
	body, err := r.blobs.Get(ctx, r.blobName(f.SHA256))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Name, err)
	}
	defer body.Close()
	h := sha256.New()
	b := make([]byte, f.Size+1) // one more, to see a blob that grew
	n, err := io.ReadFull(io.TeeReader(body, h), b)
	switch {
	case err == nil:
		return nil, fmt.Errorf("%w: %s is larger than the %d bytes recorded", ErrChecksum, f.Name, f.Size)
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
	default:
		return nil, fmt.Errorf("%s: %w", f.Name, err)
	}
	if int64(n) != f.Size {
		return nil, fmt.Errorf("%w: %s is %d bytes, want %d", ErrChecksum, f.Name, n, f.Size)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != f.SHA256 {
		return nil, fmt.Errorf("%w: %s has sha256 %s, want %s", ErrChecksum, f.Name, got, f.SHA256)
	}
	return b[:n:n], nil
}

// Decode turns the files of v into a compute-ready adapter for the base
// model. It implements Loader.
func (r *Registry) Decode(v *Version, files Files) (*lora.Adapter, error) {
	a, err := lora.LoadFiles(v.Key(), files, r.base)
	if err != nil {
		return nil, fmt.Errorf("adapters: decode %s: %w", v.Key(), err)
	}
	return a, nil
}

// Watch calls fn with a name after every Register or Delete of it has
// been committed, until the returned function is called. fn runs on the
// goroutine that made the change and must not block or call back into
// the Registry's writing methods. It implements Loader.
func (r *Registry) Watch(fn func(name string)) (stop func()) {
	r.watchMu.Lock()
	defer r.watchMu.Unlock()
	id := r.nextID
	r.nextID++
	r.watchers[id] = fn
	return func() {
		r.watchMu.Lock()
		defer r.watchMu.Unlock()
		delete(r.watchers, id)
	}
}

// notify calls the watchers for name.
func (r *Registry) notify(name string) {
	r.watchMu.Lock()
	fns := make([]func(string), 0, len(r.watchers))
	for _, fn := range r.watchers {
		fns = append(fns, fn)
	}
	r.watchMu.Unlock()
	for _, fn := range fns {
		fn(name)
	}
}
