package local

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/sandbox0/sandbox0d/sessions"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func referenceRig(t *testing.T) *testRig {
	rig := newRig(t, []Agent{
		shAgent("agent_a", "true"),
		{ID: "agent_a", Version: 3, Command: []string{"true"}},
		shAgent("agent_b", "true"),
	}, func(c *Config) {
		c.Vaults = []Vault{{ID: "vlt_ok", File: "/dev/null"}, {ID: "vlt_missing_file", File: "/nonexistent/vault.env"}}
	})
	require.NoError(t, os.WriteFile(filepath.Join(rig.cfg.FilesDir, "report.txt"), []byte("r"), 0o600))
	return rig
}

func TestResolveAgent(t *testing.T) {
	rig := referenceRig(t)
	tests := []struct {
		id      string
		version int64
		want    int64
	}{
		{"agent_a", 0, 3}, {"agent_a", 1, 1}, {"agent_a", 3, 3}, {"agent_b", 0, 1},
		{"agent_a", 2, 0}, {"agent_zzz", 0, 0},
	}
	for _, tt := range tests {
		ref, err := rig.b.ResolveAgent(t.Context(), tt.id, tt.version)
		if tt.want == 0 {
			var nf *sessions.NotFoundError
			require.ErrorAs(t, err, &nf, "%s v%d", tt.id, tt.version)
			assert.Equal(t, "agent", nf.Field)
			continue
		}
		require.NoError(t, err)
		assert.Equal(t, sessions.AgentRef{ID: tt.id, Version: tt.want}, ref)
	}
	assert.Equal(t, "local", rig.b.Name())
}

func TestCheckReferences(t *testing.T) {
	rig := referenceRig(t)
	ok := sessions.References{Agent: sessions.AgentRef{ID: "agent_a", Version: 3}, EnvironmentID: testEnvironment,
		VaultIDs: []string{"vlt_ok"}, FileIDs: []string{"report.txt"}}
	require.NoError(t, rig.b.CheckReferences(t.Context(), ok))

	tests := []struct {
		name      string
		mutate    func(*sessions.References)
		wantField string
		wantID    string
	}{
		{"unknown agent", func(r *sessions.References) { r.Agent.ID = "agent_zzz" }, "agent", "agent_zzz"},
		{"unknown agent version", func(r *sessions.References) { r.Agent.Version = 2 }, "agent", "agent_a version 2"},
		{"unknown environment", func(r *sessions.References) { r.EnvironmentID = "env_zzz" }, "environment_id", "env_zzz"},
		{"unknown vault", func(r *sessions.References) { r.VaultIDs = []string{"vlt_ok", "vlt_zzz"} }, "vault_ids[1]", "vlt_zzz"},
		{"unknown file", func(r *sessions.References) { r.FileIDs = []string{"nope.txt"} }, "file_id", "nope.txt"},
		{"traversing file id", func(r *sessions.References) { r.FileIDs = []string{"../state.db"} }, "file_id", "../state.db"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			refs := ok
			tt.mutate(&refs)
			var nf *sessions.NotFoundError
			require.ErrorAs(t, rig.b.CheckReferences(t.Context(), refs), &nf)
			assert.Equal(t, tt.wantField, nf.Field)
			assert.Equal(t, tt.wantID, nf.ID)
		})
	}
}

