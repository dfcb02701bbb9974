// The official Managed Agents quickstart with the TypeScript SDK, against a
// local sandbox0d: an agent, an environment, a vault with the LLM credential,
// then a deployment that uses them, all through the API. agents.update makes
// version 2; a deployment pinned to version 1 still runs version 1.
// daemon/quickstart_api_test.go runs it against the scripted Messages API.
// Usage:
//   SANDBOX0D_ADDR=http://127.0.0.1:8080 SANDBOX0D_API_KEY=… \
//   QUICKSTART_MODEL=claude-sonnet-4-6 QUICKSTART_LLM_KEY=sk-ant-… node quickstart_api.mjs
// (QUICKSTART_LLM_HOST, default api.anthropic.com, scopes the key; the daemon
// needs the claude CLI: local.claude_binary.)
import Anthropic from '@anthropic-ai/sdk';

const client = new Anthropic({ baseURL: process.env.SANDBOX0D_ADDR, apiKey: process.env.SANDBOX0D_API_KEY, maxRetries: 0 });
const model = process.env.QUICKSTART_MODEL ?? 'claude-sonnet-4-6';

const agent = await client.beta.agents.create({
  name: 'Coding Assistant',
  model,
  system: 'You are quickstart agent v1.',
  tools: [{ type: 'agent_toolset_20260401' }],
});
console.log('agent', agent.id, 'version', agent.version);

const environment = await client.beta.environments.create({
  name: 'quickstart-env',
  config: { type: 'cloud', networking: { type: 'unrestricted' } },
});
console.log('environment', environment.id);

const llmVault = await client.beta.vaults.create({ display_name: 'LLM' });
const credential = await client.beta.vaults.credentials.create(llmVault.id, {
  auth: {
    type: 'environment_variable',
    secret_name: 'ANTHROPIC_API_KEY',
    secret_value: process.env.QUICKSTART_LLM_KEY ?? process.env.ANTHROPIC_API_KEY,
    networking: { type: 'limited', allowed_hosts: [process.env.QUICKSTART_LLM_HOST ?? 'api.anthropic.com'] },
  },
});
if ('secret_value' in credential.auth) throw new Error('secret_value came back');
console.log('vault', llmVault.id, 'credential', credential.id);

async function runAndWait(deployment, label) {
  const run = await client.beta.deployments.run(deployment.id);
  if (!run.session_id) throw new Error(`run failed: ${JSON.stringify(run.error)}`);
  const stream = await client.beta.sessions.events.stream(run.session_id, {}, { headers: { 'Last-Event-ID': '0' } });
  for await (const event of stream) {
    if (event.type === 'session.status_idle' || event.type === 'session.status_terminated') {
      const session = await client.beta.sessions.retrieve(run.session_id);
      console.log('stop', `v${session.agent.version}`, event.stop_reason?.type ?? event.type, label);
      return;
    }
  }
}

const deploymentParams = {
  name: 'quickstart',
  agent: { type: 'agent', id: agent.id, version: 1 },
  environment_id: environment.id,
  vault_ids: [llmVault.id],
  initial_events: [{ type: 'user.message', content: [{ type: 'text', text: 'Say hello.' }] }],
};
const pinned = await client.beta.deployments.create(deploymentParams);
await runAndWait(pinned, 'pinned');

const v2 = await client.beta.agents.update(agent.id, { version: agent.version, system: 'You are quickstart agent v2.' });
console.log('agent', v2.id, 'version', v2.version);
await runAndWait(pinned, 'pinned');

const latest = await client.beta.deployments.create({ ...deploymentParams, name: 'quickstart-latest', agent: agent.id });
await runAndWait(latest, 'latest');
