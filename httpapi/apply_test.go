package httpapi_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// setDoc is one document of a deployment set in the apply contract's shape.
func setDoc(key, name string, mutate ...func(map[string]any)) map[string]any {
	def := validBody()
	def["name"] = name
	def["schedule"] = map[string]any{"type": "cron", "expression": "0 9 * * *", "timezone": "UTC"}
	for _, m := range mutate {
		m(def)
	}
	return map[string]any{"key": key, "source": key + ":1", "definition": def}
}

func setBody(docs ...map[string]any) map[string]any {
	if docs == nil {
		docs = []map[string]any{}
	}
	return map[string]any{"deployments": docs}
}

func (e *env) apply(route string, body map[string]any, query ...string) (int, map[string]any) {
	e.t.Helper()
	path := "/v1/deployment_sets/default/" + route
	if len(query) > 0 {
		path += "?" + query[0]
	}
	status, out, _ := e.raw("POST", path, body)
	return status, out
}

// changesOf returns the plan's changes without their deployment ids (which
// are random) as compact JSON, for golden comparisons.
func changesOf(t *testing.T, plan map[string]any) string {
	t.Helper()
	changes, _ := plan["changes"].([]any)
	for _, c := range changes {
		delete(c.(map[string]any), "deployment_id")
	}
	data, err := json.Marshal(changes)
	require.NoError(t, err)
	return string(data)
}

func withToken(tok string) func(map[string]any) {
	return func(def map[string]any) {
		def["resources"] = []any{map[string]any{"type": "github_repository", "url": "https://github.com/o/r", "authorization_token": tok}}
	}
}

func TestApplyPlanGolden(t *testing.T) {
	e := newEnv(t)
	docs := []map[string]any{setDoc("b.yaml", "beta", withToken("ghp_first_secret")), setDoc("a.yaml", "alpha")}

	// create: the plan changes nothing and names no id.
	tx := e.store.LastTxID()
	status, plan := e.apply("plan", setBody(docs...))
	require.Equal(t, 200, status, "%v", plan)
	require.JSONEq(t, `[{"key":"a.yaml","action":"create"},{"key":"b.yaml","action":"create"}]`, changesOf(t, plan))
	require.Equal(t, false, plan["applied"])
	require.True(t, strings.HasPrefix(plan["hash"].(string), "sha256:"))
	require.Equal(t, tx, e.store.LastTxID(), "a plan commits nothing")
	createHash := plan["hash"]

	status, applied := e.apply("apply", setBody(docs...))
	require.Equal(t, 200, status, "%v", applied)
	require.Equal(t, true, applied["applied"])
	require.Equal(t, createHash, applied["hash"], "the apply's plan is the dry run's")
	ids := map[string]string{}
	for _, c := range applied["changes"].([]any) {
		m := c.(map[string]any)
		require.NotEmpty(t, m["deployment_id"], "an applied create names its deployment")
		ids[m["key"].(string)] = m["deployment_id"].(string)
	}
	status, got, _ := e.raw("GET", "/v1/deployments/"+ids["b.yaml"], nil)
	require.Equal(t, 200, status)
	require.Equal(t, map[string]any{"set": "default", "key": "b.yaml"}, got["managed_by"])

	// unchanged: the same documents against the same state.
	status, plan = e.apply("plan", setBody(docs...))
	require.Equal(t, 200, status)
	require.JSONEq(t, `[{"key":"a.yaml","action":"unchanged"},{"key":"b.yaml","action":"unchanged"}]`, changesOf(t, plan))
	unchangedHash := plan["hash"]
	status, plan = e.apply("plan", setBody(docs[1], docs[0])) // order does not matter
	require.Equal(t, 200, status)
	require.Equal(t, unchangedHash, plan["hash"])

	// update with a diff; the token change shows as a flag, never its value.
	docs[0] = setDoc("b.yaml", "beta two", withToken("ghp_second_secret"), func(d map[string]any) {
		d["schedule"] = map[string]any{"type": "cron", "expression": "30 9 * * *", "timezone": "UTC"}
	})
	status, plan, _ = e.raw("POST", "/v1/deployment_sets/default/plan", setBody(docs...))
	require.Equal(t, 200, status)
	require.JSONEq(t, `[{"key":"a.yaml","action":"unchanged"},{"key":"b.yaml","action":"update","diff":[
		{"field":"name","from":"beta","to":"beta two"},
		{"field":"schedule.expression","from":"0 9 * * *","to":"30 9 * * *"},
		{"field":"resources[0].authorization_token","from":"(sealed)","to":"(changed)"}]}]`, changesOf(t, plan))
	raw, _ := json.Marshal(plan)
	require.NotContains(t, string(raw), "ghp_", "a plan never holds a token")

	status, applied = e.apply("apply", setBody(docs...))
	require.Equal(t, 200, status)
	require.Equal(t, true, applied["applied"])
	status, plan = e.apply("plan", setBody(docs...))
	require.Equal(t, 200, status)
	require.JSONEq(t, `[{"key":"a.yaml","action":"unchanged"},{"key":"b.yaml","action":"unchanged"}]`, changesOf(t, plan),
		"the new token is the stored one now")
}

