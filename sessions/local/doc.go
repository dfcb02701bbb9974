// Package local is the "local" session backend: deployments fire sessions
// that run on this machine as a harness command in a workspace directory of
// their own.
//
// It owns the agents, environments and vaults declared under local.* in the
// config file (as a Config the daemon fills), the bbolt buckets whose names
// start with "local_" (session records, their events, harness stderr tails),
// the workspaces under Config.WorkspaceDir, the harness and git processes it
// starts, and the /v1/sessions… routes served for local sessions.
//
// It must not touch other buckets, parse config files, open listeners, or
// know about deployments beyond the snapshot in sessions.CreateRequest.
//
// Session status model (the official values):
//
//	rescheduling  accepted but waiting for a slot (local.max_concurrent_sessions);
//	              a session.status_rescheduled event marks the wait
//	running       workspace being prepared or the harness process running
//	idle          the harness exited 0 (session.status_idle, stop_reason end_turn);
//	              a local session takes no further input, so idle is final
//	terminated    the harness failed, timed out, overran its output cap, was
//	              interrupted, or the daemon stopped or restarted
//
// Secrets: repository tokens reach git only through its environment
// (GIT_CONFIG_COUNT/KEY/VALUE carrying an http.extraHeader), never argv, the
// remote URL, .git/config, bbolt, events or logs. Vault values reach the
// harness only as environment variables.
package local
