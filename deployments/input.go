package deployments

import "encoding/json"

// AgentInput names an agent; Version 0 asks for the latest version.
type AgentInput struct {
	ID      string
	Version int64
}

// ResourceInput is a resource as sent by a client, with its write-only token
// in the clear. The token only lives until it is sealed.
type ResourceInput struct {
	Resource
	Token string
}

// Field is an update field: absent (Set false) or present, a null being the
// zero Value (which clears the field).
type Field[T any] struct {
	Set   bool // present in the request; a null leaves Value zero, which clears the field
	Value T
}

// CreateInput is a validated create request.
type CreateInput struct {
	Name          string
	Description   string
	Agent         AgentInput
	EnvironmentID string
	InitialEvents []json.RawMessage
	Resources     []ResourceInput
	VaultIDs      []string
	Metadata      map[string]string
	Budget        json.RawMessage
	Schedule      *Schedule
}

// UpdateInput is a validated update request. Metadata is a patch: a nil
// value deletes the key; MetadataClear (metadata: null) deletes every key
// before the patch, which is then empty.
type UpdateInput struct {
	Name          Field[string]
	Description   Field[string]
	Agent         Field[AgentInput]
	EnvironmentID Field[string]
	InitialEvents Field[[]json.RawMessage]
	Resources     Field[[]ResourceInput]
	VaultIDs      Field[[]string]
	Metadata      map[string]*string
	MetadataClear bool
	Budget        Field[json.RawMessage]
	Schedule      Field[*Schedule]
	// Force lets an update change a deployment owned by a deployment set's
	// files (the next apply restores the files' version).
	Force bool
}
