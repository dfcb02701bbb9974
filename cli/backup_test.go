package cli

import (
	"encoding/binary"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/sandbox0/sandbox0d/internal/wire"
)

// realBoltBytes builds a bbolt database with a few buckets and returns its
// bytes and page size.
func realBoltBytes(t *testing.T) ([]byte, int) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "source.db")
	db, err := bolt.Open(path, 0o600, nil)
	require.NoError(t, err)
	require.NoError(t, db.Update(func(tx *bolt.Tx) error {
		for _, name := range []string{"deployments", "runs", "meta"} {
			b, err := tx.CreateBucket([]byte(name))
			if err != nil {
				return err
			}
			for i := range 150 {
				if err := b.Put(fmt.Appendf(nil, "key-%04d", i), make([]byte, 120)); err != nil {
					return err
				}
			}
		}
		return nil
	}))
	pageSize := db.Info().PageSize
	require.NoError(t, db.Close())
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	return data, pageSize
}

// corruptLeafPage garbles the type flags of the first leaf page (bbolt page
// header: 8-byte id, then 2-byte flags; 0x02 marks a leaf).
func corruptLeafPage(t *testing.T, data []byte, pageSize int) []byte {
	t.Helper()
	out := append([]byte(nil), data...)
	for off := 2 * pageSize; off+pageSize <= len(out); off += pageSize {
		if binary.LittleEndian.Uint16(out[off+8:]) == 0x02 && binary.LittleEndian.Uint16(out[off+10:]) > 0 {
			binary.LittleEndian.PutUint16(out[off+8:], 0x55)
			return out
		}
	}
	t.Fatal("no leaf page found")
	return nil
}

// backupServer is a fake daemon serving body on GET /admin/backup over a socket.
func backupServer(t *testing.T, body []byte) (socket string, calls *atomic.Int32) {
	t.Helper()
	calls = new(atomic.Int32)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /admin/backup", func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		_, _ = w.Write(body)
	})
	return serveUnix(t, mux), calls
}

func TestBackupWritesAndChecks(t *testing.T) {
	data, _ := realBoltBytes(t)
	socket, calls := backupServer(t, data)
	out := filepath.Join(t.TempDir(), "backup.db")

	res := runCLI(t, cronNow, nil, nil, "--socket", socket, "backup", "-o", out)
	require.NoError(t, res.err)
	assert.Equal(t, fmt.Sprintf("wrote %d bytes to %s\nconsistency check: ok\n", len(data), out), res.stdout)
	assert.EqualValues(t, 1, calls.Load())

	got, err := os.ReadFile(out)
	require.NoError(t, err)
	assert.Equal(t, data, got)
	info, err := os.Stat(out)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm(), "a backup holds secrets")
	assert.NoFileExists(t, out+".tmp")
}

func TestBackupFailsCheck(t *testing.T) {
	data, pageSize := realBoltBytes(t)
	cases := []struct {
		name    string
		body    []byte
		message string
	}{
		{"truncated to half", data[:len(data)/2], "is truncated"},
		{"truncated to one page", data[:pageSize], "as a bbolt database"},
		{"corrupted leaf page", corruptLeafPage(t, data, pageSize), "unexpected type/flags"},
		{"not a database", []byte("<html>oops</html>"), "as a bbolt database"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			socket, _ := backupServer(t, tc.body)
			dir := t.TempDir()
			out := filepath.Join(dir, "backup.db")
			// A previous good backup must survive a failed one.
			require.NoError(t, os.WriteFile(out, []byte("previous backup"), 0o600))

			res := runCLI(t, cronNow, nil, nil, "--socket", socket, "backup", "--force", "-o", out)
			require.Error(t, res.err)
			assert.Contains(t, res.err.Error(), "consistency check")
			assert.Contains(t, res.err.Error(), tc.message)
			assert.NotContains(t, res.stdout, "consistency check: ok")

			kept, err := os.ReadFile(out)
			require.NoError(t, err)
			assert.Equal(t, "previous backup", string(kept))
			temps := backupTemps(t, dir)
			require.Len(t, temps, 1, "the failed download is kept for inspection")
			assert.Contains(t, res.err.Error(), temps[0])
		})
	}
}

