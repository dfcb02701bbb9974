package local

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"time"

	"github.com/sandbox0/sandbox0d/crypto"
	"github.com/sandbox0/sandbox0d/internal/wire"
	"github.com/sandbox0/sandbox0d/store"
)

// Vault credentials through the API. secret_value is write-only: it is
// sealed to the daemon's age identity before it reaches bbolt (bound to
// the credential id), and no response, log line or backup holds it in
// clear. Only environment_variable credentials are available here: the
// other auth types (mcp_oauth, static_bearer) need the platform's MCP
// connector, which the local backend does not have.

const (
	credentialIDPrefix      = "vcrd_"
	maxCredentialHosts      = 16
	authEnvironmentVariable = "environment_variable"
)

// secretNameRe is an environment variable name a shell and Node accept.
var secretNameRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,255}$`)

// credentialObject is the official credential object; no secret_value.
type credentialObject struct {
	Type        string            `json:"type"`
	ID          string            `json:"id"`
	VaultID     string            `json:"vault_id"`
	DisplayName *string           `json:"display_name"`
	Metadata    map[string]string `json:"metadata"`
	Auth        map[string]any    `json:"auth"`
	ArchivedAt  *time.Time        `json:"archived_at"`
	CreatedAt   time.Time         `json:"created_at"`
	UpdatedAt   time.Time         `json:"updated_at"`
}

func apiCredentialObject(c apiCredential) credentialObject {
	o := credentialObject{Type: "vault_credential", ID: c.ID, VaultID: c.VaultID, DisplayName: c.DisplayName,
		Metadata: c.Metadata, ArchivedAt: utcPtr(c.ArchivedAt), CreatedAt: c.CreatedAt.UTC(), UpdatedAt: c.UpdatedAt.UTC()}
	if o.Metadata == nil {
		o.Metadata = map[string]string{}
	}
	networking := map[string]any{"type": NetworkingUnrestricted}
	if c.Limited {
		networking = map[string]any{"type": NetworkingLimited, "allowed_hosts": c.Hosts}
	}
	o.Auth = map[string]any{"type": c.AuthType, "secret_name": c.SecretName, "networking": networking,
		"injection_location": map[string]bool{"header": c.Header, "body": c.Body}}
	return o
}

// checkAPICredentialHost accepts what the official API does: a bare host
// name, an IPv4 address or a *. wildcard; no URL, port, path or IPv6.
func checkAPICredentialHost(h string) error {
	if ip, err := netip.ParseAddr(strings.Trim(h, "[]")); err == nil && !ip.Is4() {
		return errors.New("IPv6 addresses are not accepted")
	}
	if h == "" || strings.ContainsAny(h, "/:@ ?#") {
		return errors.New("must be a bare host name, an IPv4 address or *.example.com (no scheme, port or path)")
	}
	rest := strings.TrimPrefix(h, "*.")
	if strings.Contains(rest, "*") || strings.HasPrefix(rest, ".") || strings.HasSuffix(rest, ".") || strings.Contains(rest, "..") {
		return errors.New("must be a bare host name, an IPv4 address or *.example.com")
	}
	return nil
}

// decodeCredentialNetworking reads auth.networking (a full replacement).
func decodeCredentialNetworking(ao jsonObject, c *apiCredential) error {
	no, err := ao.object("networking", "type", "allowed_hosts")
	if err != nil {
		return err
	}
	t, err := no.str("type")
	if err != nil {
		return err
	}
	switch t {
	case NetworkingUnrestricted:
		if no.present("allowed_hosts") {
			return fieldErr(no.at("allowed_hosts"), "applies to limited networking only")
		}
		c.Limited, c.Hosts = false, nil
	case NetworkingLimited:
		hosts, err := no.strs("allowed_hosts")
		if err != nil {
			return err
		}
		if len(hosts) == 0 || len(hosts) > maxCredentialHosts {
			return fieldErr(no.at("allowed_hosts"), "must list 1 to %d hosts, got %d", maxCredentialHosts, len(hosts))
		}
		for i, h := range hosts {
			if err := checkAPICredentialHost(h); err != nil {
				return fieldErr(fmt.Sprintf("%s[%d]", no.at("allowed_hosts"), i), "%q: %v", h, err)
			}
		}
		c.Limited, c.Hosts = true, hosts
	case "":
		return fieldErr(no.at("type"), "is required (unrestricted or limited)")
	default:
		return fieldErr(no.at("type"), "must be unrestricted or limited, got %q", t)
	}
	return nil
}

// decodeCredentialAuth reads auth for a create or an update. secret is the
// new secret_value, if one was sent.
func decodeCredentialAuth(o jsonObject, c *apiCredential, create bool) (secret *string, err error) {
	if !o.has("auth") {
		if create {
			return nil, fieldErr("auth", "is required ({\"type\": \"environment_variable\", \"secret_name\": …, \"secret_value\": …, \"networking\": …})")
		}
		return nil, nil
	}
	known := []string{"type", "secret_value", "networking", "injection_location"}
	if create {
		known = append(known, "secret_name")
	}
	// Other auth types have fields of their own: say what the type is
	// before complaining about them.
	head, err := o.object("auth", "type", "secret_name", "secret_value", "networking", "injection_location",
		"mcp_server_url", "token", "access_token", "refresh", "expires_at", "client_id")
	if err != nil {
		return nil, err
	}
	t, err := head.str("type")
	if err != nil {
		return nil, err
	}
	switch {
	case t == authEnvironmentVariable:
	case t == "mcp_oauth" || t == "static_bearer":
		return nil, fieldErr("auth.type", "%s credentials need the platform's MCP connector, which the local backend does not have; "+
			"use environment_variable (the agent's MCP servers are reached through the session's egress rules)", t)
	case t == "":
		return nil, fieldErr("auth.type", "is required (environment_variable)")
	default:
		return nil, fieldErr("auth.type", "must be environment_variable, mcp_oauth or static_bearer, got %q", t)
	}
	if !create && t != c.AuthType {
		return nil, fieldErr("auth.type", "cannot change a credential's type (it is %s)", c.AuthType)
	}
	ao, err := o.object("auth", known...)
	if err != nil {
		if !create && head.present("secret_name") {
			return nil, fieldErr("auth.secret_name", "is immutable after create; create another credential for another variable")
		}
		return nil, err
	}
	c.AuthType = t
	if create {
		name, err := ao.text("secret_name", true, 1, 256)
		if err != nil {
			return nil, err
		}
		if !secretNameRe.MatchString(name) {
			return nil, fieldErr("auth.secret_name", "%q is not an environment variable name (letters, digits and _, not starting with a digit)", name)
		}
		c.SecretName = name
	}
	if ao.present("secret_value") || create {
		v, err := ao.str("secret_value")
		if err != nil {
			return nil, err
		}
		switch {
		case !ao.has("secret_value") || v == "":
			return nil, fieldErr("auth.secret_value", "is required and must not be empty")
		case len(v) > crypto.MaxSecretSize:
			return nil, fieldErr("auth.secret_value", "is %d bytes, more than %d", len(v), crypto.MaxSecretSize)
		case strings.ContainsRune(v, 0):
			return nil, fieldErr("auth.secret_value", "must not contain a NUL byte (it becomes an environment variable)")
		}
		secret = &v
	}
	switch {
	case ao.has("networking"):
		if err := decodeCredentialNetworking(ao, c); err != nil {
			return nil, err
		}
	case create:
		return nil, fieldErr("auth.networking", "is required: {\"type\": \"unrestricted\"} or {\"type\": \"limited\", \"allowed_hosts\": [\"api.example.com\"]}")
	}
	if create {
		// Omitted: header values only (a body echoes more easily).
		c.Header, c.Body = true, false
	}
	if ao.has("injection_location") {
		io, err := ao.object("injection_location", "header", "body")
		if err != nil {
			return nil, err
		}
		for k, dst := range map[string]*bool{"header": &c.Header, "body": &c.Body} {
			v, err := io.boolean(k)
			if err != nil {
				return nil, err
			}
			if v != nil {
				*dst = *v
			}
		}
	}
	return secret, nil
}

var credentialFields = []string{"auth", "display_name", "metadata"}

func decodeCredentialMeta(o jsonObject, c *apiCredential) error {
	if o.present("display_name") {
		n, err := o.text("display_name", false, 0, 255)
		if err != nil {
			return err
		}
		c.DisplayName = nil
		if o.has("display_name") {
			c.DisplayName = &n
		}
	}
	patch, err := o.metadataPatch("metadata")
	if err != nil {
		return err
	}
	c.Metadata, err = applyMetadata(c.Metadata, patch, "metadata")
	return err
}

func (b *Backend) credentialRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/vaults/{vault}/credentials", b.handleCreateCredential)
	mux.HandleFunc("GET /v1/vaults/{vault}/credentials", b.handleListCredentials)
	mux.HandleFunc("GET /v1/vaults/{vault}/credentials/{id}", b.handleGetCredential)
	mux.HandleFunc("POST /v1/vaults/{vault}/credentials/{id}", b.handleUpdateCredential)
	mux.HandleFunc("DELETE /v1/vaults/{vault}/credentials/{id}", b.handleDeleteCredential)
	mux.HandleFunc("POST /v1/vaults/{vault}/credentials/{id}/archive", b.handleArchiveCredential)
	mux.HandleFunc("POST /v1/vaults/{vault}/credentials/{id}/mcp_oauth_validate", func(w http.ResponseWriter, r *http.Request) {
		wire.WriteError(w, http.StatusBadRequest, "mcp_oauth credentials are not available on the local backend, so there is nothing to validate")
	})
}

// credentialVault checks the vault of a credentials route: an API vault
// (writes need it not archived).
func (b *Backend) credentialVault(vaultID string, write bool) (apiVault, error) {
	if _, ok := b.vaults[vaultID]; ok {
		return apiVault{}, configVaultRefusal(vaultID)
	}
	v, err := b.apiVault(vaultID)
	if err != nil {
		return v, err
	}
	if write && v.ArchivedAt != nil {
		return v, conflict("vault %s is archived; its credentials cannot change", vaultID)
	}
	return v, nil
}

func (b *Backend) handleCreateCredential(w http.ResponseWriter, r *http.Request) {
	vaultID := r.PathValue("vault")
	if _, err := b.credentialVault(vaultID, true); err != nil {
		b.writeCatalogError(w, "creating a credential", err)
		return
	}
	o, ok := readBody(w, r, credentialFields...)
	if !ok {
		return
	}
	c := apiCredential{VaultID: vaultID}
	secret, err := decodeCredentialAuth(o, &c, true)
	if err == nil {
		err = decodeCredentialMeta(o, &c)
	}
	if err != nil {
		b.writeCatalogError(w, "creating a credential", err)
		return
	}
	now := b.cfg.Now().UTC()
	c.ID, c.CreatedAt, c.UpdatedAt = b.mintID(credentialIDPrefix, bucketAPICredentials), now, now
	if c.Sealed, err = b.seal(c.ID, *secret); err != nil {
		b.writeCatalogError(w, "sealing a credential", err)
		return
	}
	c, err = b.putCredential(c, true)
	if err != nil {
		b.writeCatalogError(w, "creating a credential", err)
		return
	}
	b.log.Info("vault credential created", "vault_id", vaultID, "credential_id", c.ID, "secret_name", c.SecretName)
	writeJSON(w, http.StatusOK, apiCredentialObject(c))
}

// putCredential stores c, refusing a second active credential with the
// same secret_name in the vault (which one the harness would see would be
// a guess) and a vault deleted meanwhile.
func (b *Backend) putCredential(c apiCredential, create bool) (apiCredential, error) {
	err := b.catalog.ns.Update(func(tx *store.NamespaceTx) error {
		if tx.Bucket(bucketAPIVaults).Get([]byte(c.VaultID)) == nil {
			return notFound("vault %q was not found", c.VaultID)
		}
		key := credentialKey(c.VaultID, c.ID)
		if !create && tx.Bucket(bucketAPICredentials).Get(key) == nil {
			return notFound("credential %q was not found in vault %s", c.ID, c.VaultID)
		}
		others, err := scanRecords[apiCredential](tx, bucketAPICredentials, []byte(c.VaultID+"/"))
		if err != nil {
			return err
		}
		for _, o := range others {
			if o.ID != c.ID && o.ArchivedAt == nil && o.SecretName == c.SecretName {
				return conflict("auth.secret_name: vault %s already has credential %s for %s; update or archive that one",
					c.VaultID, o.ID, c.SecretName)
			}
		}
		return putRecord(tx, bucketAPICredentials, key, c)
	})
	return c, err
}

func (b *Backend) handleGetCredential(w http.ResponseWriter, r *http.Request) {
	vaultID, id := r.PathValue("vault"), r.PathValue("id")
	if _, err := b.credentialVault(vaultID, false); err != nil {
		b.writeCatalogError(w, "reading a credential", err)
		return
	}
	c, err := b.credential(vaultID, id)
	if err != nil {
		b.writeCatalogError(w, "reading a credential", err)
		return
	}
	writeJSON(w, http.StatusOK, apiCredentialObject(c))
}

func (b *Backend) credential(vaultID, id string) (apiCredential, error) {
	c, err := getOne[apiCredential](b.catalog, bucketAPICredentials, credentialKey(vaultID, id))
	if errors.Is(err, errNoRecord) {
		return c, notFound("credential %q was not found in vault %s", id, vaultID)
	}
	return c, err
}

func (b *Backend) handleUpdateCredential(w http.ResponseWriter, r *http.Request) {
	vaultID, id := r.PathValue("vault"), r.PathValue("id")
	if _, err := b.credentialVault(vaultID, true); err != nil {
		b.writeCatalogError(w, "updating a credential", err)
		return
	}
	o, ok := readBody(w, r, credentialFields...)
	if !ok {
		return
	}
	c, err := b.credential(vaultID, id)
	if err == nil && c.ArchivedAt != nil {
		err = conflict("credential %s is archived; create a new credential instead", id)
	}
	var secret *string
	if err == nil {
		secret, err = decodeCredentialAuth(o, &c, false)
	}
	if err == nil {
		err = decodeCredentialMeta(o, &c)
	}
	if err == nil && secret != nil {
		c.Sealed, err = b.seal(c.ID, *secret)
	}
	if err != nil {
		b.writeCatalogError(w, "updating a credential", err)
		return
	}
	c.UpdatedAt = b.cfg.Now().UTC()
	if c, err = b.putCredential(c, false); err != nil {
		b.writeCatalogError(w, "updating a credential", err)
		return
	}
	b.log.Info("vault credential updated", "vault_id", vaultID, "credential_id", id, "secret_replaced", secret != nil)
	writeJSON(w, http.StatusOK, apiCredentialObject(c))
}

func (b *Backend) handleArchiveCredential(w http.ResponseWriter, r *http.Request) {
	vaultID, id := r.PathValue("vault"), r.PathValue("id")
	if _, err := b.credentialVault(vaultID, false); err != nil {
		b.writeCatalogError(w, "archiving a credential", err)
		return
	}
	now := b.cfg.Now().UTC()
	c, err := update(b.catalog, bucketAPICredentials, credentialKey(vaultID, id), false, func(c *apiCredential) error {
		if c.ArchivedAt == nil {
			c.ArchivedAt, c.UpdatedAt = &now, now
		}
		return nil
	})
	if errors.Is(err, errNoRecord) {
		err = notFound("credential %q was not found in vault %s", id, vaultID)
	}
	if err != nil {
		b.writeCatalogError(w, "archiving a credential", err)
		return
	}
	b.log.Info("vault credential archived", "vault_id", vaultID, "credential_id", id)
	writeJSON(w, http.StatusOK, apiCredentialObject(c))
}

func (b *Backend) handleDeleteCredential(w http.ResponseWriter, r *http.Request) {
	vaultID, id := r.PathValue("vault"), r.PathValue("id")
	if _, err := b.credentialVault(vaultID, false); err != nil {
		b.writeCatalogError(w, "deleting a credential", err)
		return
	}
	err := b.catalog.deleteOne(bucketAPICredentials, credentialKey(vaultID, id))
	if errors.Is(err, errNoRecord) {
		err = notFound("credential %q was not found in vault %s", id, vaultID)
	}
	if err != nil {
		b.writeCatalogError(w, "deleting a credential", err)
		return
	}
	b.log.Info("vault credential deleted", "vault_id", vaultID, "credential_id", id)
	writeJSON(w, http.StatusOK, map[string]string{"id": id, "type": "vault_credential_deleted"})
}

func (b *Backend) handleListCredentials(w http.ResponseWriter, r *http.Request) {
	vaultID := r.PathValue("vault")
	if _, err := b.credentialVault(vaultID, false); err != nil {
		b.writeCatalogError(w, "listing credentials", err)
		return
	}
	q, err := parseCatalogList(r, false)
	if err != nil {
		wire.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	creds, err := listAll[apiCredential](b.catalog, bucketAPICredentials, []byte(vaultID+"/"))
	if err != nil {
		b.writeCatalogError(w, "listing credentials", err)
		return
	}
	var items []listItem
	for _, c := range creds {
		items = append(items, listItem{id: c.ID, created: c.CreatedAt, archived: c.ArchivedAt != nil, value: apiCredentialObject(c)})
	}
	b.writePage(w, "vaults/"+vaultID+"/credentials", q, items)
}