func TestApplyIsIdempotent(t *testing.T) {
	e := newEnv(t)
	docs := []map[string]any{setDoc("a.yaml", "alpha", withToken("tok-a")), setDoc("b.yaml", "beta")}
	status, out := e.apply("apply", setBody(docs...))
	require.Equal(t, 200, status, "%v", out)
	require.Equal(t, true, out["applied"])

	tx := e.store.LastTxID()
	status, out = e.apply("apply", setBody(docs...))
	require.Equal(t, 200, status, "%v", out)
	require.Equal(t, false, out["applied"], "nothing to change: nothing applied")
	require.Equal(t, tx, e.store.LastTxID(), "a second apply of the same documents commits no transaction")
}

func TestApplyPruneAndGuards(t *testing.T) {
	e := newEnv(t)
	four := []map[string]any{setDoc("a", "a"), setDoc("b", "b"), setDoc("c", "c"), setDoc("d", "d")}
	status, out := e.apply("apply", setBody(four...))
	require.Equal(t, 200, status, "%v", out)

	// Without prune a missing document is left alone.
	status, plan := e.apply("plan", setBody(four[:3]...))
	require.Equal(t, 200, status)
	require.JSONEq(t, `[{"key":"a","action":"unchanged"},{"key":"b","action":"unchanged"},{"key":"c","action":"unchanged"}]`, changesOf(t, plan))

	// With prune it is archived (1 of 4: within the guard).
	body := setBody(four[:3]...)
	body["prune"] = true
	status, plan = e.apply("plan", body)
	require.Equal(t, 200, status, "%v", plan)
	var dID string
	for _, c := range plan["changes"].([]any) {
		if m := c.(map[string]any); m["key"] == "d" {
			dID = m["deployment_id"].(string) // a plan names what it would archive
		}
	}
	require.JSONEq(t, `[{"key":"a","action":"unchanged"},{"key":"b","action":"unchanged"},{"key":"c","action":"unchanged"},{"key":"d","action":"archive"}]`, changesOf(t, plan))
	status, out = e.apply("apply", body)
	require.Equal(t, 200, status, "%v", out)
	status, got, _ := e.raw("GET", "/v1/deployments/"+dID, nil)
	require.Equal(t, 200, status, "prune archives, it never deletes")
	require.NotNil(t, got["archived_at"])

	// Guard: archiving 2 of the 3 left is more than half.
	tx := e.store.LastTxID()
	body = setBody(four[:1]...)
	body["prune"] = true
	status, out = e.apply("apply", body)
	require.Equal(t, 409, status, "%v", out)
	require.Contains(t, errMessage(out), "prune would archive 2 of the 3 deployments of set \"default\" (more than half of it)")
	require.Contains(t, errMessage(out), "pass force")
	require.Equal(t, tx, e.store.LastTxID())

	// Guard: an empty directory would archive all of it.
	body = setBody()
	body["prune"] = true
	status, out = e.apply("plan", body)
	require.Equal(t, 409, status, "%v", out)
	require.Contains(t, errMessage(out), "archive 3 of the 3 deployments of set \"default\" (all of it)")

	// force overrides the guard.
	body = setBody(four[:1]...)
	body["prune"], body["force"] = true, true
	status, out = e.apply("apply", body)
	require.Equal(t, 200, status, "%v", out)
	require.JSONEq(t, `[{"key":"a","action":"unchanged"},{"key":"b","action":"archive"},{"key":"c","action":"archive"}]`, changesOf(t, out))
}

