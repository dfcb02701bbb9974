package local

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/sandbox0/sandbox0d/deployments"
	"github.com/sandbox0/sandbox0d/internal/wire"
)

// The session resources routes (the SDK's BetaSessionResourceService):
//
//	GET    /v1/sessions/{id}/resources          list (limit 1..1000, all when absent; page)
//	POST   /v1/sessions/{id}/resources          add a file resource
//	GET    /v1/sessions/{id}/resources/{rid}    retrieve
//	POST   /v1/sessions/{id}/resources/{rid}    update: rotate a github_repository's token
//	DELETE /v1/sessions/{id}/resources/{rid}    delete
//
// A file added to a session is recorded as pending and copied into the
// workspace at the start of the session's next turn, before the harness runs
// (the turn running when it is added keeps its workspace as it is).
// Repositories are given when the session is created: the SDK's add takes
// file resources only.
const maxResourcesLimit = 1000

var (
	errResourceNotFound = errors.New("resource not found")
	errResourceBusy     = errors.New("the session is running a turn")
)

// resourceConflictError is an add or delete the session's state refuses (409).
type resourceConflictError struct{ msg string }

func (e *resourceConflictError) Error() string { return e.msg }

func (b *Backend) resourceRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/sessions/{id}/resources", b.handleListResources)
	mux.HandleFunc("POST /v1/sessions/{id}/resources", b.handleAddResource)
	mux.HandleFunc("GET /v1/sessions/{id}/resources/{rid}", b.handleGetResource)
	mux.HandleFunc("POST /v1/sessions/{id}/resources/{rid}", b.handleUpdateResource)
	mux.HandleFunc("DELETE /v1/sessions/{id}/resources/{rid}", b.handleDeleteResource)
}

// resourceView renders a resource in the SDK's shape (no token: the record
// never holds one).
// resourceView renders a resource of session sessionID; its mount_path is
// the path inside the workspace (containerMountPath), never the host's.
func resourceView(sessionID string, res resourceRecord) map[string]any {
	updated := res.UpdatedAt
	if updated.IsZero() {
		updated = res.CreatedAt
	}
	r := map[string]any{
		"id":         res.ID,
		"type":       res.Type,
		"mount_path": containerMountPath(sessionID, res.MountPath),
		"created_at": res.CreatedAt.UTC(),
		"updated_at": updated.UTC(),
	}
	switch res.Type {
	case "github_repository":
		r["url"] = res.URL
		r["checkout"] = res.Checkout // null when the default branch was cloned
	case "file":
		r["file_id"] = res.FileID
	}
	return r
}

type resourceListResponse struct {
	Data     []map[string]any `json:"data"`
	NextPage *string          `json:"next_page"`
}

func resourceScope(sessionID string) string { return "session_resources/" + sessionID }

func (b *Backend) handleListResources(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	rec, ok := b.loadSession(w, id)
	if !ok {
		return
	}
	q := r.URL.Query()
	limit := len(rec.Resources) // absent: every resource, as the SDK documents
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxResourcesLimit {
			wire.WriteError(w, http.StatusBadRequest, fmt.Sprintf("limit: must be an integer between 1 and %d, got %q", maxResourcesLimit, v))
			return
		}
		limit = n
	}
	start := 0
	if token := q.Get("page"); token != "" {
		pivot, err := b.cursors.Decode(resourceScope(id), token)
		if err != nil {
			wire.WriteError(w, http.StatusBadRequest, errBadCursor.Error())
			return
		}
		i := slices.IndexFunc(rec.Resources, func(res resourceRecord) bool { return res.ID == string(pivot) })
		if i < 0 {
			wire.WriteError(w, http.StatusBadRequest, fmt.Sprintf(
				"page: the resource this page continues after (%s) was deleted; list again without page", pivot))
			return
		}
		start = i + 1
	}
	end := min(start+limit, len(rec.Resources))
	resp := resourceListResponse{Data: make([]map[string]any, 0, end-start)}
	for _, res := range rec.Resources[start:end] {
		resp.Data = append(resp.Data, resourceView(id, res))
	}
	if end < len(rec.Resources) && end > start {
		s := b.cursors.Encode(resourceScope(id), []byte(rec.Resources[end-1].ID))
		resp.NextPage = &s
	}
	writeJSON(w, http.StatusOK, resp)
}

func (b *Backend) handleGetResource(w http.ResponseWriter, r *http.Request) {
	id, rid := r.PathValue("id"), r.PathValue("rid")
	rec, ok := b.loadSession(w, id)
	if !ok {
		return
	}
	res, ok := findResource(rec, rid)
	if !ok {
		resourceNotFound(w, id, rid)
		return
	}
	writeJSON(w, http.StatusOK, resourceView(id, res))
}

