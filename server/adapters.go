package server

import (
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/switchyard-ai/switchyard/adapters"
)

// modelObject is an entry of GET /v1/models.
type modelObject struct {
	ID        string `json:"id"`
	Object    string `json:"object"`
	Created   int64  `json:"created"`
	OwnedBy   string `json:"owned_by"`
	Root      string `json:"root,omitempty"`      // the base model an adapter belongs to
	Version   int    `json:"version,omitempty"`   // the adapter's newest version
	Residency string `json:"residency,omitempty"` // "tier0" (compute-ready) ... "tier3" (remote store only)
}

// tierName names a cache tier in responses.
func tierName(t int) string { return fmt.Sprintf("tier%d", t) }

// residency returns the cache's residency by "name@N".
func (s *Server) residency() map[string]adapters.Residency {
	out := map[string]adapters.Residency{}
	if s.cfg.Cache == nil {
		return out
	}
	for _, r := range s.cfg.Cache.Residency() {
		out[fmt.Sprintf("%s@%d", r.Name, r.Version)] = r
	}
	return out
}

func (s *Server) handleModels(w http.ResponseWriter, r *http.Request) {
	data := []modelObject{{ID: s.cfg.BaseName, Object: "model", Created: s.created, OwnedBy: "switchyard", Residency: tierName(adapters.Tier0)}}
	if s.cfg.Registry != nil {
		res := s.residency()
		latest := map[string]adapters.Version{}
		var names []string
		for _, v := range s.cfg.Registry.List() {
			if _, ok := latest[v.Name]; !ok {
				names = append(names, v.Name)
			}
			latest[v.Name] = v
		}
		for _, name := range names {
			v := latest[name]
			data = append(data, s.adapterModel(&v, res))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data})
}

// adapterModel describes an adapter's version as a model.
func (s *Server) adapterModel(v *adapters.Version, res map[string]adapters.Residency) modelObject {
	tier := adapters.Tier3
	if r, ok := res[v.Key()]; ok {
		tier = r.Tier
	}
	return modelObject{ID: v.Name, Object: "model", Created: v.Created.Unix(), OwnedBy: "switchyard",
		Root: s.cfg.BaseName, Version: v.Version, Residency: tierName(tier)}
}

func (s *Server) handleModel(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("model")
	if id == s.cfg.BaseName {
		writeJSON(w, http.StatusOK, modelObject{ID: id, Object: "model", Created: s.created, OwnedBy: "switchyard", Residency: tierName(adapters.Tier0)})
		return
	}
	if s.cfg.Registry == nil {
		writeError(w, &apiError{Status: http.StatusNotFound, Type: typeNotFound, Code: "model_not_found", Message: fmt.Sprintf("the model %q does not exist", id)})
		return
	}
	v, err := s.cfg.Registry.Resolve(id)
	if err != nil {
		writeError(w, adapterError(err, "model"))
		return
	}
	m := s.adapterModel(&v, s.residency())
	m.ID = id
	writeJSON(w, http.StatusOK, m)
}

// adapterObject is an adapter version in the admin API: its registry
// metadata and its place in the cache.
type adapterObject struct {
	adapters.Version
	Object    string  `json:"object"`
	Residency string  `json:"residency"`
	Pinned    bool    `json:"pinned"`
	InUse     int     `json:"in_use"`
	Loading   bool    `json:"loading"`
	Hits      uint64  `json:"hits"`
	Misses    uint64  `json:"misses"`
	LoadMS    float64 `json:"load_ms"`
}

func (s *Server) adapterObject(v adapters.Version, res map[string]adapters.Residency) adapterObject {
	a := adapterObject{Version: v, Object: "adapter", Residency: tierName(adapters.Tier3)}
	if r, ok := res[v.Key()]; ok {
		a.Residency = tierName(r.Tier)
		a.Pinned, a.InUse, a.Loading, a.Hits, a.Misses = r.Pinned, r.InUse, r.Loading, r.Hits, r.Misses
		a.LoadMS = float64(r.LoadTime) / float64(time.Millisecond)
	}
	return a
}

// needRegistry answers 404 when the server has no registry.
func (s *Server) needRegistry(w http.ResponseWriter) bool {
	if s.cfg.Registry == nil {
		writeError(w, &apiError{Status: http.StatusNotFound, Type: typeNotFound, Code: "no_registry",
			Message: "this server has no adapter registry"})
		return false
	}
	return true
}

func (s *Server) handleListAdapters(w http.ResponseWriter, r *http.Request) {
	if !s.needRegistry(w) {
		return
	}
	res := s.residency()
	data := []adapterObject{}
	for _, v := range s.cfg.Registry.List() {
		data = append(data, s.adapterObject(v, res))
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data})
}

func (s *Server) handleGetAdapter(w http.ResponseWriter, r *http.Request) {
	if !s.needRegistry(w) {
		return
	}
	v, err := s.cfg.Registry.Resolve(r.PathValue("ref"))
	if err != nil {
		writeError(w, adapterError(err, "ref"))
		return
	}
	writeJSON(w, http.StatusOK, s.adapterObject(v, s.residency()))
}

// registerRequest is the JSON body of POST /v1/adapters.
type registerRequest struct {
	Name string `json:"name"`
	URI  string `json:"uri"`
}