func TestApplyIfMatch(t *testing.T) {
	e := newEnv(t)
	docs := []map[string]any{setDoc("a", "a")}
	status, plan := e.apply("plan", setBody(docs...))
	require.Equal(t, 200, status)
	hash := plan["hash"].(string)

	// Someone else applies a different version in between.
	status, _ = e.apply("apply", setBody(setDoc("a", "other")))
	require.Equal(t, 200, status)

	tx := e.store.LastTxID()
	body := setBody(docs...)
	body["if_match"] = hash
	status, out := e.apply("apply", body)
	require.Equal(t, 412, status, "%v", out)
	require.Contains(t, errMessage(out), "if_match: the plan changed")
	require.Contains(t, errMessage(out), "update a name", "the error shows the current plan")
	require.Equal(t, tx, e.store.LastTxID(), "a refused apply commits nothing")

	status, plan = e.apply("plan", setBody(docs...))
	require.Equal(t, 200, status)
	body["if_match"] = plan["hash"]
	status, out = e.apply("apply", body)
	require.Equal(t, 200, status, "%v", out)
	require.Equal(t, true, out["applied"])
}

func TestApplyBadDocumentAppliesNothing(t *testing.T) {
	e := newEnv(t)
	docs := make([]map[string]any, 500)
	for i := range docs {
		docs[i] = setDoc(fmt.Sprintf("jobs/%03d.yaml", i), fmt.Sprintf("job %d", i))
	}
	docs[250]["definition"].(map[string]any)["schedule"] = map[string]any{"type": "cron", "expression": "61 * * * *", "timezone": "UTC"}
	tx := e.store.LastTxID()
	status, out := e.apply("apply", setBody(docs...))
	require.Equal(t, 400, status, "%v", out)
	require.True(t, strings.HasPrefix(errMessage(out), "deployments[250].definition.schedule.expression: "), errMessage(out))
	require.Contains(t, errMessage(out), "(in jobs/250.yaml:1)")
	require.Equal(t, tx, e.store.LastTxID(), "nothing applied")

	// The same error as a create of that definition, prefixed.
	status, created, _ := e.raw("POST", "/v1/deployments", docs[250]["definition"])
	require.Equal(t, 400, status)
	require.Equal(t, "deployments[250].definition."+errMessage(created)+" (in jobs/250.yaml:1)", errMessage(out))

	// A reference the backend does not know, in the last document.
	docs[250] = setDoc("jobs/250.yaml", "job 250")
	docs[499]["definition"].(map[string]any)["environment_id"] = "env_missing"
	status, out = e.apply("apply", setBody(docs...))
	require.Equal(t, 400, status, "%v", out)
	require.Contains(t, errMessage(out), "deployments[499].definition.environment_id")
	require.Equal(t, tx, e.store.LastTxID(), "nothing applied")

	docs[499] = setDoc("jobs/499.yaml", "job 499")
	status, out = e.apply("apply", setBody(docs...))
	require.Equal(t, 200, status, "%v", out)
	require.Equal(t, 500, len(out["changes"].([]any)))
	require.Equal(t, tx+1, e.store.LastTxID(), "500 creates in one transaction")
}

