package store

import "slices"

// The schema: every bucket of the file, whichever package owns it, with its
// key and value layout, in one block (after etcd's schema/bucket.go). A
// bucket that is not declared here cannot be opened through this package, so
// a new one cannot slip into the file unreviewed.

// SchemaVersion is the layout version written to the meta bucket. Opening a
// file with a newer version fails instead of misreading it. Bump it when a
// change below needs a migration (adding a bucket does not: init creates
// missing buckets).
const SchemaVersion = 1

// bucket is one declared bucket.
type bucket struct {
	name []byte
	// namespace is "" for the store's own buckets, else the namespace whose
	// handle (Store.Namespace) may open it; its name is namespace_local
	// (the catalog's keep their older local_ names, see catalogBucket).
	namespace string
	local     string // name within the namespace
}

func storeBucket(name string) bucket { return bucket{name: []byte(name)} }

func namespaceBucket(namespace, local string) bucket {
	return bucket{name: []byte(namespace + "_" + local), namespace: namespace, local: local}
}

// The store's buckets. created is 8 bytes of big-endian unix nanoseconds
// (keys.go), so created|id sorts by creation time.
var (
	bucketMeta             = storeBucket("meta")                   // schema_version, cursor_secret
	bucketDeployments      = storeBucket("deployments")            // id → document
	bucketDeplByCreated    = storeBucket("deployments_by_created") // created|id → flags | agent_id
	bucketDeplByAgent      = storeBucket("deployments_by_agent")   // agent_id 0x00 created|id → nil
	bucketRuns             = storeBucket("runs")                   // id → document
	bucketRunsByCreated    = storeBucket("runs_by_created")        // created|id → run index entry (runs.go)
	bucketRunsByDeployment = storeBucket("runs_by_deployment")     // deployment_id 0x00 created|id → run index entry
	bucketScheduledRuns    = storeBucket("runs_by_scheduled_at")   // deployment_id 0x00 scheduled_at → run id (unique)
	bucketIntents          = storeBucket("run_intents")            // run id → intent document
	bucketRunsBySession    = storeBucket("runs_by_session")        // session id → run id (runs recorded with a session)
	bucketAPIKeys          = storeBucket("api_keys")               // id → APIKey JSON (hash only, never the key)
)

// Idempotency keys (idempotency.go): the first answer to a creating POST,
// replayed for a retry that carries the same Idempotency-Key.
var (
	bucketIdempotency          = storeBucket("idempotency_keys")       // scope 0x00 key → answer document (opaque)
	bucketIdempotencyByCreated = storeBucket("idempotency_by_created") // created | scope 0x00 key → nil (expiry)
)

// The webhook outbox (webhooks.go), written in the same transaction as the
// change it reports.
var (
	bucketWebhookEvents     = storeBucket("webhook_events")     // seq → WebhookEvent JSON with its endpoints (fanned out)
	bucketWebhookEventIDs   = storeBucket("webhook_event_ids")  // event id → seq
	bucketWebhookOutbox     = storeBucket("webhook_outbox")     // seq → WebhookEvent JSON: committed, not yet fanned out
	bucketWebhookDeliveries = storeBucket("webhook_deliveries") // endpoint 0x00 seq → WebhookDelivery JSON
	bucketWebhookDue        = storeBucket("webhook_due")        // endpoint 0x00 next_attempt_at seq → nil (pending only)
	bucketWebhookFailed     = storeBucket("webhook_failed")     // endpoint 0x00 seq → nil
	bucketWebhookFinished   = storeBucket("webhook_finished")   // finished_at endpoint 0x00 seq → nil (retention)
)

// NamespaceLocal is the local session backend's namespace (sessions/local).
const NamespaceLocal = "local"

// The local session backend's buckets, opened through its Namespace handle.
// Files written before the schema block also hold a local_meta bucket with
// that package's own schema version (1); it is left alone and no longer read.
var (
	bucketLocalSessions     = namespaceBucket(NamespaceLocal, "sessions")               // id → session record JSON
	bucketLocalByCreated    = namespaceBucket(NamespaceLocal, "sessions_by_created")    // created|id → nil
	bucketLocalByDeployment = namespaceBucket(NamespaceLocal, "sessions_by_deployment") // deployment_id 0x00 created|id → nil
	bucketLocalEvents       = namespaceBucket(NamespaceLocal, "events")                 // session id '/' seq(8) → event JSON
	bucketLocalStderr       = namespaceBucket(NamespaceLocal, "stderr")                 // session id → harness stderr tail
)

