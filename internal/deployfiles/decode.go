// Package deployfiles decodes a directory of deployment files (deployments
// as code, issue 28) into the request body of
// POST /v1/deployment_sets/{set}/plan and /apply. The CLI (`sandbox0d apply`)
// and the daemon (`deployments_dir`) both use it, so a directory means the
// same thing whichever of them reads it.
//
// Each `*.yaml`, `*.yml` or `*.json` file under the directory (recursively,
// in sorted order, skipping names that start with a dot) holds one or more
// documents; each document is a deployment in the API's create shape plus:
//
//   - `key:` its stable identity within the set (default: the file's path
//     relative to the directory, plus `#N` for the Nth document, from 0, when
//     the file holds several);
//   - `paused: true|false`, applied only when stated;
//   - in `resources[i]`, `authorization_token_file: PATH` (relative to the
//     file's directory) or `authorization_token_env: NAME`, resolved here into
//     `authorization_token` so that no secret needs to live in the files.
package deployfiles

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Document is one deployment of a directory, as the plan/apply request
// carries it.
type Document struct {
	// Key is the deployment's stable identity within its set.
	Key string `json:"key"`
	// Source is "file:line" (file relative to the directory), for messages.
	Source string `json:"source,omitempty"`
	// Definition is the create body, with tokens resolved and `key` removed.
	Definition json.RawMessage `json:"definition"`
}

// Options adjusts where token references are resolved from.
type Options struct {
	// LookupEnv resolves authorization_token_env; nil means os.LookupEnv.
	LookupEnv func(name string) (string, bool)
}

func (o Options) lookupEnv(name string) (string, bool) {
	if o.LookupEnv != nil {
		return o.LookupEnv(name)
	}
	return os.LookupEnv(name)
}

// Limits: one file may not exceed the daemon's default request body limit
// (the whole directory is sent in one request), and a key stays short
// enough to read in a plan.
const (
	MaxFileBytes = 1 << 20
	MaxKeyLen    = 256
)

// Error locates a refused file or document: which file, which line, which
// document of the file, which field. It never carries a token's value.
type Error struct {
	// File is the path relative to the directory, slash-separated ("" for
	// the directory itself).
	File string
	// Line is the 1-based line of the document or field; 0 when unknown.
	Line int
	// Doc is the document's index in a multi-document file; -1 when the
	// file holds one document or the file as a whole is refused.
	Doc int
	// Field is the field path within the document ("resources[0].url"),
	// "" when the whole document or file is at fault.
	Field string
	// Reason says why, and the way out.
	Reason string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Doc >= 0 {
		fmt.Fprintf(&b, " (document #%d)", e.Doc)
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Reason)
	return b.String()
}

// IsDeploymentFile reports whether a file name is one DecodeDir reads.
func IsDeploymentFile(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".yaml", ".yml", ".json":
		return !strings.HasPrefix(name, ".")
	}
	return false
}

// DecodeDir reads every deployment file under dir. Any bad file makes the
// whole directory fail (nothing is half-applied), and two documents with the
// same key are an error naming both. An empty directory gives an empty,
// non-nil list: whether that may prune is the daemon's call (its guard
// refuses to archive a whole set without force).
func DecodeDir(dir string, opts Options) ([]Document, error) {
	info, err := os.Stat(dir)
	if err != nil {
		return nil, &Error{File: dir, Doc: -1, Reason: fmt.Sprintf("cannot read the deployments directory: %v", unwrapPath(err))}
	}
	if !info.IsDir() {
		return nil, &Error{File: dir, Doc: -1, Reason: "is not a directory: give the directory that holds the deployment files"}
	}
	docs := []Document{}
	seen := map[string]string{} // key -> source of its first document
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		rel, relErr := filepath.Rel(dir, path)
		if relErr != nil {
			return relErr
		}
		rel = filepath.ToSlash(rel)
		if err != nil {
			return &Error{File: rel, Doc: -1, Reason: fmt.Sprintf("cannot read: %v", unwrapPath(err))}
		}
		if path == dir {
			return nil
		}
		// Dot names are editor swap files, VCS directories and the "..data"
		// links of a Kubernetes ConfigMap mount (which would double every file).
		if strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() || !IsDeploymentFile(d.Name()) {
			return nil
		}
		data, err := readFile(path)
		if err != nil {
			return &Error{File: rel, Doc: -1, Reason: err.Error()}
		}
		fileDocs, err := DecodeFile(rel, data, filepath.Dir(path), opts)
		if err != nil {
			return err
		}
		for _, doc := range fileDocs {
			if first, dup := seen[doc.Key]; dup {
				return &Error{File: rel, Line: sourceLine(doc.Source), Doc: -1, Field: "key",
					Reason: fmt.Sprintf("%q is also the key of the document at %s; keys must be unique in the directory: give one of them another `key:`", doc.Key, first)}
			}
			seen[doc.Key] = doc.Source
		}
		docs = append(docs, fileDocs...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return docs, nil
}

// readFile reads a regular file (symlinks followed) of at most MaxFileBytes.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read: %v", unwrapPath(err))
	}
	defer f.Close()
	if info, err := f.Stat(); err == nil && !info.Mode().IsRegular() {
		return nil, errors.New("is not a regular file: remove it or rename it to end in something other than .yaml, .yml or .json")
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read: %v", unwrapPath(err))
	}
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("is larger than %d bytes, the daemon's request limit: split it into several files", MaxFileBytes)
	}
	return data, nil
}

// unwrapPath drops the path from an *fs.PathError: the message already
// names the file, relative to the directory.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func sourceLine(source string) int {
	i := strings.LastIndexByte(source, ':')
	n := 0
	for _, c := range source[i+1:] {
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + int(c-'0')
	}
	return n
}
