// The README's tour with the official TypeScript SDK, against the example
// daemon (./sandbox0d serve --config examples/local.yaml) over its TCP
// listener. From the checkout:
//   npm ci --prefix testdata/tssdk
//   export SANDBOX0D_API_KEY=$(./sandbox0d apikeys create --name ts --json | jq -r .key)
//   node testdata/tssdk/quickstart.mjs
import Anthropic from '@anthropic-ai/sdk';
import { readFileSync } from 'node:fs';

const client = new Anthropic({
  baseURL: process.env.SANDBOX0D_ADDR ?? 'http://127.0.0.1:8080', // examples/local.yaml's listen
  apiKey: process.env.SANDBOX0D_API_KEY, // TCP needs a key: sandbox0d apikeys create
});

const definition = JSON.parse(readFileSync(new URL('../../examples/deployment.json', import.meta.url)));
const deployment = await client.beta.deployments.create(definition);
console.log('deployment', deployment.id, 'next', deployment.schedule.upcoming_runs_at[0]);

const run = await client.beta.deployments.run(deployment.id);
console.log('run', run.id, 'session', run.session_id);

// The turn runs on after the run is recorded: wait for the session to go idle.
let session = await client.beta.sessions.retrieve(run.session_id);
for (let i = 0; i < 100 && session.status !== 'idle' && session.status !== 'terminated'; i++) {
  await new Promise((resolve) => setTimeout(resolve, 100));
  session = await client.beta.sessions.retrieve(run.session_id);
}
for await (const event of client.beta.sessions.events.list(run.session_id)) {
  const text = event.content?.map((block) => block.text).join('') ?? '';
  console.log(event.type, text);
}