// NamespaceCatalog is the catalog of the local backend: the agents, environments, vaults and vault credentials created
// through the API, and when each config-declared one was first seen. It is
// apart from NamespaceLocal because in cluster mode it is shared: every
// node serves and resolves the same catalog from the shared store (etcd),
// while each node's sessions stay in its own file. On one box it is the
// same bbolt file as everything else.
const NamespaceCatalog = "catalog"

// The catalog's buckets keep the names they had in the local namespace
// (local_…), so a file written before the catalog was a namespace of its
// own opens as it is: no migration, same file, same buckets.
func catalogBucket(local string) bucket {
	return bucket{name: []byte(NamespaceLocal + "_" + local), namespace: NamespaceCatalog, local: local}
}

var (
	bucketCatalogSeen = catalogBucket("catalog") // "seen/" kind/id → first seen (unix ns)
	// Agents, environments, vaults and vault credentials created through
	// the API (config-declared ones live in the config file). Credentials
	// hold their secret sealed to the daemon's age identity, never clear.
	bucketCatalogAgents       = catalogBucket("api_agents")       // id '/' version(8) → agent version JSON
	bucketCatalogEnvironments = catalogBucket("api_environments") // id → environment JSON
	bucketCatalogVaults       = catalogBucket("api_vaults")       // id → vault JSON
	bucketCatalogCredentials  = catalogBucket("api_credentials")  // vault id '/' credential id → credential JSON (sealed secret)
	// Issue 26: a session change not yet copied into the cluster's index,
	// written in the change's own transaction and drained to the index.
	bucketLocalIndexPending = namespaceBucket(NamespaceLocal, "index_pending") // session id → change token (8)
)

// NamespaceSessionIndex is the cluster's session index (issue 26): one copy
// of every local session's record, tagged with the node that owns it, in the
// shared store, so any node lists every session. Same layout as the local
// namespace's three session buckets, so the same listing code reads it.
const NamespaceSessionIndex = "session_index"

var (
	bucketIndexSessions     = namespaceBucket(NamespaceSessionIndex, "sessions")               // id → record JSON with "node"
	bucketIndexByCreated    = namespaceBucket(NamespaceSessionIndex, "sessions_by_created")    // created|id → nil
	bucketIndexByDeployment = namespaceBucket(NamespaceSessionIndex, "sessions_by_deployment") // deployment_id 0x00 created|id → nil
	// A session deleted while its node was dead: the node deletes its
	// record, events and workspace when it returns, then the tombstone.
	bucketIndexTombstones = namespaceBucket(NamespaceSessionIndex, "tombstones") // node 0x00 session id → tombstone JSON
)

// schema lists every bucket; init creates the missing ones.
var schema = []bucket{
	bucketMeta, bucketDeployments, bucketDeplByCreated, bucketDeplByAgent,
	bucketRuns, bucketRunsByCreated, bucketRunsByDeployment, bucketScheduledRuns, bucketIntents, bucketRunsBySession,
	bucketAPIKeys,
	bucketIdempotency, bucketIdempotencyByCreated,
	bucketWebhookEvents, bucketWebhookEventIDs, bucketWebhookOutbox, bucketWebhookDeliveries,
	bucketWebhookDue, bucketWebhookFailed, bucketWebhookFinished,
	bucketLocalSessions, bucketLocalByCreated, bucketLocalByDeployment, bucketLocalEvents, bucketLocalStderr,
	bucketCatalogSeen, bucketCatalogAgents, bucketCatalogEnvironments, bucketCatalogVaults, bucketCatalogCredentials,
	bucketIndexSessions, bucketIndexByCreated, bucketIndexByDeployment, // issue 26: session index
	bucketLocalIndexPending, bucketIndexTombstones, // issue 26: durable index copy, deletes on a dead node
}

// IsShared says whether namespace name lives in the shared store in
// cluster mode (SharedNamespaces, migrate.go).
func IsShared(name string) bool { return slices.Contains(SharedNamespaces, name) }

var (
	keySchemaVersion = []byte("schema_version")
	keyCursorSecret  = []byte("cursor_secret")
)