func TestBackupToStdout(t *testing.T) {
	data, _ := realBoltBytes(t)
	socket, _ := backupServer(t, data)
	res := runCLI(t, cronNow, nil, nil, "--socket", socket, "backup", "-o", "-")
	require.NoError(t, res.err)
	assert.Equal(t, string(data), res.stdout)
	assert.Contains(t, res.stderr, fmt.Sprintf("wrote %d bytes to stdout", len(data)))
}

func TestBackupRefusesTCP(t *testing.T) {
	data, _ := realBoltBytes(t)
	socket, calls := backupServer(t, data)
	out := filepath.Join(t.TempDir(), "backup.db")
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
	}{
		{"flag", nil, []string{"--socket", socket, "--addr", "http://127.0.0.1:1", "backup", "-o", out}},
		{"env", map[string]string{envAddr: "http://127.0.0.1:1"}, []string{"--socket", socket, "backup", "-o", out}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := runCLI(t, cronNow, tc.env, nil, tc.args...)
			require.Error(t, res.err)
			assert.Contains(t, res.err.Error(), "only served over the daemon's Unix socket")
		})
	}
	assert.Zero(t, calls.Load())
	assert.NoFileExists(t, out)
}

func TestBackupReportsDaemonError(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /admin/backup", func(w http.ResponseWriter, r *http.Request) {
		wire.WriteError(w, http.StatusForbidden, "backups are only served over the Unix socket")
	})
	socket := serveUnix(t, mux)
	out := filepath.Join(t.TempDir(), "backup.db")
	res := runCLI(t, cronNow, nil, nil, "--socket", socket, "backup", "-o", out)
	require.Error(t, res.err)
	assert.Contains(t, res.err.Error(), "backups are only served over the Unix socket (permission_error, HTTP 403, request req_")
	assert.NoFileExists(t, out)
	assert.NoFileExists(t, out+".tmp")
}

// The foot-gun: `backup -o <data_dir>/sandbox0d.db` renamed the copy
// over the live database. Every spelling of the live file or the data dir is
// refused and leaves the database as it was.
func TestBackupRefusesTheLiveDatabase(t *testing.T) {
	d := startRealDaemon(t, nil)
	db := filepath.Join(d.cfg.DataDir, "sandbox0d.db")
	before, err := os.Stat(db)
	require.NoError(t, err)

	link := filepath.Join(t.TempDir(), "data-link")
	require.NoError(t, os.Symlink(d.cfg.DataDir, link))
	hard := filepath.Join(t.TempDir(), "hardlink.db")
	require.NoError(t, os.Link(db, hard))
	for _, tc := range []struct{ name, target, want string }{
		{"the database", db, "is the daemon's live database"},
		{"through a symlinked dir", filepath.Join(link, "sandbox0d.db"), "is the daemon's live database"},
		{"a hard link to it", hard, "is the daemon's live database"},
		{"a new file in the data dir", filepath.Join(d.cfg.DataDir, "copy.db"), "inside the daemon's data directory"},
		{"a subdirectory of it", filepath.Join(d.cfg.DataDir, "keys", "copy.db"), "inside the daemon's data directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := runCLI(t, cronNow, nil, nil, "--socket", d.socket, "backup", "--force", "-o", tc.target)
			require.Error(t, res.err)
			assert.Contains(t, res.err.Error(), tc.want)
			assert.NotContains(t, res.stdout, "consistency check: ok")
			after, err := os.Stat(db)
			require.NoError(t, err)
			assert.True(t, os.SameFile(before, after), "the live database file was replaced")
			assert.NoFileExists(t, tc.target+".tmp")
		})
	}
	// The daemon still answers, on the same file.
	res := runCLI(t, cronNow, nil, nil, "--socket", d.socket, "backup", "-o", filepath.Join(t.TempDir(), "ok.db"))
	require.NoError(t, res.err)
}

