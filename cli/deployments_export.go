package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
)

func newDeploymentsExportCommand(cc *commandContext) *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "export [ID...] -o DIR",
		Short: "Write deployments as YAML files for `sandbox0d apply` (all live ones when no id is given; tokens left out)",
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := cc.client(cmd)
			if err != nil {
				return err
			}
			var raws []json.RawMessage
			if len(args) == 0 {
				list, err := collectPages(cmd.Context(), client, "/v1/deployments", nil, 0, deploymentsPageSize)
				if err != nil {
					return err
				}
				raws = list.Data
			}
			for _, id := range args {
				if err := requireID("deployment", id); err != nil {
					return err
				}
				data, err := client.get(cmd.Context(), deploymentPath(id), nil)
				if err != nil {
					return err
				}
				raws = append(raws, data)
			}
			files, err := exportFiles(raws)
			if err != nil {
				return err
			}
			written, err := writeExport(dir, files)
			if cc.json {
				if jerr := printValueJSON(cmd.OutOrStdout(), written); err == nil {
					err = jerr
				}
			} else {
				for _, w := range written {
					fmt.Fprintf(cmd.OutOrStdout(), "%s  %s\n", w.ID, w.File)
				}
				if n := unmanaged(files); n > 0 && err == nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "Note: %d of these deployments belong to no set; their files say adopt: <id>, so the first apply takes them into the set (same ids, runs kept).\n", n)
				}
				if err == nil {
					fmt.Fprintf(cmd.OutOrStdout(), "Wrote %d file(s) to %s. Set the TOKEN_* variables they name (if any), then: sandbox0d apply -f %s --dry-run\n", len(written), dir, dir)
				}
			}
			return err
		},
	}
	cmd.Flags().StringVarP(&dir, "output", "o", "", "the directory to write into; created if missing, existing files are never overwritten (required)")
	_ = cmd.MarkFlagRequired("output")
	_ = cmd.MarkFlagDirname("output")
	return cmd
}

// exportedFile is one file to write.
type exportedFile struct {
	id, name string
	data     []byte
	// managed: the deployment belongs to a set, so the file carries its key.
	managed bool
}

// exportWritten is what export reports per file (its --json shape).
type exportWritten struct {
	ID   string `json:"id"`
	File string `json:"file"`
}

// exportFiles renders each deployment and gives it a file name from its
// name; deployments that share a name all get their id added, so a file's
// name does not depend on the order the daemon listed them in.
func exportFiles(raws []json.RawMessage) ([]exportedFile, error) {
	decoded := make([]exportDeployment, len(raws))
	byName := map[string]int{}
	for i, raw := range raws {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&decoded[i]); err != nil {
			return nil, fmt.Errorf("decode a deployment from the daemon's answer: %w", err)
		}
		byName[safeFileName(decoded[i].Name, decoded[i].ID)]++
	}
	files := make([]exportedFile, 0, len(raws))
	for _, d := range decoded {
		if d.ArchivedAt != nil {
			return nil, fmt.Errorf("deployment %s is archived: only live deployments can be exported (apply would create it anew)", d.ID)
		}
		data, err := renderExport(d)
		if err != nil {
			return nil, fmt.Errorf("deployment %s: %w", d.ID, err)
		}
		name := safeFileName(d.Name, d.ID)
		if byName[name] > 1 {
			name = safeFileName(d.Name+"-"+d.ID, d.ID)
		}
		files = append(files, exportedFile{id: d.ID, name: name + ".yaml", data: data, managed: d.ManagedBy != nil})
	}
	return files, nil
}

func unmanaged(files []exportedFile) int {
	n := 0
	for _, f := range files {
		if !f.managed {
			n++
		}
	}
	return n
}

// writeExport writes the files, refusing to replace any file already there
// (an export is never a way to lose edits). It reports what was written
// before an error too.
func writeExport(dir string, files []exportedFile) ([]exportWritten, error) {
	written := []exportWritten{}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return written, fmt.Errorf("-o %s: %w", dir, err)
	}
	for _, f := range files {
		path := filepath.Join(dir, f.name)
		out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, os.ErrExist) {
			return written, fmt.Errorf("-o %s: %s already exists: export into an empty directory, or move it away", dir, f.name)
		}
		if err != nil {
			return written, fmt.Errorf("-o %s: %w", dir, err)
		}
		_, err = out.Write(f.data)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return written, fmt.Errorf("-o %s: write %s: %w", dir, f.name, err)
		}
		written = append(written, exportWritten{ID: f.id, File: path})
	}
	return written, nil
}

// safeFileName keeps letters, digits, '.', '_' and '-' of a deployment
// name (anything else becomes '-'), never starts with a dot (apply skips
// dot files) and falls back to the id.
func safeFileName(name, id string) string {
	var b strings.Builder
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-', r == '.':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	s := strings.TrimLeft(b.String(), ".-")
	if len(s) > 100 {
		s = s[:100]
	}
	if strings.Trim(s, "-._") == "" {
		return id
	}
	return s
}
