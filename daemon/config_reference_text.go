package daemon

// configIntro and configOutro are the prose around the generated table of
// docs/configuration.md: the rules that hold for every key.
const configIntro = "Precedence: flags > environment (`SANDBOX0D_…`, dots become underscores: `schedule.misfire_grace` →\n" +
	"`SANDBOX0D_SCHEDULE_MISFIRE_GRACE`) > YAML file (`--config`, else `/etc/sandbox0d/config.yaml` if it exists) >\n" +
	"defaults. Every key has a default, so env-only configuration works; `sandbox0d config defaults` prints every key\n" +
	"with its default and meaning as YAML that loads back. Invalid values stop the daemon with a message naming the key.\n" +
	"Keys are strict: an unknown key in the file stops the daemon naming the key and the file\n" +
	"(`config /etc/sandbox0d/config.yaml: shedule.workers: unknown key; did you mean schedule.workers?`), and a\n" +
	"`SANDBOX0D_…` variable that matches no key is a startup warning with the same suggestion (the CLI's\n" +
	"`SANDBOX0D_ADDR`, `SANDBOX0D_API_KEY`, `SANDBOX0D_SOCKET` and `SANDBOX0D_CONFIG` are known and silent). Map keys\n" +
	"you choose (environment variable names under `env:`) keep their case exactly. Keys under a list\n" +
	"(`local.agents[].id`) are set in the file only.\n\n" +
	"**Relative paths** in the YAML file resolve next to that file, whatever the daemon's working directory:\n" +
	"`data_dir`, `socket`, `identity_file`, `tls.cert`/`tls.key`, `auth.api_keys_file`, `upstream.api_key_file`,\n" +
	"`webhooks.endpoints[].signing_key_file`, `local.files_dir`, `local.workspace_dir`, `local.credentials_dir`,\n" +
	"`local.vaults[].file`, a claude-code agent's `mcp_servers`, and a program given as a path with a slash\n" +
	"(`local.git_binary`, an agent's `command[0]`, `claude_binary`: `./harness.sh`). A bare program name (`git`,\n" +
	"`claude`, `sh`) is looked up in `PATH`, and a bare `signing_key_file` names a systemd credential when\n" +
	"`$CREDENTIALS_DIRECTORY` is set. Paths given by a flag or a `SANDBOX0D_…` variable resolve against the\n" +
	"working directory, as on any command line; defaults are as the table says.\n\n" +
	"**Secret files** readable or writable by group or others draw a WARN at start naming the key and the mode\n" +
	"(`secret file is readable or writable by group or others; restrict it with chmod 600`): the age identity,\n" +
	"`local.vaults[].file`, `auth.api_keys_file`, `upstream.api_key_file`, `webhooks.endpoints[].signing_key_file`\n" +
	"and `tls.key`.\n\n"

const configOutro = "\n`SIGHUP` reloads the log level, API keys, run retention, the webhooks section and the TLS key pair (re-read from\n" +
	"`tls.cert`/`tls.key`; a pair that does not load keeps the running one and logs why); other keys need a restart.\n" +
	"The TLS key pair is loaded and checked before `READY=1`, so a bad path stops the start.\n"
