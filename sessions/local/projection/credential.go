// Package projection keeps vault secrets out of harnesses. A session's
// credentials reach its harness only as placeholders; the egress proxy puts
// the real value back into requests bound for the credential's hosts, and
// nowhere else. This file holds the one type every producer of credentials
// (config-file vaults, vaults created through the API) hands to it.
package projection

// Credential is one secret a session may use.
type Credential struct {
	// VaultID and ID say where the secret came from (ID is empty for a
	// config-file vault's KEY=VALUE line); used in logs and errors, never
	// the value.
	VaultID string
	ID      string
	// Name is the environment variable the harness sees (secret_name).
	Name string
	// Value is the real secret. It never enters a sandbox unless Raw is set.
	Value string
	// Hosts are the host names the secret may be sent to (the credential's
	// networking scope, `limited`); empty means `unrestricted`: any host the
	// session's environment lets it reach.
	Hosts []string
	// Header and Body say where the proxy may substitute the value
	// (injection_location). A credential with neither is never substituted.
	Header bool
	Body   bool
	// Raw hands the real value to the harness (a config vault's
	// `project: false`): the opt-out for tools that need the value itself.
	Raw bool
}