func TestApplyOwnership(t *testing.T) {
	e := newEnv(t)
	docs := []map[string]any{setDoc("nightly/digest.yaml#0", "digest")}
	status, out := e.apply("apply", setBody(docs...))
	require.Equal(t, 200, status, "%v", out)
	id := out["changes"].([]any)[0].(map[string]any)["deployment_id"].(string)

	// An API update of a managed deployment names the set and key.
	status, got, _ := e.raw("POST", "/v1/deployments/"+id, map[string]any{"name": "renamed"})
	require.Equal(t, 409, status, "%v", got)
	require.Contains(t, errMessage(got), `managed by deployment set "default" (key "nightly/digest.yaml#0")`)
	require.Contains(t, errMessage(got), "?force=true")

	// force lets it through; the next plan restores the file's version.
	status, got, _ = e.raw("POST", "/v1/deployments/"+id+"?force=true", map[string]any{"name": "renamed"})
	require.Equal(t, 200, status, "%v", got)
	require.Equal(t, "renamed", got["name"])
	status, plan := e.apply("plan", setBody(docs...))
	require.Equal(t, 200, status)
	require.JSONEq(t, `[{"key":"nightly/digest.yaml#0","action":"update","diff":[{"field":"name","from":"renamed","to":"digest"}]}]`, changesOf(t, plan))
	status, _ = e.apply("apply", setBody(docs...))
	require.Equal(t, 200, status)

	// Pause stays allowed, and survives an apply whose file does not state it.
	status, got, _ = e.raw("POST", "/v1/deployments/"+id+"/pause", nil)
	require.Equal(t, 200, status, "%v", got)
	tx := e.store.LastTxID()
	status, out = e.apply("apply", setBody(docs...))
	require.Equal(t, 200, status)
	require.Equal(t, false, out["applied"])
	require.Equal(t, tx, e.store.LastTxID())
	status, got, _ = e.raw("GET", "/v1/deployments/"+id, nil)
	require.Equal(t, 200, status)
	require.Equal(t, "paused", got["status"])

	// A file that states paused: false owns it.
	docs[0]["definition"].(map[string]any)["paused"] = false
	status, plan = e.apply("apply", setBody(docs...))
	require.Equal(t, 200, status, "%v", plan)
	require.JSONEq(t, `[{"key":"nightly/digest.yaml#0","action":"update","diff":[{"field":"paused","from":true,"to":false}]}]`, changesOf(t, plan))
	status, got, _ = e.raw("GET", "/v1/deployments/"+id, nil)
	require.Equal(t, 200, status)
	require.Equal(t, "active", got["status"])

	// An API-made deployment carries no managed_by and updates freely.
	status, got, _ = e.raw("POST", "/v1/deployments", validBody())
	require.Equal(t, 200, status)
	_, hasManaged := got["managed_by"]
	require.False(t, hasManaged)
}

// Sets are separate: another set neither sees nor prunes default's members,
// and an API-made deployment belongs to no set.
func TestApplySetsAreSeparate(t *testing.T) {
	e := newEnv(t)
	status, out := e.apply("apply", setBody(setDoc("a", "a"), setDoc("b", "b")))
	require.Equal(t, 200, status, "%v", out)
	status, _, _ = e.raw("POST", "/v1/deployments", validBody())
	require.Equal(t, 200, status)

	body := setBody(setDoc("a", "other a"))
	body["prune"] = true
	status, out, _ = e.raw("POST", "/v1/deployment_sets/other/apply", body)
	require.Equal(t, 200, status, "%v", out)
	require.JSONEq(t, `[{"key":"a","action":"create"}]`, changesOf(t, out))
	status, plan := e.apply("plan", setBody(setDoc("a", "a"), setDoc("b", "b")))
	require.Equal(t, 200, status)
	require.JSONEq(t, `[{"key":"a","action":"unchanged"},{"key":"b","action":"unchanged"}]`, changesOf(t, plan))

	status, out, _ = e.raw("POST", "/v1/deployment_sets/no%20spaces/plan", setBody())
	require.Equal(t, 400, status, "%v", out)
	require.Contains(t, errMessage(out), "set: ")
}