// handleRegisterAdapter registers an adapter from a URI (a JSON body) or
// from uploaded files (multipart/form-data with a "name" field and the
// adapter's files: adapter_config.json and adapter_model.safetensors, or
// one .gguf file).
func (s *Server) handleRegisterAdapter(w http.ResponseWriter, r *http.Request) {
	if !s.needRegistry(w) {
		return
	}
	var req registerRequest
	if isMultipart(r) {
		dir, name, err := s.receiveUpload(r)
		if dir != "" {
			defer os.RemoveAll(dir)
		}
		if err != nil {
			writeError(w, err)
			return
		}
		req = registerRequest{Name: name, URI: dir}
		if entries, _ := os.ReadDir(dir); len(entries) == 1 && strings.HasSuffix(entries[0].Name(), ".gguf") {
			req.URI = filepath.Join(dir, entries[0].Name())
		}
	} else {
		if err := decodeBody(r, &req); err != nil {
			writeError(w, err)
			return
		}
		if req.URI == "" {
			writeError(w, invalid("uri", "uri is required (a directory, a GGUF file, s3://, https:// or hf://), or upload the files as multipart/form-data"))
			return
		}
	}
	if req.Name == "" {
		writeError(w, invalid("name", "name is required"))
		return
	}
	if err := adapters.ValidName(req.Name); err != nil {
		writeError(w, adapterError(err, "name"))
		return
	}
	v, err := s.cfg.Registry.Register(r.Context(), req.Name, req.URI)
	if err != nil {
		writeError(w, adapterError(err, "uri"))
		return
	}
	s.log.Info("server: adapter registered", "adapter", v.Key(), "source", v.Source)
	writeJSON(w, http.StatusCreated, s.adapterObject(v, s.residency()))
}

// uploadFile reports whether name is a file an adapter upload may hold.
func uploadFile(name string) bool {
	return name == "adapter_config.json" || name == "adapter_model.safetensors" || name == "adapter_model.bin" ||
		strings.HasSuffix(name, ".gguf")
}

// receiveUpload saves a multipart adapter upload in a new temporary
// directory and returns it with the "name" field.
func (s *Server) receiveUpload(r *http.Request) (dir, name string, err error) {
	mr, err := r.MultipartReader()
	if err != nil {
		return "", "", invalid("", "reading the multipart upload: %v", err)
	}
	dir, err = os.MkdirTemp("", "switchyard-upload-*")
	if err != nil {
		return "", "", err
	}
	files := 0
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return dir, "", uploadError(err)
		}
		if p.FormName() == "name" && p.FileName() == "" {
			b, err := io.ReadAll(io.LimitReader(p, 1024))
			if err != nil {
				return dir, "", uploadError(err)
			}
			name = string(b)
			continue
		}
		base := filepath.Base(p.FileName())
		if p.FileName() == "" || !uploadFile(base) {
			return dir, "", invalid("file", "unexpected upload part %q (file %q): upload adapter_config.json and adapter_model.safetensors, or one .gguf file", p.FormName(), p.FileName())
		}
		if err := saveUpload(filepath.Join(dir, base), p); err != nil {
			return dir, "", uploadError(err)
		}
		files++
	}
	if files == 0 {
		return dir, "", invalid("file", "the upload has no adapter files")
	}
	return dir, name, nil
}

func saveUpload(path string, p *multipart.Part) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, p); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func uploadError(err error) error {
	var mb *http.MaxBytesError
	if errors.As(err, &mb) {
		return &apiError{Status: http.StatusRequestEntityTooLarge, Type: typeInvalid, Code: "request_too_large",
			Message: fmt.Sprintf("the upload is larger than %d bytes", mb.Limit)}
	}
	return invalid("file", "reading the upload: %v", err)
}

func (s *Server) handleDeleteAdapter(w http.ResponseWriter, r *http.Request) {
	if !s.needRegistry(w) {
		return
	}
	ref := r.PathValue("ref")
	if err := s.cfg.Registry.Delete(r.Context(), ref); err != nil {
		writeError(w, adapterError(err, "ref"))
		return
	}
	s.log.Info("server: adapter deleted", "adapter", ref)
	writeJSON(w, http.StatusOK, map[string]any{"id": ref, "object": "adapter", "deleted": true})
}

// adminAction runs a cache action on the adapter the path names and
// answers with its state.
func (s *Server) adminAction(w http.ResponseWriter, r *http.Request, action func(ref string) error) {
	if !s.needRegistry(w) {
		return
	}
	ref := r.PathValue("ref")
	v, err := s.cfg.Registry.Resolve(ref)
	if err != nil {
		writeError(w, adapterError(err, "ref"))
		return
	}
	if err := action(ref); err != nil {
		writeError(w, adapterError(err, "ref"))
		return
	}
	writeJSON(w, http.StatusOK, s.adapterObject(v, s.residency()))
}

func (s *Server) handlePin(w http.ResponseWriter, r *http.Request) {
	s.adminAction(w, r, func(ref string) error { return s.cfg.Cache.Pin(r.Context(), ref) })
}

func (s *Server) handleUnpin(w http.ResponseWriter, r *http.Request) {
	s.adminAction(w, r, s.cfg.Cache.Unpin)
}

func (s *Server) handlePrefetch(w http.ResponseWriter, r *http.Request) {
	s.adminAction(w, r, func(ref string) error { return s.cfg.Cache.Prefetch(r.Context(), ref) })
}
