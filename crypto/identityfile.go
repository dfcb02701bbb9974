package crypto

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"filippo.io/age"
)

const (
	// CredentialName is the systemd credential (LoadCredential=sandbox0d-identity:...)
	// that, when present, replaces the identity file in the data directory.
	CredentialName = "sandbox0d-identity"
	// DefaultIdentityFile is the identity file's path relative to the data directory.
	DefaultIdentityFile = "keys/identity.age.txt"

	// maxIdentityFileSize bounds what LoadKeyring reads; a real file is well
	// under a kilobyte per identity.
	maxIdentityFileSize = 1 << 20

	x25519IdentityPrefix = "AGE-SECRET-KEY-1"
	pqIdentityPrefix     = "AGE-SECRET-KEY-PQ-1"
)

// ResolveIdentityPath picks the identity file: the --identity-file flag wins,
// then a systemd credential named CredentialName in $CREDENTIALS_DIRECTORY
// (only if that file exists), then DefaultIdentityFile under dataDir.
// fromCredential tells the caller the file is read-only and managed by systemd:
// it must not be created or rotated in place.
func ResolveIdentityPath(dataDir, flagPath string) (path string, fromCredential bool) {
	if flagPath != "" {
		return flagPath, false
	}
	if dir := os.Getenv("CREDENTIALS_DIRECTORY"); dir != "" {
		candidate := filepath.Join(dir, CredentialName)
		if info, err := os.Stat(candidate); err == nil && !info.IsDir() {
			return candidate, true
		}
	}
	return filepath.Join(dataDir, DefaultIdentityFile), false
}

// LoadKeyring reads an identity file: one AGE-SECRET-KEY-1... line per
// identity, oldest first, the last one primary; blank lines and lines starting
// with '#' are ignored. A missing file yields an error wrapping fs.ErrNotExist.
// Errors name the path and line number, never the line.
func LoadKeyring(path string) (*Keyring, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("identity file %s: %w", path, err)
	}
	defer f.Close()
	identities, err := parseIdentities(f)
	if err != nil {
		return nil, fmt.Errorf("identity file %s: %w", path, err)
	}
	return newKeyring(path, identities)
}

// parseIdentities implements the identity file grammar of LoadKeyring.
func parseIdentities(r io.Reader) ([]*age.X25519Identity, error) {
	limited := &io.LimitedReader{R: r, N: maxIdentityFileSize + 1}
	scanner := bufio.NewScanner(limited)
	scanner.Buffer(make([]byte, 0, 4096), maxIdentityFileSize+1)
	var identities []*age.X25519Identity
	for lineNo := 1; scanner.Scan(); lineNo++ {
		line := strings.TrimSpace(scanner.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
			continue
		case strings.HasPrefix(line, pqIdentityPrefix):
			return nil, fmt.Errorf("line %d: post-quantum age identities are not supported; use an X25519 identity (age-keygen without -pq)", lineNo)
		case !strings.HasPrefix(line, x25519IdentityPrefix):
			return nil, fmt.Errorf("line %d: not an age X25519 identity (expected a line starting with %s)", lineNo, x25519IdentityPrefix)
		}
		// age's parse error may echo characters of the key; drop it.
		id, err := age.ParseX25519Identity(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: malformed age X25519 identity (bad encoding or checksum)", lineNo)
		}
		identities = append(identities, id)
	}
	if err := scanner.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("file is larger than %d bytes", maxIdentityFileSize)
		}
		return nil, fmt.Errorf("read: %w", err)
	}
	if limited.N == 0 {
		return nil, fmt.Errorf("file is larger than %d bytes", maxIdentityFileSize)
	}
	if len(identities) == 0 {
		return nil, errors.New("no identities found (expected AGE-SECRET-KEY-1... lines)")
	}
	return identities, nil
}

// formatIdentityFile renders identities (oldest first) in the format
// LoadKeyring reads, with each public key as a comment so an operator can
// tell the lines apart without decoding them.
func formatIdentityFile(identities []*age.X25519Identity) []byte {
	var b bytes.Buffer
	b.WriteString("# sandbox0d age identities. Keep this file secret and back it up:\n")
	b.WriteString("# without it, sealed secrets (authorization tokens) cannot be opened.\n")
	b.WriteString("# The last identity is primary (new secrets are sealed to it); all are tried for opening.\n")
	for _, id := range identities {
		b.WriteString("\n# public key: ")
		b.WriteString(id.Recipient().String())
		b.WriteString("\n")
		b.WriteString(id.String())
		b.WriteString("\n")
	}
	return b.Bytes()
}
