// Package local is the "local" session backend: a deployment run creates a
// session that runs on this machine as a harness command in a workspace
// directory of its own.
//
// It owns the agents, environments and vaults declared under local.* in the
// config file (as a Config the daemon fills in), the bbolt buckets whose
// names start with "local_" (session records, their events, harness stderr
// tails), the workspaces under Config.WorkspaceDir, the harness and git
// processes it starts, and the /v1/sessions… routes of local sessions. It
// must not touch other buckets, parse config files, open listeners, or know
// about deployments beyond the snapshot in a sessions.CreateRequest.
//
// # Turns
//
// A session is a conversation in one workspace. Each turn runs the agent's
// harness (package harness: the command harness, or Claude Code) on that
// turn's input events; messages sent while a turn runs queue for the next
// one. turns.go owns the life cycle, setStatus is the one place a status
// changes after creation, and every process goes through the sandbox seam.
//
// For the command harness, each turn starts the agent's command in the
// workspace (repositories cloned and files copied into it before the first
// turn; files added later through the resources routes, resources.go, are
// copied before the next turn) with:
//   - stdin: the turn's input events (user.message, system.message), one
//     JSON object per line, as recorded (with id and processed_at);
//   - environment: a few of the daemon's variables (PATH, HOME, locale,
//     proxies), then the agent's env, the environment's env and the vault
//     values, then SANDBOX0D_SESSION_ID, SANDBOX0D_TURN, SANDBOX0D_PROMPT
//     (the turn's first user text), SANDBOX0D_DEPLOYMENT_ID,
//     SANDBOX0D_RUN_ID, SANDBOX0D_AGENT_ID, SANDBOX0D_AGENT_VERSION,
//     SANDBOX0D_ENVIRONMENT_ID and SANDBOX0D_WORKSPACE.
//
// Every stdout line becomes an event: a JSON object whose type is a session
// event type a harness may emit (agent.*, span.*, session.error, …) is kept
// as sent, with a fresh id and processed_at; any other line (including status
// and user events, which belong to the daemon) becomes an agent.message with
// the line as text. stderr goes to a bounded tail kept with the session.
// Exit 0 ends the turn (idle, stop_reason end_turn); anything else ends the
// session with a session.error and terminated.
//
// An agent with ClaudeCode set runs the claude-code harness instead (package
// claudecode, which does not import this one): each turn runs the Claude
// Code CLI in the same sandbox with the claude binary's directories shown
// read-only and the session's spend and budget cap (budget.go), and maps its
// stream-json output to official events.
//
// # Session statuses
//
// The official values, used as follows:
//
//	rescheduling  a turn waits for one of local.max_concurrent_sessions
//	              slots (a session.status_rescheduled event marks the wait)
//	running       resources being materialized or a turn running
//	idle          waiting for the next message: a turn ended, was
//	              interrupted (user.interrupt), or was cut short by a
//	              daemon restart or shutdown (with a session.error)
//	terminated    the harness failed, timed out, overran its output caps,
//	              or its output could not be stored; final
//
// # Secrets
//
// A repository's authorization token reaches git only through git's
// environment, as an http.extraHeader in GIT_CONFIG_COUNT/KEY/VALUE scoped to
// the repository's origin; it is never in argv, the remote URL, .git/config,
// bbolt, events or logs, and the harness never sees it (git runs outside the
// sandbox, before the harness starts). With a token git speaks https only
// and follows no redirect, since it would send the header to the redirect
// target. A commit checkout is verified after the fact: a tag named like a
// short sha would otherwise win. Vault values reach the harness as
// environment variables only.
package local
