package local

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/sandbox0/sandbox0d/sessions"
	"github.com/sandbox0/sandbox0d/sessions/local/projection"
	"github.com/sandbox0/sandbox0d/sessions/local/sandbox"
)

// Projector is the egress proxy as the backend uses it for credential
// projection (egress.Proxy implements it).
type Projector interface {
	// Project registers a session's credentials with the proxy until
	// release.
	Project(sessionID string, s *projection.Session) (release func())
	// TrustBundle is the host path of the bundle (system roots plus the
	// daemon's CA) a projecting sandbox trusts; "" when the proxy has no CA.
	TrustBundle() string
}

// trustEnv are the variables that point TLS clients at the sandbox's
// bundle: OpenSSL and Go (SSL_CERT_FILE), curl, Node (whose extra CAs add
// to its own), Python requests and git.
var trustEnv = []string{"SSL_CERT_FILE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS", "REQUESTS_CA_BUNDLE", "GIT_SSL_CAINFO"}

// sessionCredentials collects the credentials of a session's vaults, in
// vault order. It is the one place vault sources join: config-file vaults
// (local.vaults) here; vaults created through the API are looked up by id
// before them.
func (b *Backend) sessionCredentials(ids []string) ([]projection.Credential, error) {
	var out []projection.Credential
	for i, id := range ids {
		// A vault created through the API (vault_api.go) first; ids never
		// collide with the config's, so the order only saves a lookup.
		if creds, ok, err := b.apiVaultCredentials(id); err != nil {
			return nil, fmt.Errorf("vault_ids[%d]: %w", i, err)
		} else if ok {
			out = append(out, creds...)
			continue
		}
		v, ok := b.vaults[id]
		if !ok {
			return nil, fmt.Errorf("vault_ids[%d]: vault %q is no longer on this machine (local.vaults, or created through the API)", i, id)
		}
		creds, err := configVaultCredentials(v, b.cfg.CredentialsDir)
		if err != nil {
			return nil, fmt.Errorf("vault_ids[%d]: %w", i, err)
		}
		out = append(out, creds...)
	}
	return out, nil
}

// configVaultCredentials reads a config-file vault: each KEY=VALUE line is
// one credential named KEY, scoped to the vault's hosts and injection.
func configVaultCredentials(v Vault, credentialsDir string) ([]projection.Credential, error) {
	vars, err := readVault(v, credentialsDir)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(vars))
	for k := range vars {
		names = append(names, k)
	}
	slices.Sort(names)
	header, body := v.injects()
	out := make([]projection.Credential, 0, len(names))
	for _, k := range names {
		out = append(out, projection.Credential{VaultID: v.ID, Name: k, Value: vars[k],
			Hosts: append([]string(nil), v.Hosts...), Header: header, Body: body, Raw: v.Raw})
	}
	return out, nil
}

// checkProjection says why a session projecting credentials cannot run:
// projection needs every request of the harness to pass the egress proxy,
// which only a bubblewrap sandbox gives (a network namespace of its own,
// limited or, for an unrestricted environment, open but proxied). Failing
// is the only safe answer: handing over the real values would be the
// opt-out nobody chose. Checked when a session is created (CheckReferences,
// prepareRun) and again before each turn.
func (b *Backend) checkProjection() error {
	way := "set project: false on the vault (local.vaults[].project) to hand the harness the real values (docs/security.md says what that gives up)"
	switch {
	case b.cfg.Projector == nil:
		return errors.New("its credentials are projected, but the daemon has no egress proxy; " + way)
	case !b.sandbox.Confined():
		return fmt.Errorf("its credentials are projected, which needs the egress proxy between the harness and the network, "+
			"and local.sandbox is %s: use bubblewrap (local.sandbox: auto), or %s", b.sandbox.Name(), way)
	case b.cfg.Projector.TrustBundle() == "":
		return errors.New("its credentials are projected, but the egress proxy has no CA for HTTPS; " + way)
	}
	return nil
}

// checkVaultsProjectable is checkProjection for each vault of a session
// about to be created: the first vault holding a projected credential
// (sessionCredentials, so every vault source counts) is named by its
// vault_ids[i] field when this daemon cannot project. A vault that cannot
// be read is left to the caller's own checks; an empty one, or one that
// opted out, projects nothing and needs nothing.
func (b *Backend) checkVaultsProjectable(ids []string) *sessions.FieldError {
	if b.checkProjection() == nil {
		return nil
	}
	for i, id := range ids {
		creds, err := b.sessionCredentials([]string{id})
		if err != nil {
			continue
		}
		for _, c := range creds {
			if !c.Raw && c.Value != "" {
				return &sessions.FieldError{Field: fmt.Sprintf("vault_ids[%d]", i),
					Message: fmt.Sprintf("vault %q: %v", id, b.checkProjection())}
			}
		}
	}
	return nil
}

// projectTurn gives the turn's sandbox the daemon's trust bundle and env
// the variables that point at it. An unrestricted environment's turn is
// proxied too (sandbox.Network.Proxied): the harness gets a network of its
// own whose only way out is the proxy, open to any host, with internal
// addresses reachable only where allowed_hosts or a credential's hosts
// name them. A session without projected credentials never comes here and
// keeps the host network.
func (b *Backend) projectTurn(spec *sandbox.Spec, env map[string]string, creds []projection.Credential) {
	spec.TrustBundle = b.cfg.Projector.TrustBundle()
	for _, k := range trustEnv {
		env[k] = sandbox.TrustBundleInside
	}
	if !spec.Network.Limited {
		spec.Network.Proxied = true
		spec.Network.CredentialHosts = credentialHosts(creds)
	}
}

// credentialHosts are the hosts the credentials are scoped to, each once.
func credentialHosts(creds []projection.Credential) []string {
	var out []string
	for _, c := range creds {
		for _, h := range c.Hosts {
			if !slices.Contains(out, h) {
				out = append(out, h)
			}
		}
	}
	return out
}

// checkCredentialHost checks a local.vaults[].hosts entry: a host name, an
// IP, or *.suffix; never a URL or a port (scopes are per host).
func checkCredentialHost(h string) error {
	name := strings.TrimPrefix(h, "*.")
	switch {
	case h == "":
		return errors.New("is empty")
	case strings.ContainsAny(h, "/:@ "):
		if net.ParseIP(h) != nil {
			return nil
		}
		return fmt.Errorf("%q is not a host name: write the name alone (api.example.com), without scheme, port or path", h)
	case strings.Contains(name, "*"):
		return fmt.Errorf("%q: a wildcard is only allowed as a leading *.", h)
	}
	return nil
}
