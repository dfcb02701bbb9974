package tzdb

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The embedded copy is the toolchain's zoneinfo.zip, from which time/tzdata
// is generated: the names and rules accepted are exactly time/tzdata's.
func TestEmbeddedCopyMatchesToolchain(t *testing.T) {
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Skipf("go env GOROOT: %v", err)
	}
	path := filepath.Join(strings.TrimSpace(string(out)), "lib", "time", "zoneinfo.zip")
	want, err := os.ReadFile(path)
	if err != nil {
		t.Skipf("toolchain zoneinfo.zip not readable: %v", err)
	}
	if !bytes.Equal(want, zipData) {
		t.Fatalf("schedule/tzdb/zoneinfo.zip differs from %s (the data time/tzdata embeds): run go generate ./schedule/tzdb", path)
	}
}

func TestEveryNameLoads(t *testing.T) {
	names := Names()
	if len(names) < 400 {
		t.Fatalf("only %d names", len(names))
	}
	for _, name := range names {
		loc, err := Load(name)
		if err != nil {
			t.Fatalf("Load(%q): %v", name, err)
		}
		if loc.String() != name {
			t.Errorf("Load(%q) is called %q", name, loc.String())
		}
	}
	ny, _ := Load("America/New_York")
	if _, off := time.Date(2026, 7, 1, 12, 0, 0, 0, ny).Zone(); off != -4*3600 {
		t.Errorf("New York summer offset %d", off)
	}
}

// Names only the host's zoneinfo has are unknown, whatever the host holds.
func TestHostOnlyNamesAreUnknown(t *testing.T) {
	for _, name := range []string{"right/UTC", "posix/UTC", "posix/Europe/Berlin", "Local", "", "utc",
		"America/New_York ", "../../etc/passwd", "zone.tab", "tzdata.zi", "posixrules"} {
		if _, err := Load(name); !errors.Is(err, ErrUnknown) {
			t.Errorf("Load(%q) = %v, want ErrUnknown", name, err)
		}
	}
}