func TestCreateSessionRunErrors(t *testing.T) {
	rig := referenceRig(t)
	tests := []struct {
		name     string
		mutate   func(*sessions.CreateRequest)
		wantType sessions.ErrorType
	}{
		{"agent gone", func(r *sessions.CreateRequest) { r.Agent = sessions.AgentRef{ID: "agent_a", Version: 2} }, sessions.ErrAgentArchived},
		{"environment gone", func(r *sessions.CreateRequest) { r.EnvironmentID = "env_zzz" }, sessions.ErrEnvironmentNotFound},
		{"vault gone", func(r *sessions.CreateRequest) { r.VaultIDs = []string{"vlt_zzz"} }, sessions.ErrVaultNotFound},
		{"vault file gone", func(r *sessions.CreateRequest) { r.VaultIDs = []string{"vlt_missing_file"} }, sessions.ErrVaultNotFound},
		{"file gone", func(r *sessions.CreateRequest) {
			r.Resources = []sessions.Resource{{Type: "file", FileID: "nope.txt"}}
		}, sessions.ErrFileNotFound},
		{"file id traversal", func(r *sessions.CreateRequest) {
			r.Resources = []sessions.Resource{{Type: "file", FileID: "../state.db"}}
		}, sessions.ErrFileNotFound},
		{"memory store", func(r *sessions.CreateRequest) {
			r.Resources = []sessions.Resource{{Type: "memory_store", MemoryStoreID: "memstore_1"}}
		}, sessions.ErrSelfHostedResourcesUnsupport},
		{"mount path escaping the workspace", func(r *sessions.CreateRequest) {
			r.Resources = []sessions.Resource{{Type: "file", FileID: "report.txt", MountPath: "../../etc/x"}}
		}, sessions.ErrSessionCreationRejected},
		{"two resources at one path", func(r *sessions.CreateRequest) {
			r.Resources = []sessions.Resource{{Type: "file", FileID: "report.txt", MountPath: "a"},
				{Type: "github_repository", URL: "https://github.com/acme/a", MountPath: "/workspace/a"}}
		}, sessions.ErrSessionCreationRejected},
		{"credentials in the repository url", func(r *sessions.CreateRequest) {
			r.Resources = []sessions.Resource{{Type: "github_repository", URL: "https://user:pw@github.com/acme/a"}}
		}, sessions.ErrSessionCreationRejected},
		{"non-http repository url", func(r *sessions.CreateRequest) {
			r.Resources = []sessions.Resource{{Type: "github_repository", URL: "ext::sh -c touch% /tmp/pwned"}}
		}, sessions.ErrSessionCreationRejected},
		{"option-like commit", func(r *sessions.CreateRequest) {
			r.Resources = []sessions.Resource{{Type: "github_repository", URL: "https://github.com/acme/a",
				Checkout: &sessions.Checkout{Type: "commit", SHA: "--upload-pack=evil"}}}
		}, sessions.ErrSessionCreationRejected},
		{"initial event of another type", func(r *sessions.CreateRequest) {
			r.InitialEvents = []json.RawMessage{json.RawMessage(`{"type":"user.define_outcome"}`)}
		}, sessions.ErrSessionCreationRejected},
		{"initial event not an object", func(r *sessions.CreateRequest) {
			r.InitialEvents = []json.RawMessage{json.RawMessage(`"hi"`)}
		}, sessions.ErrSessionCreationRejected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := rig.b.CreateSession(t.Context(), rig.request("agent_a", tt.mutate))
			assert.Empty(t, id)
			var runErr *sessions.RunError
			require.ErrorAs(t, err, &runErr)
			assert.Equal(t, tt.wantType, runErr.Type, runErr.Message)
		})
	}
	all, err := rig.b.store.sessionsWhere(func(*sessionRecord) bool { return true })
	require.NoError(t, err)
	assert.Empty(t, all, "a refused run leaves no session behind")
}

func TestNewValidatesTheConfig(t *testing.T) {
	st, ns := openStore(t, filepath.Join(t.TempDir(), "state.db"))
	defer st.Close()
	_, err := New(ns, Config{WorkspaceDir: t.TempDir(), Agents: []Agent{{ID: "agent_x"}}})
	var ce *ConfigError
	require.True(t, errors.As(err, &ce), "%v", err)
	assert.Equal(t, "local.agents[0].command", ce.Key)

	_, err = New(nil, Config{WorkspaceDir: t.TempDir()})
	assert.Error(t, err)
}