func findResource(rec *sessionRecord, rid string) (resourceRecord, bool) {
	for _, res := range rec.Resources {
		if res.ID == rid {
			return res, true
		}
	}
	return resourceRecord{}, false
}

func resourceNotFound(w http.ResponseWriter, id, rid string) {
	wire.WriteError(w, http.StatusNotFound, fmt.Sprintf(
		"session %s has no resource %q; GET /v1/sessions/%s/resources lists them", id, rid, id))
}

// readObject reads a request body that must be a JSON object whose members
// are among allowed (when given); what names what is being sent, for
// messages.
func readObject(w http.ResponseWriter, r *http.Request, what string, allowed ...string) (map[string]json.RawMessage, bool) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBodyBytes))
	if err != nil {
		wire.WriteError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the request body is larger than %d bytes", maxRequestBodyBytes))
		return nil, false
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil || obj == nil {
		wire.WriteError(w, http.StatusBadRequest, fmt.Sprintf("the request body must be a JSON object (%s)", what))
		return nil, false
	}
	if len(allowed) > 0 && !onlyMembers(w, obj, what, allowed...) {
		return nil, false
	}
	return obj, true
}

// onlyMembers answers a 400 naming the first member of obj not in allowed.
func onlyMembers(w http.ResponseWriter, obj map[string]json.RawMessage, what string, allowed ...string) bool {
	for k := range obj {
		if !slices.Contains(allowed, k) {
			wire.WriteError(w, http.StatusBadRequest, fmt.Sprintf("%s: unknown field; %s takes %s", k, what, strings.Join(allowed, ", ")))
			return false
		}
	}
	return true
}

// stringMember decodes an optional string member; present reports whether
// it was there and not null.
func stringMember(obj map[string]json.RawMessage, name string) (value string, present bool, err error) {
	raw, ok := obj[name]
	if !ok || string(raw) == "null" {
		return "", false, nil
	}
	if err := json.Unmarshal(raw, &value); err != nil {
		return "", false, fmt.Errorf("%s: must be a string", name)
	}
	return value, true, nil
}

