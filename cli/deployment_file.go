package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/sandbox0/sandbox0d/internal/deployfiles"
)

// maxDefinitionBytes matches the daemon's default request body limit, so an
// oversized file is refused before it is sent.
const maxDefinitionBytes = 1 << 20

// readDeploymentFile reads a deployment definition (path, or "-" for stdin)
// and returns it as a JSON request body. JSON is sent as written; anything
// else is read as YAML and converted.
func readDeploymentFile(path string, stdin io.Reader) ([]byte, error) {
	if path == "" {
		return nil, errors.New("-f: a YAML or JSON file is required (use - for stdin)")
	}
	var (
		data []byte
		err  error
		name = path
	)
	if path == "-" {
		name = "stdin"
		data, err = io.ReadAll(io.LimitReader(stdin, maxDefinitionBytes+1))
	} else {
		var f *os.File
		if f, err = os.Open(path); err == nil {
			data, err = io.ReadAll(io.LimitReader(f, maxDefinitionBytes+1))
			f.Close()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("-f: read %s: %w", name, err)
	}
	if len(data) > maxDefinitionBytes {
		return nil, fmt.Errorf("-f: %s is larger than %d bytes, the daemon's request limit", name, maxDefinitionBytes)
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, fmt.Errorf("-f: %s is empty", name)
	}
	if looksLikeJSON(path, trimmed) {
		if !json.Valid(trimmed) {
			var v any
			return nil, fmt.Errorf("-f: %s is not valid JSON: %w", name, json.Unmarshal(trimmed, &v))
		}
		return trimmed, nil
	}
	body, err := deployfiles.YAMLToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("-f: %s: %w", name, err)
	}
	return body, nil
}

// looksLikeJSON: a .json file or a body starting with "{" is JSON. JSON is
// passed through untouched rather than round-tripped through YAML, which
// could change numbers and strings.
func looksLikeJSON(path string, trimmed []byte) bool {
	return strings.HasSuffix(strings.ToLower(path), ".json") || trimmed[0] == '{'
}
