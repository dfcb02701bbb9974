package local

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/sandbox0/sandbox0d/store"
)

// Agents, environments, vaults and credentials created through the API are
// kept in the store's catalog namespace, one JSON record per key: on one
// box in the daemon's bbolt file, in a cluster in the shared store, so every
// node serves and resolves the same catalog. Nothing of it is cached in
// memory: every use reads the store, so a change made on another node is
// seen by the next request here. They are few (a user creates them by hand
// or from a script), so listings read the whole bucket and sort in memory.
// The buckets' names within the namespace (store/schema.go):
const (
	bucketSeen            = "catalog"          // "seen/" kind '/' id… → first seen (unix ns, 8)
	bucketAPIAgents       = "api_agents"       // id '/' version(8) → apiAgent JSON
	bucketAPIEnvironments = "api_environments" // id → apiEnvironment JSON
	bucketAPIVaults       = "api_vaults"       // id → apiVault JSON
	bucketAPICredentials  = "api_credentials"  // vault id '/' credential id → apiCredential JSON
)

// apiAgent is one version of an agent created through the API. Every
// version is kept whole: sessions and deployments pin a version, and run
// exactly what it said.
type apiAgent struct {
	ID          string            `json:"id"`
	Version     int64             `json:"version"`
	Name        string            `json:"name"`
	Description *string           `json:"description,omitempty"`
	System      *string           `json:"system,omitempty"`
	Model       modelConfig       `json:"model"`
	Tools       []toolset         `json:"tools,omitempty"`
	MCPServers  []mcpServer       `json:"mcp_servers,omitempty"`
	Metadata    map[string]string `json:"metadata,omitempty"`
	CreatedAt   time.Time         `json:"created_at"` // of version 1
	UpdatedAt   time.Time         `json:"updated_at"` // of this version
	ArchivedAt  *time.Time        `json:"archived_at,omitempty"`
}

// apiEnvironment is an environment created through the API.
type apiEnvironment struct {
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	Description *string           `json:"description,omitempty"`
	ConfigType  string            `json:"config_type"` // cloud or self_hosted
	Networking  Networking        `json:"networking"`
	Metadata    map[string]string `json:"metadata,omitempty"`
	CreatedAt   time.Time         `json:"created_at"`
	UpdatedAt   time.Time         `json:"updated_at"`
	ArchivedAt  *time.Time        `json:"archived_at,omitempty"`
}

// apiVault is a vault created through the API; its credentials are
// records of their own.
type apiVault struct {
	ID          string            `json:"id"`
	DisplayName string            `json:"display_name"`
	Metadata    map[string]string `json:"metadata,omitempty"`
	CreatedAt   time.Time         `json:"created_at"`
	UpdatedAt   time.Time         `json:"updated_at"`
	ArchivedAt  *time.Time        `json:"archived_at,omitempty"`
}

// apiCredential is a vault credential. Sealed is the secret_value sealed
// to the daemon's age identity (bound to the credential id); the clear
// value exists only in memory while a turn's environment is built.
type apiCredential struct {
	ID          string            `json:"id"`
	VaultID     string            `json:"vault_id"`
	DisplayName *string           `json:"display_name,omitempty"`
	Metadata    map[string]string `json:"metadata,omitempty"`
	AuthType    string            `json:"auth_type"` // environment_variable
	SecretName  string            `json:"secret_name"`
	Sealed      []byte            `json:"sealed"`
	// Limited is networking.type limited, with Hosts its allowed_hosts.
	Limited    bool       `json:"limited,omitempty"`
	Hosts      []string   `json:"hosts,omitempty"`
	Header     bool       `json:"header"`
	Body       bool       `json:"body"`
	CreatedAt  time.Time  `json:"created_at"`
	UpdatedAt  time.Time  `json:"updated_at"`
	ArchivedAt *time.Time `json:"archived_at,omitempty"`
}

var errNoRecord = errors.New("no such record")

