package daemon

import (
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"

	"github.com/sandbox0/sandbox0d/crypto"
	"github.com/sandbox0/sandbox0d/deployments"
	"github.com/sandbox0/sandbox0d/store"
)

// nodeSealer is the keyring every sealing path of the daemon goes through
// (repository tokens, vault credentials). It seals only while this node's
// primary identity is the store's sealing recipient (store/seal.go): in a
// cluster, after `keys rotate` on another node, a node still on the old
// identity would seal secrets that the rotating node, which retired that
// identity, can no longer open. It refuses instead, naming its identity
// file and the way out, until a reload (SIGHUP) gives it the new identity.
// Opening needs no check: an identity opens what it opens.
type nodeSealer struct {
	k    atomic.Pointer[crypto.Keyring]
	st   *store.Store
	path string // the identity file, for messages
}

func newNodeSealer(k *crypto.Keyring, st *store.Store, path string) *nodeSealer {
	s := &nodeSealer{st: st, path: path}
	s.k.Store(k)
	return s
}

func (s *nodeSealer) keyring() *crypto.Keyring { return s.k.Load() }

func (s *nodeSealer) Open(owner crypto.Owner, sealed []byte) ([]byte, error) {
	return s.k.Load().Open(owner, sealed)
}

func (s *nodeSealer) Seal(owner crypto.Owner, plaintext []byte) ([]byte, error) {
	sealed, _, err := s.SealTo(owner, plaintext)
	return sealed, err
}

// SealTo seals and says to which recipient (deployments.RecipientSealer):
// the write storing the token checks it again in its own transaction.
func (s *nodeSealer) SealTo(owner crypto.Owner, plaintext []byte) ([]byte, string, error) {
	k := s.k.Load()
	var want string
	if err := s.st.View(func(tx *store.Tx) error { want = tx.SealRecipient(); return nil }); err != nil {
		return nil, "", err
	}
	if want != "" && want != k.PrimaryRecipient() {
		return nil, "", &deployments.Error{Kind: deployments.KindUnavailable, Message: fmt.Sprintf(
			"this node cannot seal secrets: its age identity %s (recipient %s) is not the cluster's sealing identity (recipient %s, set by `keys rotate` on another node); "+
				"copy the identity file from the node that rotated to %s and reload this node (SIGHUP: systemctl reload sandbox0d; with a systemd credential, restart it); "+
				"other nodes seal meanwhile", s.path, k.PrimaryRecipient(), want, s.path)}
	}
	sealed, err := k.Seal(owner, plaintext)
	return sealed, k.PrimaryRecipient(), err
}

// claimSealRecipient records this node's primary recipient as the store's
// sealing recipient when none is recorded yet (a new store, or one written
// before the record existed: the node passed the startup check, so its
// identity opens every stored secret). On bbolt the one node is the
// authority and always records its own; on etcd a recorded recipient is
// left alone: only a rotation moves it.
func (d *Daemon) claimSealRecipient(log *slog.Logger) error {
	own := d.sealer.keyring().PrimaryRecipient()
	var recorded string
	err := d.store.Update(func(tx *store.Tx) error {
		recorded = tx.SealRecipient()
		if recorded == own || recorded != "" && d.store.Engine() == "etcd" {
			return nil
		}
		return tx.SetSealRecipient(own)
	})
	if err != nil {
		return fmt.Errorf("record the sealing recipient: %w", err)
	}
	if recorded != "" && recorded != own && d.store.Engine() == "etcd" {
		log.Warn("this node's age identity is not the cluster's sealing identity: it opens what it can but refuses to seal new secrets until it has the cluster's identity file (then SIGHUP)",
			"identity_file", d.identityPath, "recipient", own, "cluster_recipient", recorded)
	}
	return nil
}

// reloadIdentity re-reads the identity file (SIGHUP): a node of a cluster
// picks up the identity another node's `keys rotate` wrote. The new keyring
// must open every stored secret, or the running one stays.
func (d *Daemon) reloadIdentity() error {
	d.rotateMu.Lock()
	defer d.rotateMu.Unlock()
	k, err := crypto.LoadKeyring(d.identityPath)
	if err != nil {
		return fmt.Errorf("identity file %s: %w (keeping the running identity)", d.identityPath, err)
	}
	if slices.Equal(k.Recipients(), d.sealer.keyring().Recipients()) {
		return nil
	}
	sealed, err := sealedSecrets(d.store)
	if err != nil {
		return err
	}
	total, stale := 0, 0
	var first crypto.Owner
	for owner, blob := range sealed {
		total++
		if !k.CanOpen(blob) {
			if stale == 0 {
				first = owner
			}
			stale++
		}
	}
	if stale > 0 {
		return fmt.Errorf("identity file %s: %d of %d sealed secrets (first: %s) cannot be opened by its identities; keeping the running identity (install the cluster's identity file and reload again)",
			d.identityPath, stale, total, first)
	}
	d.sealer.k.Store(k)
	d.log.Info("age identity reloaded", "identity_file", d.identityPath, "recipient", k.PrimaryRecipient(), "identities", k.Len())
	return d.claimSealRecipient(d.log)
}
