package daemon

// keyDocs is the one place each config key's meaning lives: docs/configuration.md
// (`go generate ./...`) and `sandbox0d config defaults` are made from it, and
// TestEveryKeyHasMeaning fails when a key of Config has no entry here. Default
// overrides the default shown when the real one depends on the host (euid,
// systemd's directories) or is computed at run time; otherwise the value
// setDefaults registers is shown.
type keyDoc struct {
	Meaning string
	Default string
}

var keyDocs = map[string]keyDoc{
	"data_dir":         {"database, age identity, local workspaces", "`$STATE_DIRECTORY` (systemd), `/var/lib/sandbox0d` (root) or `./sandbox0d-data`"},
	"socket":           {"Unix socket (mode 0660, trusted); empty disables", "`$RUNTIME_DIRECTORY/sandbox0d.sock` (systemd), `/run/sandbox0d/sandbox0d.sock` (root) or `./sandbox0d.sock`"},
	"listen":           {"TCP address, e.g. `127.0.0.1:8080`; API key required; empty: no TCP", ""},
	"tls.cert":         {"TLS certificate for the TCP listener (set together with `tls.key`)", ""},
	"tls.key":          {"TLS private key for the TCP listener (set together with `tls.cert`)", ""},
	"identity_file":    {"age identity sealing tokens", "`$CREDENTIALS_DIRECTORY/sandbox0d-identity`, else `<data_dir>/keys/identity.age.txt`"},
	"backend":          {"`local`, `upstream` or `none`", "`upstream` if `upstream.url` is set, else `local`"},
	"log.level":        {"`debug`/`info`/`warn`/`error`", ""},
	"log.format":       {"`text`/`json`", ""},
	"shutdown_timeout": {"the whole shutdown budget: in-flight fires, requests, running local harnesses (SIGTERM, then SIGKILL, then the output drain) and the store close all end by it; keep the unit's `TimeoutStopSec` (60s) above it", ""},
	"max_connections":  {"connections each API listener (socket, TCP) holds open; over it a new connection is answered `503` (`overloaded_error`; on TLS only closed) and closed at once, so it holds no file beyond that write; `0`: no cap", ""},
	"deployments_dir":  {"a directory of deployment files (`*.yaml`, `*.yml`, `*.json`, the shape `sandbox0d apply` reads) applied as the deployment set `default` with prune at start, before the scheduler loads, and again on `SIGHUP`; a directory with one bad file (or one whose prune would archive more than half or all of the set: an empty or unmounted directory) applies nothing, logs why (file, line, field) and keeps the last applied state; `sandbox0d_apply_last_success_timestamp_seconds` and `sandbox0d_apply_errors_total` report it. `authorization_token_env` is read from the daemon's environment, `authorization_token_file` relative to the file; empty: off", ""},
	"disk.min_free":    {"reserve on the data dir's file system, in bytes: below it API writes answer `507` saying the disk is nearly full (deployment `POST`/`PUT`/`PATCH`; creating a local session or sending it a message; a `user.interrupt`, `DELETE`, reads, `/admin/` and an upstream backend's sessions pass), local turns that write (output, or a growing workspace) stop with a `session.error` (the session goes idle), scheduled fires of local sessions fail with `session_creation_rejected_error` (the schedule keeps firing), `/readyz` is 503; all resume once space returns (checked at least every second while in use, every 5 s otherwise, and at once on `ENOSPC`); `0` disables", "`268435456` (256 MiB)"},
	"debug.pprof":      {"serve `net/http/pprof` under `/admin/debug/pprof/` on the Unix socket only (never on TCP)", ""},

	"schedule.misfire_grace": {"a fire missed while down runs at startup if younger; `0` disables", ""},
	"schedule.jitter":        {"max deterministic delay per (deployment, scheduled_at)", ""},
	"schedule.workers":       {"concurrent fires (each waits on its commits and its session backend; fires waiting together share one commit; the upstream backend adds its own limit)", ""},
	"schedule.dst_policy":    {"what fixed-time schedules do on DST transition days: `once` (a fixed time fires exactly once per local day) or `literal` (the hosted API's literal wall-clock matching: a time that does not exist is not triggered, one that occurs twice fires twice); applies to fires, `upcoming_runs_at` and the never-fires check of every schedule", ""},

	"auth.api_keys":            {"API keys accepted on TCP besides stored ones (env also `SANDBOX0D_API_KEYS`, comma-separated)", "none"},
	"auth.api_keys_file":       {"file with one key per line", ""},
	"auth.allow_plaintext_tcp": {"allow a non-loopback TCP listener without TLS (behind a TLS proxy)", ""},

	"runs.retention.max_per_deployment": {"runs kept per deployment; `0` disables", ""},
	"runs.retention.max_age":            {"runs older than this are pruned; `0` disables", "`2160h` (90 days)"},
	"runs.retention.interval":           {"how often retention runs (runs, and idempotency keys past their 24 h)", ""},

	"upstream.url":             {"base URL of a Managed Agents API", ""},
	"upstream.api_key":         {"key sent as `x-api-key` upstream", ""},
	"upstream.api_key_file":    {"file holding the key sent as `x-api-key` upstream", ""},
	"upstream.request_timeout": {"per upstream call", ""},
	"upstream.retry_window":    {"transient failures are retried this long", ""},
	"upstream.max_concurrency": {"session creations in flight; more queue", ""},
	"upstream.max_proxy_body":  {"largest request body proxied to the upstream (file uploads); sandbox0d's own routes keep 1 MiB", "`536870912` (512 MiB)"},
	"upstream.allow_plaintext": {"allow an `http://` upstream beyond loopback (the key and tokens would cross the network unencrypted; only behind a TLS-terminating proxy)", ""},

	"local.agents":                    {"agents of the local backend: a harness `command`, or `harness: claude-code`", "none"},
	"local.agents[].id":               {"the agent's id", ""},
	"local.agents[].version":          {"the agent's version", ""},
	"local.agents[].command":          {"the harness's argv (`command[0]` with a slash resolves next to the config file)", ""},
	"local.agents[].env":              {"environment of the harness (names keep their case)", ""},
	"local.agents[].read_only":        {"host paths the harness may read inside the sandbox beyond its program file, absolute or next to the config file", ""},
	"local.agents[].name":             {"describes the agent in API objects only", ""},
	"local.agents[].description":      {"describes the agent in API objects only", ""},
	"local.agents[].harness":          {"`command` (the default when `command` is set) or `claude-code`", ""},
	"local.agents[].model":            {"the model (describes a command harness; passed to claude-code)", ""},
	"local.agents[].system":           {"the system prompt (describes a command harness; passed to claude-code)", ""},
	"local.agents[].append_system":    {"claude-code: text appended to the system prompt", ""},
	"local.agents[].allowed_tools":    {"claude-code: tools allowed", ""},
	"local.agents[].disallowed_tools": {"claude-code: tools refused", ""},
	"local.agents[].mcp_servers":      {"claude-code: MCP servers file (next to the config file when relative)", ""},
	"local.agents[].max_turns":        {"claude-code: maximum turns; `0`: claude's own default", ""},
	"local.agents[].permission_mode":  {"claude-code: permission mode", ""},
	"local.agents[].claude_binary":    {"claude-code: the `claude` program (a bare name is looked up in `PATH`)", ""},

	"local.environments":                                     {"environments of the local backend", "none"},
	"local.environments[].id":                                {"the environment's id", ""},
	"local.environments[].env":                               {"environment variables of its sessions (names keep their case)", ""},
	"local.environments[].timeout":                           {"per turn", "`30m`"},
	"local.environments[].max_output_bytes":                  {"harness output per turn", "10 MiB"},
	"local.environments[].max_events":                        {"events per turn", "`100000`"},
	"local.environments[].networking.type":                   {"`unrestricted` (default) or `limited`", "`unrestricted`"},
	"local.environments[].networking.allowed_hosts":          {"with `limited`, the hosts sessions may reach; with `unrestricted`, only names the loopback/private addresses repository clones may reach", ""},
	"local.environments[].networking.allow_package_managers": {"with `limited`, also allow the package registries", ""},
	"local.environments[].networking.allow_mcp_servers":      {"with `limited`, also allow the agent's MCP servers", ""},
	"local.environments[].limits.memory":                     {"memory of one turn's processes together (RAM, no swap), in bytes or with a unit: `512MiB`, `2GiB` (`K`/`M`/`G`/`T` and `KiB`… are powers of 1024, `KB`/`MB`/`GB`/`TB` of 1000); at least 32 MiB. Over it the turn ends with a `session.error` naming the limit", "min(4 GiB, memory / (`max_concurrent_sessions` + 1))"},
	"local.environments[].limits.processes":                  {"processes and threads of one turn at once; at least 16. A fork past it ends the turn with a `session.error`", "`512`"},
	"local.environments[].limits.cpu":                        {"cores' worth of CPU time per turn, e.g. `1.5`; at least `0.01`", "every CPU (no quota)"},
	"local.environments[].limits.open_files":                 {"`RLIMIT_NOFILE` (soft and hard) of every process of a turn; at least 64", "`4096`"},
	"local.environments[].limits.workspace_bytes":            {"disk the session's workspace may use (allocated blocks, polled every 2 s during a turn and at its end); over it the session is terminated with a `session.error` naming the limit; `-1`: no cap", "`10737418240` (10 GiB)"},

	"local.vaults":              {"vaults of the local backend", "none"},
	"local.vaults[].id":         {"the vault's id", ""},
	"local.vaults[].file":       {"a `KEY=VALUE` file (next to the config file when relative)", ""},
	"local.vaults[].credential": {"a credential name read from `local.credentials_dir`", ""},

	"local.sandbox":                            {"`bubblewrap` (required: refuses to start without a working `bwrap`), `none` (harnesses unconfined, with a WARN), `auto` (on Linux the same as `bubblewrap`: when the probe fails the local backend refuses to start, naming the likely cause and `local.sandbox: none` as the way to run unconfined knowingly; on other OSes none with a loud WARN). The mode in force shows in `/readyz`, `sandbox0d_sandbox_mode` and `sandbox0d status`", ""},
	"local.files_dir":                          {"where `file` resources are copied from (by `file_id`)", ""},
	"local.workspace_dir":                      {"one directory per session", "`<data_dir>/workspaces`"},
	"local.max_concurrent_sessions":            {"turns running at once; more wait (`rescheduling`)", ""},
	"local.workspace_retention":                {"workspaces of terminated sessions are deleted after this", ""},
	"local.session_retention":                  {"terminated, archived, or idle-without-activity sessions are deleted (events and workspace too) after this", ""},
	"local.git_binary":                         {"git used to clone repository resources", ""},
	"local.kill_grace_period":                  {"between SIGTERM and SIGKILL of a harness's process group (at shutdown, shortened to fit `shutdown_timeout`)", ""},
	"local.credentials_dir":                    {"where vault `credential` names are read", "`$CREDENTIALS_DIRECTORY`"},
	"local.egress.max_connections_per_session": {"connections one `limited` session holds open to the egress proxy (all its processes together); over it a new one is answered `503` and closed at once, counted in `sandbox0d_sandbox_egress_total{decision=\"refused\"}` and logged at WARN at most once per 10 s per session; `0`: no cap", ""},
	"local.egress.header_timeout":              {"time an egress connection has to send its whole `CONNECT` or request header (and to start its next request on a kept-alive one); then it is closed", ""},

	"webhooks.endpoints":                    {"webhook receivers", "none"},
	"webhooks.endpoints[].url":              {"the receiver's URL", ""},
	"webhooks.endpoints[].signing_key":      {"signing key (`whsec_…`); one of `signing_key`, `signing_key_file`, `signing_keys`", ""},
	"webhooks.endpoints[].signing_key_file": {"file holding the signing key; a bare name is a systemd credential when `$CREDENTIALS_DIRECTORY` is set", ""},
	"webhooks.endpoints[].signing_keys":     {"several signing keys: every delivery carries one signature per key, so a receiver can move to a new key without a gap", ""},
	"webhooks.endpoints[].events":           {"event types sent; empty means every type", ""},
	"webhooks.endpoints[].allow_plaintext":  {"permit `http://` to a non-loopback host", ""},
	"webhooks.organization_id":              {"the payload's `data.organization_id`", ""},
	"webhooks.workspace_id":                 {"the payload's `data.workspace_id`", ""},
	"webhooks.retry_schedule":               {"waits before each retry; then failed", ""},
	"webhooks.timeout":                      {"per attempt", ""},
	"webhooks.retention":                    {"delivered and failed deliveries are pruned after this", ""},
	"webhooks.max_concurrency":              {"attempts in flight in total", ""},
	"webhooks.max_concurrency_per_endpoint": {"attempts in flight per endpoint", ""},
}