func agentKey(id string, version int64) []byte {
	return append([]byte(id+"/"), be64(uint64(version))...)
}

func credentialKey(vaultID, id string) []byte { return []byte(vaultID + "/" + id) }

// catalogStore is the persistence of the API-created catalog.
type catalogStore struct{ ns *store.Namespace }

func getCatalogRecord[T any](tx *store.NamespaceTx, bucket string, key []byte) (T, error) {
	var v T
	data := tx.Bucket(bucket).Get(key)
	if data == nil {
		return v, errNoRecord
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return v, fmt.Errorf("%s %s: %w", bucket, key, err)
	}
	return v, nil
}

func putRecord(tx *store.NamespaceTx, bucket string, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return tx.Bucket(bucket).Put(key, data)
}

// scanRecords decodes every record under prefix, in key order.
func scanRecords[T any](tx *store.NamespaceTx, bucket string, prefix []byte) ([]T, error) {
	var out []T
	var err error
	tx.Bucket(bucket).Scan(prefix, nil, false, func(_, value []byte) bool {
		var v T
		if err = json.Unmarshal(value, &v); err != nil {
			err = fmt.Errorf("%s: %w", bucket, err)
			return false
		}
		out = append(out, v)
		return true
	})
	return out, err
}

// agentVersions returns every version of an API agent, ascending; none
// when the id is not one.
func (s catalogStore) agentVersions(id string) ([]apiAgent, error) {
	var out []apiAgent
	err := s.ns.View(func(tx *store.NamespaceTx) error {
		var err error
		out, err = scanRecords[apiAgent](tx, bucketAPIAgents, []byte(id+"/"))
		return err
	})
	return out, err
}

// agents returns the latest version of every API agent.
func (s catalogStore) agents() ([]apiAgent, error) {
	var all []apiAgent
	err := s.ns.View(func(tx *store.NamespaceTx) error {
		var err error
		all, err = scanRecords[apiAgent](tx, bucketAPIAgents, nil)
		return err
	})
	var out []apiAgent
	for i, a := range all {
		// Keys sort by id then version: the last of a run is the latest.
		if i+1 == len(all) || all[i+1].ID != a.ID {
			out = append(out, a)
		}
	}
	return out, err
}

// putAgentVersion stores a new version; check, given the current latest
// (nil for a new agent), may refuse it inside the same transaction.
func (s catalogStore) putAgentVersion(id string, next func(latest *apiAgent) (apiAgent, error)) (apiAgent, error) {
	var out apiAgent
	err := s.ns.Update(func(tx *store.NamespaceTx) error {
		versions, err := scanRecords[apiAgent](tx, bucketAPIAgents, []byte(id+"/"))
		if err != nil {
			return err
		}
		var latest *apiAgent
		if len(versions) > 0 {
			latest = &versions[len(versions)-1]
		}
		if out, err = next(latest); err != nil {
			return err
		}
		return putRecord(tx, bucketAPIAgents, agentKey(out.ID, out.Version), out)
	})
	return out, err
}