func TestBackupNeverOverwritesWithoutForce(t *testing.T) {
	data, _ := realBoltBytes(t)
	socket, _ := backupServer(t, data)
	out := filepath.Join(t.TempDir(), "backup.db")
	require.NoError(t, os.WriteFile(out, []byte("previous backup"), 0o600))

	res := runCLI(t, cronNow, nil, nil, "--socket", socket, "backup", "-o", out)
	require.Error(t, res.err)
	assert.Contains(t, res.err.Error(), "already exists; pass --force to replace it")
	kept, err := os.ReadFile(out)
	require.NoError(t, err)
	assert.Equal(t, "previous backup", string(kept))
	assert.NoFileExists(t, out+".tmp")

	res = runCLI(t, cronNow, nil, nil, "--socket", socket, "backup", "--force", "-o", out)
	require.NoError(t, res.err)
	got, err := os.ReadFile(out)
	require.NoError(t, err)
	assert.Equal(t, data, got)
}

// backupTemps lists the temporary backup files left in dir.
func backupTemps(t *testing.T, dir string) []string {
	t.Helper()
	temps, err := filepath.Glob(filepath.Join(dir, ".backup.db.*.tmp"))
	require.NoError(t, err)
	return temps
}

// Names planted where the old code put its temporary file (F.tmp) are
// never opened: a symlink there does not make the backup overwrite its
// target, and a world-readable file there does not make the backup
// world-readable. The result is 0600 whatever the umask.
func TestBackupIgnoresPlantedTemporaryFiles(t *testing.T) {
	data, _ := realBoltBytes(t)
	socket, _ := backupServer(t, data)
	t.Run("symlink", func(t *testing.T) {
		dir, outside := t.TempDir(), t.TempDir()
		victim := filepath.Join(outside, "victim")
		require.NoError(t, os.WriteFile(victim, []byte("precious"), 0o644))
		out := filepath.Join(dir, "backup.db")
		require.NoError(t, os.Symlink(victim, out+".tmp"))

		res := runCLI(t, cronNow, nil, nil, "--socket", socket, "backup", "-o", out)
		require.NoError(t, res.err)
		kept, err := os.ReadFile(victim)
		require.NoError(t, err)
		assert.Equal(t, "precious", string(kept), "the backup was written through the planted symlink")
		entries, err := os.ReadDir(outside)
		require.NoError(t, err)
		assert.Len(t, entries, 1, "nothing else was written outside")
		target, err := os.Readlink(out + ".tmp")
		require.NoError(t, err)
		assert.Equal(t, victim, target, "the planted link is left alone")
		assertPrivateBackup(t, out, data)
	})
	t.Run("world-readable file", func(t *testing.T) {
		dir := t.TempDir()
		out := filepath.Join(dir, "backup.db")
		require.NoError(t, os.WriteFile(out+".tmp", []byte("planted"), 0o666))
		require.NoError(t, os.Chmod(out+".tmp", 0o666))
		res := runCLI(t, cronNow, nil, nil, "--socket", socket, "backup", "-o", out)
		require.NoError(t, res.err)
		planted, err := os.ReadFile(out + ".tmp")
		require.NoError(t, err)
		assert.Equal(t, "planted", string(planted))
		assertPrivateBackup(t, out, data)
	})
	t.Run("permissive umask", func(t *testing.T) {
		old := syscall.Umask(0)
		defer syscall.Umask(old)
		out := filepath.Join(t.TempDir(), "backup.db")
		res := runCLI(t, cronNow, nil, nil, "--socket", socket, "backup", "-o", out)
		require.NoError(t, res.err)
		assertPrivateBackup(t, out, data)
	})
}

func assertPrivateBackup(t *testing.T, out string, data []byte) {
	t.Helper()
	info, err := os.Lstat(out)
	require.NoError(t, err)
	assert.True(t, info.Mode().IsRegular(), "the backup is a regular file")
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	got, err := os.ReadFile(out)
	require.NoError(t, err)
	assert.Equal(t, data, got)
	assert.Empty(t, backupTemps(t, filepath.Dir(out)))
}

// A file created at the target while the copy downloads is not replaced.
func TestBackupDoesNotClobberAFileThatAppears(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "backup.db")
	data, _ := realBoltBytes(t)
	tmp := out + ".tmp"
	require.NoError(t, os.WriteFile(tmp, data, 0o600))
	require.NoError(t, os.WriteFile(out, []byte("appeared"), 0o600))
	err := moveInto(tmp, out, false)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "appeared while the backup was written")
	kept, _ := os.ReadFile(out)
	assert.Equal(t, "appeared", string(kept))
	assert.FileExists(t, tmp)
}
