// Package tzdb is the one timezone database schedules use: a copy of the Go
// toolchain's lib/time/zoneinfo.zip, the very file time/tzdata is generated
// from, embedded in the binary. Zones are loaded from it and nothing else.
//
// time.LoadLocation is not used because it reads $ZONEINFO and the host's
// /usr/share/zoneinfo before the embedded time/tzdata: names that only the
// host knows ("right/UTC", "posix/UTC") would be accepted, and fire times
// would follow the host's tzdata version, so a deployment moved to another
// host could change behaviour or stop parsing. time/tzdata offers no API to
// list its names or to load from it alone (its loader is reachable only by
// a linkname the linker refuses), hence the copy. TestEmbeddedCopyMatchesToolchain
// fails when the copy and the toolchain's file differ; `go generate
// ./schedule/tzdb` refreshes it.
package tzdb

//go:generate cp $GOROOT/lib/time/zoneinfo.zip zoneinfo.zip

import (
	"archive/zip"
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"
)

//go:embed zoneinfo.zip
var zipData []byte

// ErrUnknown is returned for a name the embedded database does not hold.
var ErrUnknown = errors.New("not an IANA timezone name of the embedded tz database")

// index maps every zone name of the embedded zip to its entry.
var index = sync.OnceValues(func() (map[string]*zip.File, error) {
	r, err := zip.NewReader(bytes.NewReader(zipData), int64(len(zipData)))
	if err != nil {
		return nil, fmt.Errorf("embedded zoneinfo.zip: %w", err)
	}
	m := make(map[string]*zip.File, len(r.File))
	for _, f := range r.File {
		if !f.FileInfo().IsDir() {
			m[f.Name] = f
		}
	}
	return m, nil
})

// loaded caches decoded zones: only valid names are stored, so the cache is
// bounded by the database.
var loaded sync.Map // name → *time.Location

// Load returns the zone called name, decoded from the embedded database.
// "UTC" is time.UTC. Any other name, "Local" included, that is not an
// entry of the database is ErrUnknown.
func Load(name string) (*time.Location, error) {
	if name == "UTC" {
		return time.UTC, nil
	}
	if loc, ok := loaded.Load(name); ok {
		return loc.(*time.Location), nil
	}
	m, err := index()
	if err != nil {
		return nil, err
	}
	f, ok := m[name]
	if !ok {
		return nil, ErrUnknown
	}
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("embedded zone %s: %w", name, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("embedded zone %s: %w", name, err)
	}
	loc, err := time.LoadLocationFromTZData(name, data)
	if err != nil {
		return nil, fmt.Errorf("embedded zone %s: %w", name, err)
	}
	loaded.Store(name, loc)
	return loc, nil
}

// Names lists every zone name Load accepts, sorted.
func Names() []string {
	m, err := index()
	if err != nil {
		return []string{"UTC"}
	}
	names := make([]string, 0, len(m)+1)
	for name := range m {
		names = append(names, name)
	}
	if _, ok := m["UTC"]; !ok {
		names = append(names, "UTC")
	}
	slices.Sort(names)
	return names
}