// archiveAgent marks every version of an agent archived.
func (s catalogStore) archiveAgent(id string, now time.Time) ([]apiAgent, error) {
	var versions []apiAgent
	err := s.ns.Update(func(tx *store.NamespaceTx) error {
		var err error
		if versions, err = scanRecords[apiAgent](tx, bucketAPIAgents, []byte(id+"/")); err != nil {
			return err
		}
		if len(versions) == 0 {
			return errNoRecord
		}
		for i := range versions {
			if versions[i].ArchivedAt == nil {
				versions[i].ArchivedAt = &now
				if err := putRecord(tx, bucketAPIAgents, agentKey(id, versions[i].Version), versions[i]); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return versions, err
}

// get reads one record of a bucket.
func getOne[T any](s catalogStore, bucket string, key []byte) (T, error) {
	var v T
	err := s.ns.View(func(tx *store.NamespaceTx) error {
		var err error
		v, err = getCatalogRecord[T](tx, bucket, key)
		return err
	})
	return v, err
}

// listAll reads every record of a bucket under prefix.
func listAll[T any](s catalogStore, bucket string, prefix []byte) ([]T, error) {
	var out []T
	err := s.ns.View(func(tx *store.NamespaceTx) error {
		var err error
		out, err = scanRecords[T](tx, bucket, prefix)
		return err
	})
	return out, err
}

// update changes one record in a transaction; create says whether a
// missing record is made (change then gets the zero value).
func update[T any](s catalogStore, bucket string, key []byte, create bool, change func(v *T) error) (T, error) {
	var v T
	err := s.ns.Update(func(tx *store.NamespaceTx) error {
		var err error
		v, err = getCatalogRecord[T](tx, bucket, key)
		if err != nil && !(create && errors.Is(err, errNoRecord)) {
			return err
		}
		if err := change(&v); err != nil {
			return err
		}
		return putRecord(tx, bucket, key, v)
	})
	return v, err
}

// deleteVault removes a vault and every credential of it.
func (s catalogStore) deleteVault(id string) error {
	return s.ns.Update(func(tx *store.NamespaceTx) error {
		if tx.Bucket(bucketAPIVaults).Get([]byte(id)) == nil {
			return errNoRecord
		}
		if err := tx.Bucket(bucketAPICredentials).DeletePrefix([]byte(id + "/")); err != nil {
			return err
		}
		return tx.Bucket(bucketAPIVaults).Delete([]byte(id))
	})
}

// deleteOne removes one record.
func (s catalogStore) deleteOne(bucket string, key []byte) error {
	return s.ns.Update(func(tx *store.NamespaceTx) error {
		if tx.Bucket(bucket).Get(key) == nil {
			return errNoRecord
		}
		return tx.Bucket(bucket).Delete(key)
	})
}

// exists reports whether a bucket holds key (agents: any version of id).
func (s catalogStore) exists(bucket, id string) bool {
	found := false
	_ = s.ns.View(func(tx *store.NamespaceTx) error {
		if bucket == bucketAPIAgents {
			tx.Bucket(bucket).Scan([]byte(id+"/"), nil, false, func(_, _ []byte) bool {
				found = true
				return false
			})
			return nil
		}
		found = tx.Bucket(bucket).Get([]byte(id)) != nil
		return nil
	})
	return found
}

// firstSeen returns when each key was first seen, recording now for keys
// seen for the first time.
func (s catalogStore) firstSeen(keys []string, now time.Time) (map[string]time.Time, error) {
	out := make(map[string]time.Time, len(keys))
	err := s.ns.Update(func(tx *store.NamespaceTx) error {
		catalog := tx.Bucket(bucketSeen)
		for _, k := range keys {
			key := []byte("seen/" + k)
			if v := catalog.Get(key); len(v) == 8 {
				out[k] = time.Unix(0, int64(binary.BigEndian.Uint64(v))).UTC()
				continue
			}
			if err := catalog.Put(key, be64(uint64(now.UnixNano()))); err != nil {
				return err
			}
			out[k] = now.UTC()
		}
		return nil
	})
	return out, err
}

// CatalogRecords counts the agent versions, environments, vaults and
// credentials in the catalog namespace ns. In cluster mode the daemon
// counts those left in a node's own file (written there by a build that
// kept the catalog per node) to warn that they are not served.
func CatalogRecords(ns *store.Namespace) (int, error) {
	n := 0
	err := ns.View(func(tx *store.NamespaceTx) error {
		for _, bucket := range []string{bucketAPIAgents, bucketAPIEnvironments, bucketAPIVaults, bucketAPICredentials} {
			tx.Bucket(bucket).Scan(nil, nil, false, func(_, _ []byte) bool { n++; return true })
		}
		return nil
	})
	return n, err
}