// handleAddResource is POST /v1/sessions/{id}/resources: a file resource
// (type, file_id, mount_path) joins the session and is copied into its
// workspace before its next turn.
func (b *Backend) handleAddResource(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, ok := b.loadSession(w, id); !ok {
		return
	}
	// Members are checked once the type is known, so that a repository or
	// memory store says what it is rather than which of its fields is unknown.
	obj, ok := readObject(w, r, "a session resource")
	if !ok {
		return
	}
	typ, _, err := stringMember(obj, "type")
	if err == nil && typ == "" {
		typ = "file" // the SDK's default
	}
	switch {
	case err != nil:
		wire.WriteError(w, http.StatusBadRequest, err.Error())
		return
	case typ == "github_repository":
		wire.WriteError(w, http.StatusBadRequest, "type: github_repository resources cannot be added to an existing session "+
			"(the API adds file resources only); give the repository in resources when creating the session")
		return
	case typ != "file":
		wire.WriteError(w, http.StatusBadRequest, fmt.Sprintf("type: %q cannot be added to a local session; it takes file resources", typ))
		return
	case !onlyMembers(w, obj, "a file resource", "type", "file_id", "mount_path"):
		return
	}
	fileID, present, err := stringMember(obj, "file_id")
	if err == nil && !present {
		err = errors.New("file_id: is required")
	}
	if err != nil {
		wire.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := checkFileID(b.cfg.FilesDir, fileID); err != nil {
		wire.WriteError(w, http.StatusBadRequest, fmt.Sprintf("file_id: file %q was not found in the files directory (local.files_dir): %v", fileID, err))
		return
	}
	mountPath, _, err := stringMember(obj, "mount_path")
	if err != nil {
		wire.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	rel, err := resolveMountPath(mountPath, defaultFileMount(fileID))
	if err != nil {
		wire.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	if b.diskFull(w, b.diskErr()) {
		return
	}
	now := b.cfg.Now()
	added := resourceRecord{ID: newID(resourceIDPrefix), Type: "file", FileID: fileID, CreatedAt: now, UpdatedAt: now, Pending: true}
	_, err = b.store.change(id, func(rec *sessionRecord) ([][]byte, []string, error) {
		switch {
		case rec.Status == statusTerminated:
			return nil, nil, &resourceConflictError{fmt.Sprintf("session %s is terminated; it runs no more turns to copy a resource for", id)}
		case rec.ArchivedAt != nil:
			return nil, nil, &resourceConflictError{fmt.Sprintf("session %s is archived; it runs no more turns to copy a resource for", id)}
		}
		if len(rec.Resources) >= deployments.MaxResources {
			return nil, nil, &resourceConflictError{fmt.Sprintf(
				"session %s already has %d resources, at most %d allowed; delete one first", id, len(rec.Resources), deployments.MaxResources)}
		}
		added.MountPath = filepath.Join(rec.Workspace, rel)
		for _, res := range rec.Resources {
			if res.MountPath == added.MountPath {
				return nil, nil, &resourceConflictError{fmt.Sprintf(
					"mount_path: %s is already the mount path of resource %s; choose another mount_path", rel, res.ID)}
			}
		}
		if exists, err := inWorkspace(rec.Workspace, rel); err != nil {
			return nil, nil, err
		} else if exists {
			return nil, nil, &resourceConflictError{fmt.Sprintf(
				"mount_path: %s already exists in the session's workspace; choose another mount_path", rel)}
		}
		rec.Resources = append(rec.Resources, added)
		rec.UpdatedAt = now
		return nil, nil, nil
	})
	if b.resourceWriteFailed(w, id, "", err) {
		return
	}
	b.log.Info("session resource added", "session_id", id, "resource_id", added.ID, "file_id", fileID)
	writeJSON(w, http.StatusOK, resourceView(id, added))
}

// inWorkspace reports whether rel exists in the workspace (which may not
// exist yet), without following a symlink out of it.
func inWorkspace(workspace, rel string) (bool, error) {
	root, err := os.OpenRoot(workspace)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer root.Close()
	_, err = root.Lstat(rel)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	default:
		return false, err
	}
}

// handleUpdateResource is POST /v1/sessions/{id}/resources/{rid}: a new
// authorization_token for a github_repository (the only update the API
// defines). The daemon keeps no token once a clone is done (the harness
// never sees one), so a new token is used by a clone still to come, the
// session's first turn, and otherwise dropped; it is never stored or
// returned.
func (b *Backend) handleUpdateResource(w http.ResponseWriter, r *http.Request) {
	id, rid := r.PathValue("id"), r.PathValue("rid")
	if _, ok := b.loadSession(w, id); !ok {
		return
	}
	obj, ok := readObject(w, r, "a session resource update", "authorization_token")
	if !ok {
		return
	}
	token, present, err := stringMember(obj, "authorization_token")
	if err == nil && (!present || token == "") {
		err = errors.New("authorization_token: is required (a non-empty string)")
	}
	if err != nil {
		wire.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	now := b.cfg.Now()
	var updated resourceRecord
	b.mu.Lock()
	_, err = b.store.change(id, func(rec *sessionRecord) ([][]byte, []string, error) {
		i := slices.IndexFunc(rec.Resources, func(res resourceRecord) bool { return res.ID == rid })
		if i < 0 {
			return nil, nil, errResourceNotFound
		}
		if rec.Resources[i].Type != "github_repository" {
			return nil, nil, &badUpdateError{fmt.Sprintf("authorization_token: resource %s is a %s resource; only github_repository resources take a token",
				rid, rec.Resources[i].Type)}
		}
		rec.Resources[i].UpdatedAt = now
		rec.UpdatedAt = now
		updated = rec.Resources[i]
		return nil, nil, nil
	})
	if err == nil && b.active[id] != nil {
		// A clone of this session may still be waiting for a slot.
		b.setRotatedTokenLocked(id, rid, token)
	}
	b.mu.Unlock()
	if errors.As(err, new(*badUpdateError)) {
		wire.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	if b.resourceWriteFailed(w, id, rid, err) {
		return
	}
	b.log.Info("session resource token rotated", "session_id", id, "resource_id", rid)
	writeJSON(w, http.StatusOK, resourceView(id, updated))
}

// handleDeleteResource is DELETE /v1/sessions/{id}/resources/{rid}: the
// resource leaves the session and what it materialized leaves the
// workspace. It waits for no turn: while one runs or waits the delete is
// refused, so no turn starts with half a resource.
func (b *Backend) handleDeleteResource(w http.ResponseWriter, r *http.Request) {
	id, rid := r.PathValue("id"), r.PathValue("rid")
	if _, ok := b.loadSession(w, id); !ok {
		return
	}
	now := b.cfg.Now()
	// b.mu is held across the write and the removal: a message sent
	// meanwhile starts its turn only after both (sendEvents takes b.mu).
	b.mu.Lock()
	var gone resourceRecord
	rec, err := b.store.change(id, func(rec *sessionRecord) ([][]byte, []string, error) {
		if b.active[id] != nil {
			return nil, nil, errResourceBusy
		}
		i := slices.IndexFunc(rec.Resources, func(res resourceRecord) bool { return res.ID == rid })
		if i < 0 {
			return nil, nil, errResourceNotFound
		}
		gone = rec.Resources[i]
		rec.Resources = slices.Delete(rec.Resources, i, i+1)
		rec.UpdatedAt = now
		return nil, nil, nil
	})
	var removeErr error
	if err == nil && !gone.Pending && rec.WorkspaceRemovedAt == nil {
		removeErr = removeFromWorkspace(rec.Workspace, gone.MountPath)
	}
	b.mu.Unlock()
	if b.resourceWriteFailed(w, id, rid, err) {
		return
	}
	if removeErr != nil {
		// The resource is gone from the session either way; say what is left.
		b.log.Warn("removing a deleted resource from the workspace", "session_id", id, "resource_id", rid, "error", removeErr)
	}
	b.log.Info("session resource deleted", "session_id", id, "resource_id", rid)
	writeJSON(w, http.StatusOK, map[string]string{"id": rid, "type": "session_resource_deleted"})
}

// removeFromWorkspace removes mountPath (inside workspace) through os.Root,
// so a symlink the harness left cannot point the removal elsewhere.
func removeFromWorkspace(workspace, mountPath string) error {
	rel, err := filepath.Rel(workspace, mountPath)
	if err != nil || !filepath.IsLocal(rel) {
		return fmt.Errorf("mount path %s is not inside the workspace %s", mountPath, workspace)
	}
	root, err := os.OpenRoot(workspace)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer root.Close()
	return root.RemoveAll(rel)
}

// resourceWriteFailed answers a failed resource change; false when err is nil.
func (b *Backend) resourceWriteFailed(w http.ResponseWriter, id, rid string, err error) bool {
	var conflict *resourceConflictError
	switch {
	case err == nil:
		return false
	case errors.Is(err, errSessionNotFound):
		wire.WriteError(w, http.StatusNotFound, fmt.Sprintf("session %q was not found", id))
	case errors.Is(err, errResourceNotFound):
		resourceNotFound(w, id, rid)
	case errors.Is(err, errResourceBusy):
		wire.WriteError(w, http.StatusConflict, fmt.Sprintf(
			"session %s is running a turn; wait until it is idle, or interrupt it (POST /v1/sessions/%s/events with user.interrupt), then delete the resource", id, id))
	case errors.As(err, &conflict):
		wire.WriteError(w, http.StatusConflict, conflict.msg)
	case b.diskFull(w, err):
	default:
		b.log.Error("changing a session resource", "session_id", id, "resource_id", rid, "error", err)
		wire.WriteError(w, http.StatusInternalServerError, "changing the session's resources failed")
	}
	return true
}

// materializePending copies the files added to a session since its last
// turn into its workspace and marks them materialized. A failure ends the
// turn like a failed materialization at creation.
func (b *Backend) materializePending(id, workspace string) error {
	rec, err := b.store.get(id)
	if err != nil {
		return failuref("reading the session's resources: %v", err)
	}
	var done []string
	var root *os.Root
	for i, res := range rec.Resources {
		if !res.Pending {
			continue
		}
		if root == nil {
			if root, err = os.OpenRoot(workspace); err != nil {
				return failuref("opening the workspace: %v", err)
			}
			defer root.Close()
		}
		rel, err := filepath.Rel(workspace, res.MountPath)
		if err != nil || !filepath.IsLocal(rel) {
			return failuref("resources[%d]: mount path %s is not inside the workspace", i, res.MountPath)
		}
		if err := copyFileResource(b.cfg.FilesDir, res.FileID, root, rel); err != nil {
			return failuref("resources[%d] (%s): copying file %q to %s: %v", i, res.ID, res.FileID, rel, err)
		}
		done = append(done, res.ID)
	}
	if len(done) == 0 {
		return nil
	}
	_, err = b.store.update(id, func(rec *sessionRecord) error {
		for i := range rec.Resources {
			if slices.Contains(done, rec.Resources[i].ID) {
				rec.Resources[i].Pending = false
			}
		}
		return nil
	})
	if err != nil {
		return failuref("recording the materialized resources: %v", err)
	}
	return nil
}

// setRotatedTokenLocked keeps a rotated token for a clone of session id that
// has not run yet; forget drops what no clone took. Callers hold b.mu.
func (b *Backend) setRotatedTokenLocked(id, rid, token string) {
	if b.rotated == nil {
		b.rotated = map[string]map[string]string{}
	}
	if b.rotated[id] == nil {
		b.rotated[id] = map[string]string{}
	}
	b.rotated[id][rid] = token
}

// cloneToken is the token a clone of resource rid uses: a rotated one if
// the resource was updated since the session was created, else token.
func (b *Backend) cloneToken(id, rid, token string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if t, ok := b.rotated[id][rid]; ok {
		delete(b.rotated[id], rid)
		return t
	}
	return token
}
