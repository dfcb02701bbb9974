package local

import (
	"errors"
	"net/http"
	"time"

	"github.com/sandbox0/sandbox0d/internal/wire"
)

// Vaults through the API; their credentials are in credentials_api.go.
// Config-file vaults (local.vaults) are served alongside, read-only: their
// values live in their files and never pass through the API.

const vaultIDPrefix = "vlt_"

// vaultObject is the official vault object (BetaManagedAgentsVault); it
// never holds a value.
type vaultObject struct {
	Type        string            `json:"type"`
	ID          string            `json:"id"`
	DisplayName string            `json:"display_name"`
	Metadata    map[string]string `json:"metadata"`
	ArchivedAt  *time.Time        `json:"archived_at"`
	CreatedAt   time.Time         `json:"created_at"`
	UpdatedAt   time.Time         `json:"updated_at"`
}

func apiVaultObject(v apiVault) vaultObject {
	o := vaultObject{Type: "vault", ID: v.ID, DisplayName: v.DisplayName, Metadata: v.Metadata,
		ArchivedAt: utcPtr(v.ArchivedAt), CreatedAt: v.CreatedAt.UTC(), UpdatedAt: v.UpdatedAt.UTC()}
	if o.Metadata == nil {
		o.Metadata = map[string]string{}
	}
	return o
}

func (b *Backend) configVaultObject(v Vault) vaultObject {
	seen := b.firstSeen["vault/"+v.ID].UTC()
	return vaultObject{Type: "vault", ID: v.ID, DisplayName: v.ID, Metadata: configMetadata("local.vaults"), CreatedAt: seen, UpdatedAt: seen}
}

var vaultFields = []string{"display_name", "metadata"}

func decodeVault(o jsonObject, cur apiVault, create bool) (apiVault, error) {
	if create || o.present("display_name") {
		n, err := o.text("display_name", true, 1, 255)
		if err != nil {
			return cur, err
		}
		cur.DisplayName = n
	}
	patch, err := o.metadataPatch("metadata")
	if err != nil {
		return cur, err
	}
	cur.Metadata, err = applyMetadata(cur.Metadata, patch, "metadata")
	return cur, err
}

func (b *Backend) vaultRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/vaults", b.handleCreateVault)
	mux.HandleFunc("GET /v1/vaults", b.handleListVaults)
	mux.HandleFunc("GET /v1/vaults/{id}", b.handleGetVault)
	mux.HandleFunc("POST /v1/vaults/{id}", b.handleUpdateVault)
	mux.HandleFunc("DELETE /v1/vaults/{id}", b.handleDeleteVault)
	mux.HandleFunc("POST /v1/vaults/{id}/archive", b.handleArchiveVault)
	b.credentialRoutes(mux)
}

func (b *Backend) handleCreateVault(w http.ResponseWriter, r *http.Request) {
	o, ok := readBody(w, r, vaultFields...)
	if !ok {
		return
	}
	v, err := decodeVault(o, apiVault{}, true)
	if err != nil {
		b.writeCatalogError(w, "creating a vault", err)
		return
	}
	now := b.cfg.Now().UTC()
	v.ID, v.CreatedAt, v.UpdatedAt = b.mintID(vaultIDPrefix, bucketAPIVaults), now, now
	v, err = update(b.catalog, bucketAPIVaults, []byte(v.ID), true, func(dst *apiVault) error {
		*dst = v
		return nil
	})
	if err != nil {
		b.writeCatalogError(w, "creating a vault", err)
		return
	}
	b.log.Info("vault created", "vault_id", v.ID)
	writeJSON(w, http.StatusOK, apiVaultObject(v))
}

// apiVault reads an API vault; a 404 error when there is none.
func (b *Backend) apiVault(id string) (apiVault, error) {
	v, err := getOne[apiVault](b.catalog, bucketAPIVaults, []byte(id))
	if errors.Is(err, errNoRecord) {
		return v, notFound("vault %q was not found (neither in local.vaults nor created through the API)", id)
	}
	return v, err
}

func (b *Backend) handleGetVault(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if v, ok := b.vaults[id]; ok {
		writeJSON(w, http.StatusOK, b.configVaultObject(v))
		return
	}
	v, err := b.apiVault(id)
	if err != nil {
		b.writeCatalogError(w, "reading a vault", err)
		return
	}
	writeJSON(w, http.StatusOK, apiVaultObject(v))
}

func (b *Backend) changeVault(w http.ResponseWriter, id, what string, change func(v *apiVault) error) {
	if _, ok := b.vaults[id]; ok {
		b.writeCatalogError(w, what, readOnlyConfig("vault", id, "local.vaults"))
		return
	}
	v, err := update(b.catalog, bucketAPIVaults, []byte(id), false, change)
	if errors.Is(err, errNoRecord) {
		err = notFound("vault %q was not found", id)
	}
	if err != nil {
		b.writeCatalogError(w, what, err)
		return
	}
	writeJSON(w, http.StatusOK, apiVaultObject(v))
}

func (b *Backend) handleUpdateVault(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, ok := b.vaults[id]; ok {
		b.writeCatalogError(w, "updating a vault", readOnlyConfig("vault", id, "local.vaults"))
		return
	}
	o, ok := readBody(w, r, vaultFields...)
	if !ok {
		return
	}
	now := b.cfg.Now().UTC()
	b.changeVault(w, id, "updating a vault", func(v *apiVault) error {
		next, err := decodeVault(o, *v, false)
		if err != nil {
			return err
		}
		next.UpdatedAt = now
		*v = next
		return nil
	})
}

func (b *Backend) handleArchiveVault(w http.ResponseWriter, r *http.Request) {
	now := b.cfg.Now().UTC()
	b.changeVault(w, r.PathValue("id"), "archiving a vault", func(v *apiVault) error {
		if v.ArchivedAt == nil {
			v.ArchivedAt, v.UpdatedAt = &now, now
		}
		return nil
	})
}

func (b *Backend) handleDeleteVault(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, ok := b.vaults[id]; ok {
		b.writeCatalogError(w, "deleting a vault", readOnlyConfig("vault", id, "local.vaults"))
		return
	}
	err := b.catalog.deleteVault(id)
	if errors.Is(err, errNoRecord) {
		err = notFound("vault %q was not found", id)
	}
	if err != nil {
		b.writeCatalogError(w, "deleting a vault", err)
		return
	}
	b.log.Info("vault deleted with its credentials", "vault_id", id)
	writeJSON(w, http.StatusOK, map[string]string{"id": id, "type": "vault_deleted"})
}

func (b *Backend) handleListVaults(w http.ResponseWriter, r *http.Request) {
	q, err := parseCatalogList(r, false)
	if err != nil {
		wire.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	var items []listItem
	for id, v := range b.vaults {
		items = append(items, listItem{id: id, created: b.firstSeen["vault/"+id], value: b.configVaultObject(v)})
	}
	vaults, err := listAll[apiVault](b.catalog, bucketAPIVaults, nil)
	if err != nil {
		b.writeCatalogError(w, "listing vaults", err)
		return
	}
	for _, v := range vaults {
		items = append(items, listItem{id: v.ID, created: v.CreatedAt, archived: v.ArchivedAt != nil, value: apiVaultObject(v)})
	}
	b.writePage(w, "vaults", q, items)
}

// configVaultRefusal is the answer to a credentials route of a
// config-file vault.
func configVaultRefusal(id string) error {
	return conflict("vault %q is a config-file vault (local.vaults): its variables live in its file and never pass "+
		"through the API; create a vault through the API (POST /v1/vaults) to manage credentials here", id)
}
