package deployfiles

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Token reference fields of a resource, replaced by authorization_token.
const (
	tokenField     = "authorization_token"
	tokenFileField = "authorization_token_file"
	tokenEnvField  = "authorization_token_env"
)

// maxTokenFileBytes bounds a token file read; the daemon checks the token's
// own length limit (a larger file is surely not a token).
const maxTokenFileBytes = 64 << 10

// resolveTokens replaces authorization_token_file / authorization_token_env
// in each resources[i] with authorization_token. Errors name the field and,
// for a file, its path, never the token.
func resolveTokens(obj map[string]any, baseDir string, opts Options, fail func(field, reason string, path ...any) error) error {
	resources, ok := obj["resources"].([]any)
	if !ok {
		return nil
	}
	for i, r := range resources {
		res, ok := r.(map[string]any)
		if !ok {
			continue // the daemon names a malformed resource
		}
		field := fmt.Sprintf("resources[%d].", i)
		_, hasToken := res[tokenField]
		fileRef, hasFile := res[tokenFileField]
		envRef, hasEnv := res[tokenEnvField]
		given := 0
		for _, has := range []bool{hasToken, hasFile, hasEnv} {
			if has {
				given++
			}
		}
		if given > 1 {
			return fail(field+tokenField, "give only one of authorization_token, authorization_token_file and authorization_token_env", "resources", i)
		}
		var (
			token string
			err   error
		)
		switch {
		case hasFile:
			name, ok := fileRef.(string)
			if !ok || name == "" {
				return fail(field+tokenFileField, "must be a file path (relative to this file's directory)", "resources", i, tokenFileField)
			}
			if token, err = readTokenFile(baseDir, name); err != nil {
				return fail(field+tokenFileField, err.Error(), "resources", i, tokenFileField)
			}
			delete(res, tokenFileField)
		case hasEnv:
			name, ok := envRef.(string)
			if !ok || name == "" {
				return fail(field+tokenEnvField, "must be the name of an environment variable", "resources", i, tokenEnvField)
			}
			value, set := opts.lookupEnv(name)
			if !set {
				return fail(field+tokenEnvField, fmt.Sprintf("environment variable %s is not set: export it before applying, or use authorization_token_file", name), "resources", i, tokenEnvField)
			}
			if token = value; token == "" {
				return fail(field+tokenEnvField, fmt.Sprintf("environment variable %s is empty: set it to the token", name), "resources", i, tokenEnvField)
			}
			delete(res, tokenEnvField)
		default:
			continue
		}
		res[tokenField] = token
	}
	return nil
}

// readTokenFile reads a token from a file, without its trailing newline (or
// other surrounding white space: a token has none).
func readTokenFile(baseDir, name string) (string, error) {
	path := name
	if !filepath.IsAbs(path) {
		path = filepath.Join(baseDir, path)
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("cannot read %s: %v", path, unwrapPath(err))
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxTokenFileBytes+1))
	if err != nil {
		return "", fmt.Errorf("cannot read %s: %v", path, unwrapPath(err))
	}
	if len(data) > maxTokenFileBytes {
		return "", fmt.Errorf("%s is larger than %d bytes: it should hold only the token", path, maxTokenFileBytes)
	}
	token := string(bytes.TrimSpace(data))
	if token == "" {
		return "", fmt.Errorf("%s is empty: write the token into it", path)
	}
	return token, nil
}
