package server

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/switchyard-ai/switchyard/internal/fsutil"
	"github.com/switchyard-ai/switchyard/train"
)

// FileObject is an uploaded file, in the shape of OpenAI's file object.
type FileObject struct {
	ID        string `json:"id"`
	Object    string `json:"object"` // "file"
	Bytes     int64  `json:"bytes"`
	CreatedAt int64  `json:"created_at"`
	Filename  string `json:"filename"`
	Purpose   string `json:"purpose"` // "fine-tune"
	Status    string `json:"status"`  // "processed"
}

// filePath is where file id's contents are kept; its record is next to
// it with ".json" added.
func (j *Jobs) filePath(id string) string { return filepath.Join(j.cfg.Dir, "files", id+".jsonl") }

// validFileID reports whether id can be a file id (and so a file name).
func validFileID(id string) bool {
	if !strings.HasPrefix(id, "file-") || len(id) > 64 {
		return false
	}
	for _, c := range id[len("file-"):] {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// File returns an uploaded file's record.
func (j *Jobs) File(id string) (FileObject, error) {
	if !validFileID(id) {
		return FileObject{}, ErrJobNotFound
	}
	raw, err := os.ReadFile(j.filePath(id) + ".json")
	if err != nil {
		return FileObject{}, ErrJobNotFound
	}
	var f FileObject
	if err := json.Unmarshal(raw, &f); err != nil {
		return FileObject{}, err
	}
	return f, nil
}

// AddFile stores a JSONL training file read from r after checking every
// line with train.ParseExamples and the base model's tokenizer. A bad
// file is refused with a 400 that lists its bad lines by number.
func (j *Jobs) AddFile(filename string, r io.Reader) (FileObject, error) {
	id := newID("file-")
	path := j.filePath(id)
	tmp := path + ".upload"
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return FileObject{}, err
	}
	defer os.Remove(tmp)
	n, err := io.Copy(out, r)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return FileObject{}, uploadError(err)
	}
	in, err := os.Open(tmp)
	if err != nil {
		return FileObject{}, err
	}
	_, err = train.ParseExamples(in, filename, j.cfg.Tokenizer, train.DataOptions{MaxLen: j.cfg.Model.Config.MaxPositions})
	in.Close()
	if err != nil {
		var de *train.DataError
		if errors.As(err, &de) {
			return FileObject{}, &apiError{Status: 400, Type: typeInvalid, Param: "file", Code: "invalid_file",
				Message: strings.ReplaceAll(err.Error(), "train: ", "")}
		}
		return FileObject{}, invalid("file", "%v", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return FileObject{}, err
	}
	f := FileObject{ID: id, Object: "file", Bytes: n, CreatedAt: time.Now().Unix(), Filename: filename,
		Purpose: "fine-tune", Status: "processed"}
	err = fsutil.WriteFileAtomic(path+".json", func(w io.Writer) error { return json.NewEncoder(w).Encode(f) })
	if err != nil {
		os.Remove(path)
		return FileObject{}, fmt.Errorf("server: saving file record: %w", err)
	}
	return f, nil
}

// removeFile deletes an uploaded file and its record.
func (j *Jobs) removeFile(id string) {
	if validFileID(id) {
		os.Remove(j.filePath(id) + ".json")
		os.Remove(j.filePath(id))
	}
}

// Files returns the uploaded files, newest first.
func (j *Jobs) Files() []FileObject {
	paths, _ := filepath.Glob(filepath.Join(j.cfg.Dir, "files", "file-*.jsonl.json"))
	out := []FileObject{}
	for _, p := range paths {
		id := strings.TrimSuffix(filepath.Base(p), ".jsonl.json")
		if f, err := j.File(id); err == nil {
			out = append(out, f)
		}
	}
	slices.SortFunc(out, func(a, b FileObject) int {
		if c := cmp.Compare(b.CreatedAt, a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	return out
}

// DeleteFile deletes an uploaded file. Jobs that have not started yet on
// it will fail.
func (j *Jobs) DeleteFile(id string) error {
	if _, err := j.File(id); err != nil {
		return err
	}
	j.removeFile(id)
	return nil
}
