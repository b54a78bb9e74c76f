package safetensors

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/switchyard-ai/switchyard/internal/fsutil"
)

// Names of the files Open looks for in a directory, in order.
const (
	singleFileName = "model.safetensors"
	indexFileName  = "model.safetensors.index.json"
)

// File is an open safetensors checkpoint: one file, or the shards listed by
// a model.safetensors.index.json.
//
// Its methods may be called from several goroutines at once, except Close,
// which must not run concurrently with any other method.
type File struct {
	path     string            // what Open was given, for error messages
	mapped   [][]byte          // one mapping per file; released by Close
	tensors  map[string]info   // every tensor that Names lists
	names    []string          // sorted keys of tensors
	metadata map[string]string // see Metadata
	closed   bool
}

// Open opens path: a .safetensors file, a .index.json file, or a directory
// holding model.safetensors or model.safetensors.index.json (sharded; every
// shard mmapped). A directory holding both opens model.safetensors.
//
// Open validates every header before it returns; see the package
// documentation. The files must not be truncated while they are open.
func Open(path string) (*File, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	if st.IsDir() {
		for _, name := range []string{singleFileName, indexFileName} {
			p := filepath.Join(path, name)
			if _, err := os.Stat(p); err == nil {
				return Open(p)
			}
		}
		return nil, &Error{Path: path, Err: fs.ErrNotExist,
			Detail: "directory holds neither " + singleFileName + " nor " + indexFileName}
	}
	if strings.HasSuffix(path, ".json") {
		return openIndex(path)
	}
	b, err := fsutil.MapFile(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	f, err := parse(path, b)
	if err != nil {
		fsutil.UnmapFile(b)
		return nil, err
	}
	f.mapped = [][]byte{b}
	return f, nil
}

// Parse reads a safetensors file that is already in memory. The File
// aliases data, which must not change while the File is in use; Close
// releases nothing.
func Parse(data []byte) (*File, error) {
	return parse("", data)
}

// parse is Parse with a path for error messages.
func parse(path string, data []byte) (*File, error) {
	tensors, meta, err := parseFile(path, data)
	if err != nil {
		return nil, err
	}
	return &File{path: path, tensors: tensors, names: slices.Sorted(maps.Keys(tensors)), metadata: meta}, nil
}

// index is a parsed model.safetensors.index.json.
type index struct {
	weightMap map[string]string // tensor name -> shard file name
	metadata  map[string]string // the "metadata" object, see parseIndex
}

// openIndex opens the shards listed by the index file path.
func openIndex(path string) (*File, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	if st.Size() > maxHeaderSize {
		return nil, corrupt(path, "", fmt.Sprintf("index is %d bytes, more than the %d-byte limit", st.Size(), maxHeaderSize))
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	ix, err := parseIndex(path, raw)
	if err != nil {
		return nil, err
	}

	dir := filepath.Dir(path)
	meta := ix.metadata
	f := &File{path: path}
	shards := make(map[string]map[string]info)
	for _, shard := range slices.Sorted(maps.Values(ix.weightMap)) {
		if _, done := shards[shard]; done {
			continue
		}
		sp := filepath.Join(dir, shard)
		b, err := fsutil.MapFile(sp)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("safetensors: %s: %w", path, err)
		}
		f.mapped = append(f.mapped, b)
		tensors, m, err := parseFile(sp, b)
		if err != nil {
			f.Close()
			return nil, err
		}
		shards[shard] = tensors
		for k, v := range m {
			if _, ok := meta[k]; !ok {
				meta[k] = v
			}
		}
	}

	tensors := make(map[string]info, len(ix.weightMap))
	for _, name := range slices.Sorted(maps.Keys(ix.weightMap)) {
		shard := ix.weightMap[name]
		ti, ok := shards[shard][name]
		if !ok {
			f.Close()
			return nil, corrupt(path, name, "listed in the weight_map but absent from shard "+shard)
		}
		tensors[name] = ti
	}
	f.tensors = tensors
	f.names = slices.Sorted(maps.Keys(tensors))
	if len(meta) > 0 {
		f.metadata = meta
	}
	return f, nil
}

// parseIndex validates an index file. The "metadata" object of the index
// becomes a map of strings: string values as they are, any other value as
// its compact JSON text (so total_size 1234 becomes "1234").
func parseIndex(path string, raw []byte) (*index, error) {
	if t := bytes.TrimLeft(raw, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return nil, corrupt(path, "", "index is not a JSON object")
	}
	var doc struct {
		Metadata  map[string]json.RawMessage `json:"metadata"`
		WeightMap map[string]string          `json:"weight_map"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, corrupt(path, "", "index is not valid: "+err.Error())
	}
	if doc.WeightMap == nil {
		return nil, corrupt(path, "", "index has no weight_map")
	}
	for _, name := range slices.Sorted(maps.Keys(doc.WeightMap)) {
		shard := doc.WeightMap[name]
		if shard == "." || !filepath.IsLocal(shard) || strings.ContainsAny(shard, `/\`) {
			return nil, corrupt(path, name, fmt.Sprintf("shard %q is not a plain file name in the index's directory", shard))
		}
	}
	meta := make(map[string]string, len(doc.Metadata))
	for k, v := range doc.Metadata {
		var s string
		if err := json.Unmarshal(v, &s); err == nil {
			meta[k] = s
			continue
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, v); err != nil {
			return nil, corrupt(path, "", fmt.Sprintf("index metadata %q: %v", k, err))
		}
		meta[k] = buf.String()
	}
	return &index{weightMap: doc.WeightMap, metadata: meta}, nil
}

// Close releases the mappings. Tensors obtained from f must not be used
// afterwards. Close is idempotent.
func (f *File) Close() error {
	var first error
	for _, b := range f.mapped {
		if err := fsutil.UnmapFile(b); err != nil && first == nil {
			first = fmt.Errorf("safetensors: %s: %w", f.path, err)
		}
	}
	f.mapped = nil
	f.closed = true
	return first
}

// Release tells the OS that the caller no longer reads b, the data of a
// tensor of f (or a part of it), which it has copied: the pages wholly
// inside b leave the process's resident set (see fsutil.DropPages). It
// must not run concurrently with Close, and does nothing for b outside
// the file's mappings.
func (f *File) Release(b []byte) {
	for _, m := range f.mapped {
		if fsutil.Within(b, m) {
			fsutil.DropPages(b)
			return
		}
	}
}

// Names returns the names of all tensors, sorted, whatever their dtype.
func (f *File) Names() []string { return slices.Clone(f.names) }

// Has reports whether the checkpoint holds a tensor called name, whatever
// its dtype.
func (f *File) Has(name string) bool {
	_, ok := f.tensors[name]
	return ok
}

// Metadata returns a copy of the header's __metadata__ map; nil when there
// is none. For a sharded checkpoint it is the "metadata" object of the
// index (non-string values as their JSON text), completed by the keys of
// each shard's __metadata__ that the index lacks.
func (f *File) Metadata() map[string]string { return maps.Clone(f.metadata) }

// Tensor returns the tensor called name. Its Data aliases the mapped file
// and stays valid until Close; it starts at a multiple of the element size,
// so that it may be reinterpreted as []float32 or []uint16 (a file whose
// offsets do not allow that, which neither Write nor the Python library
// produces, gets an aligned copy). The error wraps ErrNotFound when there is
// no such tensor, and ErrUnsupportedDType when it is stored in a dtype
// other than F32, F16 or BF16.
func (f *File) Tensor(name string) (Tensor, error) {
	if f.closed {
		return Tensor{}, &Error{Path: f.path, Tensor: name, Err: ErrClosed}
	}
	ti, ok := f.tensors[name]
	if !ok {
		return Tensor{}, &Error{Path: f.path, Tensor: name, Err: ErrNotFound}
	}
	dt, ok := kernelDTypes[ti.dtype]
	if !ok {
		return Tensor{}, &Error{Path: ti.path, Tensor: name, Err: ErrUnsupportedDType,
			Detail: fmt.Sprintf("dtype %s is not supported (want F32, F16 or BF16)", ti.dtype)}
	}
	return Tensor{Name: name, DType: dt, Shape: slices.Clone(ti.shape), Data: aligned(ti.data, dt)}, nil
}
