// Drives a running sandbox0d with the official TypeScript SDK and prints one
// JSON line of findings; httpapi/tssdk_test.go checks them. Usage:
//   SANDBOX0D_URL=http://127.0.0.1:PORT SANDBOX0D_API_KEY=k node smoke.mjs
import Anthropic from '@anthropic-ai/sdk';

const client = new Anthropic({ baseURL: process.env.SANDBOX0D_URL, apiKey: process.env.SANDBOX0D_API_KEY, maxRetries: 0 });
const out = {};
const message = { type: 'user.message', content: [{ type: 'text', text: 'hello from TypeScript' }] };

const created = await client.beta.deployments.create({
  name: 'ts-smoke',
  description: 'made by the TS SDK',
  agent: 'agent_a',
  environment_id: 'env_1',
  initial_events: [message],
  metadata: { a: '1', b: '2' },
  resources: [{ type: 'github_repository', url: 'https://github.com/acme/repo', authorization_token: 'ghp_ts_secret' }],
  schedule: { type: 'cron', expression: '0 9 * * 1-5', timezone: 'Europe/Berlin' },
});
out.created = { id: created.id, version: created.agent.version, upcoming: created.schedule.upcoming_runs_at.length, raw: JSON.stringify(created) };

const updated = await client.beta.deployments.update(created.id, { description: null, schedule: null, metadata: { a: null, c: '3' } });
out.updated = { description: updated.description, schedule: updated.schedule, metadata: updated.metadata };

out.paused = (await client.beta.deployments.pause(created.id)).status;
out.unpaused = (await client.beta.deployments.unpause(created.id)).status;
const run = await client.beta.deployments.run(created.id);
out.run = { id: run.id, session_id: run.session_id, trigger: run.trigger_context.type };
out.runRetrieved = (await client.beta.deploymentRuns.retrieve(run.id)).id;
out.requestId = (await client.beta.deploymentRuns.retrieve(run.id).withResponse()).request_id;

// Auto-paging over every deployment, two per page.
const ids = [];
for await (const d of client.beta.deployments.list({ limit: 2 })) ids.push(d.id);
out.listed = ids;
const runs = [];
for await (const r of client.beta.deploymentRuns.list({ deployment_id: created.id, limit: 1 })) runs.push(r.id);
out.runs = runs;

out.archived = (await client.beta.deployments.archive(created.id)).archived_at !== null;
try {
  await client.beta.deployments.update(created.id, { name: 'x' });
  out.conflict = 'no error';
} catch (e) {
  out.conflict = { status: e.status, type: e.error?.error?.type };
}
console.log(JSON.stringify(out));
