package local

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// maxVaultFileBytes bounds what a vault file may hold; vaults are a handful
// of secrets, not data.
const maxVaultFileBytes = 1 << 20

// readVault returns the variables of a vault. Errors name the vault and the
// file but never a value.
func readVault(v Vault, credentialsDir string) (map[string]string, error) {
	path := v.File
	if v.Credential != "" {
		if credentialsDir == "" {
			return nil, fmt.Errorf("vault %s: credential %q: no credentials directory ($CREDENTIALS_DIRECTORY is unset)", v.ID, v.Credential)
		}
		path = filepath.Join(credentialsDir, v.Credential)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("vault %s: %w", v.ID, err)
	}
	defer f.Close()
	data, err := readAtMost(f, maxVaultFileBytes)
	if err != nil {
		return nil, fmt.Errorf("vault %s: reading %s: %w", v.ID, path, err)
	}
	vars, err := parseEnvFile(data)
	if err != nil {
		return nil, fmt.Errorf("vault %s: %s: %w", v.ID, path, err)
	}
	return vars, nil
}

// parseEnvFile reads KEY=VALUE lines. Blank lines and lines starting with #
// are skipped, an "export " prefix is allowed, and one pair of matching
// quotes around a value is removed; there is no other escaping.
func parseEnvFile(data []byte) (map[string]string, error) {
	vars := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, maxVaultFileBytes)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		key, value, ok := strings.Cut(line, "=")
		key = strings.TrimSpace(key)
		if !ok || key == "" || strings.ContainsAny(key, " \t\x00") {
			// Say where, never what: the line may hold a secret.
			return nil, fmt.Errorf("line %d is not KEY=VALUE", n)
		}
		value = strings.TrimSpace(value)
		if len(value) >= 2 && (value[0] == '"' || value[0] == '\'') && value[len(value)-1] == value[0] {
			value = value[1 : len(value)-1]
		}
		if strings.ContainsRune(value, 0) {
			return nil, fmt.Errorf("line %d: value contains a NUL byte", n)
		}
		vars[key] = value
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return vars, nil
}

func readAtMost(r io.Reader, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("larger than %d bytes", limit)
	}
	return data, nil
}
