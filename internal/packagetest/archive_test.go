package packagetest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// entry is one member of a tar archive as a package list shows it.
type entry struct {
	dir     bool
	mode    int64
	size    int64
	sha256  string
	mtime   time.Time
	owner   string
	content []byte
}

// arMembers reads a .deb's ar archive (the format is a global header and
// 60-byte member headers, data padded to even lengths).
func arMembers(t *testing.T, path string) (names []string, members map[string][]byte) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(data, []byte("!<arch>\n")) {
		t.Fatalf("%s is not an ar archive", path)
	}
	members = map[string][]byte{}
	for rest := data[8:]; len(rest) > 0; {
		if len(rest) < 60 {
			t.Fatalf("%s: truncated ar header", path)
		}
		name := strings.TrimSuffix(strings.TrimSpace(string(rest[:16])), "/")
		size, err := strconv.Atoi(strings.TrimSpace(string(rest[48:58])))
		if err != nil || 60+size > len(rest) {
			t.Fatalf("%s: bad ar member size %q", path, rest[48:58])
		}
		names = append(names, name)
		members[name] = rest[60 : 60+size]
		rest = rest[60+size+size%2:]
	}
	return names, members
}

// tarEntries lists a gzipped tar by name.
func tarEntries(t *testing.T, gz []byte) map[string]entry {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]entry{}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		content, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		e := entry{dir: h.Typeflag == tar.TypeDir, mode: h.Mode, size: h.Size, mtime: h.ModTime.UTC(),
			owner: fmt.Sprintf("%s:%s %d:%d", h.Uname, h.Gname, h.Uid, h.Gid), content: content}
		if !e.dir {
			e.sha256 = fmt.Sprintf("%x", sha256.Sum256(content))
		}
		out[strings.TrimSuffix(h.Name, "/")] = e
	}
}
