package daemon_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/spf13/viper"

	"github.com/sandbox0/sandbox0d/daemon"
)

// The config loader reads operator files: whatever the bytes, it returns a
// validated Config or an error — never a panic.
func FuzzLoadConfig(f *testing.F) {
	for _, s := range []string{
		"listen: 127.0.0.1:8080\n",
		"backend: upstream\nupstream:\n  url: http://x\n",
		"schedule:\n  jitter: 5s\n  misfire_grace: -1s\n",
		"local:\n  agents:\n    - id: a\n      command: [\"./h.sh\"]\n",
		"log: {level: loud}\n", "runs: {retention: {max_per_deployment: -3}}\n", "- a\n- b\n", ":\n", "\t\x00",
		"auth:\n  api_keys: [a, b]\ntls: {cert: x}\n",
	} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "config.yaml")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := daemon.LoadConfig(viper.New(), path)
		if err == nil {
			if verr := cfg.Validate(); verr != nil {
				t.Fatalf("LoadConfig returned an invalid config: %v", verr)
			}
		}
	})
}