// An existing deployment that belongs to no set is taken into the set by the
// document that names it in adopt: same id, its runs and pause kept, the
// plan says managed_by changes; afterwards the document matches by key and
// applies unchanged. A deployment owned by another set, a missing one and
// one adopted twice are refused, and nothing is applied.
func TestApplyAdoptsAnUnmanagedDeployment(t *testing.T) {
	e := newEnv(t)
	def := setDoc("digest.yaml", "digest")["definition"].(map[string]any)
	status, created, _ := e.raw("POST", "/v1/deployments", def)
	require.Equal(t, 200, status, "%v", created)
	id := created["id"].(string)
	status, _, _ = e.raw("POST", "/v1/deployments/"+id+"/pause", map[string]any{})
	require.Equal(t, 200, status)

	adopting := setDoc("digest.yaml", "digest", func(d map[string]any) { d["adopt"] = id })
	status, plan := e.apply("plan", setBody(adopting))
	require.Equal(t, 200, status, "%v", plan)
	require.JSONEq(t, `[{"key":"digest.yaml","action":"update","diff":[{"field":"managed_by","from":null,"to":{"set":"default","key":"digest.yaml"}}]}]`,
		changesOf(t, plan))

	status, applied := e.apply("apply", setBody(adopting))
	require.Equal(t, 200, status, "%v", applied)
	require.Equal(t, id, applied["changes"].([]any)[0].(map[string]any)["deployment_id"], "the same deployment, not a copy")
	status, got, _ := e.raw("GET", "/v1/deployments/"+id, nil)
	require.Equal(t, 200, status)
	require.Equal(t, map[string]any{"set": "default", "key": "digest.yaml"}, got["managed_by"])
	require.Equal(t, "paused", got["status"], "run-time state is the daemon's")

	tx := e.store.LastTxID()
	status, again := e.apply("apply", setBody(adopting))
	require.Equal(t, 200, status, "%v", again)
	require.JSONEq(t, `[{"key":"digest.yaml","action":"unchanged"}]`, changesOf(t, again))
	require.Equal(t, tx, e.store.LastTxID(), "once adopted, the document applies unchanged")

	// Owned by a set already (here: default, under another key): refused.
	thief := setDoc("other.yaml", "digest", func(d map[string]any) { d["adopt"] = id })
	status, body, _ := e.raw("POST", "/v1/deployment_sets/other/apply", setBody(thief))
	require.Equal(t, 409, status, "%v", body)
	require.Contains(t, fmt.Sprint(body), `it belongs to set "default" as "digest.yaml"`)

	status, body, _ = e.raw("POST", "/v1/deployment_sets/other/apply", setBody(
		setDoc("x.yaml", "x", func(d map[string]any) { d["adopt"] = "depl_000000000000000000000000" })))
	require.Equal(t, 400, status, "%v", body)
	require.Contains(t, fmt.Sprint(body), "deployments[0].definition.adopt")

	status, created, _ = e.raw("POST", "/v1/deployments", def)
	require.Equal(t, 200, status)
	two := created["id"].(string)
	status, body, _ = e.raw("POST", "/v1/deployment_sets/other/apply", setBody(
		setDoc("a.yaml", "a", func(d map[string]any) { d["adopt"] = two }),
		setDoc("b.yaml", "b", func(d map[string]any) { d["adopt"] = two })))
	require.Equal(t, 400, status, "%v", body)
	require.Contains(t, fmt.Sprint(body), "is also adopted by")
	status, got, _ = e.raw("GET", "/v1/deployments/"+two, nil)
	require.Equal(t, 200, status)
	require.Nil(t, got["managed_by"], "a refused apply adopts nothing")
}
