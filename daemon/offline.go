package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/sandbox0/sandbox0d/crypto"
	"github.com/sandbox0/sandbox0d/deployments"
	"github.com/sandbox0/sandbox0d/sessions/local"
	"github.com/sandbox0/sandbox0d/store"
)

// Offline maintenance on a stopped data directory. The store's file lock
// makes each of these fail fast with a clear message if a daemon still runs.

// RotateOffline rotates the age identity of a stopped data dir: it re-seals
// every secret in one transaction and retires the old identity. It returns
// the new recipient and how many secrets were re-sealed.
func RotateOffline(dataDir, identityFile string, log *slog.Logger) (string, int, error) {
	st, err := store.Open(filepath.Join(dataDir, store.FileName), store.Options{})
	if err != nil {
		return "", 0, err
	}
	defer st.Close()
	path, fromCredential := crypto.ResolveIdentityPath(dataDir, identityFile)
	if fromCredential {
		return "", 0, fmt.Errorf("the identity %s is a systemd credential (read-only); pass --identity-file with a writable copy, then install the result as the credential", path)
	}
	return rotateIn(st, path, log)
}

// RotateCluster rotates the secrets of the cluster whose etcd store the
// config names (store.etcd.*), with the identity file identityFile, a
// writable copy of the cluster's identity (as a systemd credential is
// read-only to the daemon). The nodes may keep running: from the commit on
// they refuse to seal until they run with the new identity (install the
// rotated file as each node's credential and restart it, or copy it and
// reload).
func RotateCluster(cfg Config, identityFile string, log *slog.Logger) (string, int, error) {
	if identityFile == "" {
		return "", 0, errors.New("--identity-file: name a writable copy of the cluster's identity file; it is rotated in place")
	}
	if err := cfg.checkEtcdKeys(); err != nil {
		return "", 0, err
	}
	opts, err := etcdOptions(cfg.Store.Etcd)
	if err != nil {
		return "", 0, err
	}
	st, err := store.OpenEtcd(opts)
	if err != nil {
		return "", 0, err
	}
	defer st.Close()
	return rotateIn(st, identityFile, log)
}

// rotateIn rotates the identity file at path over the secrets of st.
func rotateIn(st *store.Store, path string, log *slog.Logger) (string, int, error) {
	sealed, err := sealedSecrets(st)
	if err != nil {
		return "", 0, err
	}
	k, err := crypto.StartupKeyring(path, false, sealed, log)
	if err != nil {
		return "", 0, err
	}
	svc := deployments.NewService(deployments.Config{Store: st, Sealer: k, Logger: log})
	next, err := RotateIdentity(path, svc, st, nil, log)
	if err != nil {
		return "", 0, err
	}
	n := 0
	for range sealed {
		n++
	}
	return next.PrimaryRecipient(), n, nil
}

// GenerateIdentity writes a new age identity file (mode 0600); it refuses to
// overwrite an existing one, which may be the only key to stored tokens.
func GenerateIdentity(path string, log *slog.Logger) (string, error) {
	if _, err := os.Stat(path); err == nil {
		return "", fmt.Errorf("%s already exists; refusing to overwrite an identity", path)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	k, _, err := crypto.LoadOrCreateKeyring(path, log)
	if err != nil {
		return "", err
	}
	return k.PrimaryRecipient(), nil
}

// CompactOffline compacts the database of a stopped data dir (store.Compact)
// and returns the file sizes before and after.
func CompactOffline(dataDir string) (before, after int64, err error) {
	return store.Compact(filepath.Join(dataDir, store.FileName))
}

// ForgetUnopenableOffline drops, in a stopped data dir, the sealed tokens
// that no identity opens: the one in the identity file (if it exists) and
// those in extraIdentityFiles (e.g. retired identities the operator kept).
// It is the way out when the daemon refuses to start because a restored
// backup was sealed with an identity that is gone. Everything else stays.
func ForgetUnopenableOffline(dataDir, identityFile string, extraIdentityFiles []string, dryRun bool) ([]deployments.ForgottenToken, error) {
	st, err := store.Open(filepath.Join(dataDir, store.FileName), store.Options{})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	path, _ := crypto.ResolveIdentityPath(dataDir, identityFile)
	var keyrings []*crypto.Keyring
	for _, p := range append([]string{path}, extraIdentityFiles...) {
		k, err := crypto.LoadKeyring(p)
		switch {
		case errors.Is(err, fs.ErrNotExist) && p == path:
			continue // no identity at all: every token is unopenable
		case err != nil:
			return nil, fmt.Errorf("identity file %s: %w", p, err)
		}
		keyrings = append(keyrings, k)
	}
	canOpen := deployments.OpenableBy(keyrings...)
	forgotten, err := deployments.ForgetUnopenableTokens(st, canOpen, dryRun)
	if err != nil {
		return nil, err
	}
	// Vault credentials created through the API are sealed secrets too:
	// without dropping the unopenable ones the daemon would still refuse to
	// start. They are listed as resource type vault_credential (the vault
	// in DeploymentID, the credential id in URL, its secret_name as name).
	ns, err := st.Namespace(store.NamespaceCatalog)
	if err != nil {
		return nil, err
	}
	creds, err := local.ForgetUnopenableCredentials(ns, canOpen, dryRun)
	if err != nil {
		return forgotten, err
	}
	for _, c := range creds {
		forgotten = append(forgotten, deployments.ForgottenToken{DeploymentID: c.VaultID, DeploymentName: c.SecretName,
			Position: -1, ResourceType: VaultCredentialResource, URL: c.ID})
	}
	return forgotten, nil
}

// VaultCredentialResource marks a forgotten vault credential among the
// tokens ForgetUnopenableOffline returns.
const VaultCredentialResource = "vault_credential"
