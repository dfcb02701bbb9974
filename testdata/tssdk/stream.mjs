// The official streaming pattern with the official TypeScript SDK, for three
// turns of one session: open the stream, send a user.message, read until
// session.status_idle. Prints one JSON line; sessions/local/livetail_test.go
// checks it. Usage:
//   SANDBOX0D_URL=http://127.0.0.1:PORT SANDBOX0D_API_KEY=k SANDBOX0D_AGENT=agent_x \
//   SANDBOX0D_ENVIRONMENT=env_x node stream.mjs
import Anthropic from '@anthropic-ai/sdk';

const client = new Anthropic({ baseURL: process.env.SANDBOX0D_URL, apiKey: process.env.SANDBOX0D_API_KEY, maxRetries: 0 });
const session = await client.beta.sessions.create({
  agent: process.env.SANDBOX0D_AGENT,
  environment_id: process.env.SANDBOX0D_ENVIRONMENT,
});
const out = { turns: [], streamedIDs: [], listedIDs: [] };
for (let turn = 1; turn <= 3; turn++) {
  const stream = await client.beta.sessions.events.stream(session.id);
  await client.beta.sessions.events.send(session.id, {
    events: [{ type: 'user.message', content: [{ type: 'text', text: `message ${turn}` }] }],
  });
  const seen = { types: [], texts: [] };
  for await (const ev of stream) {
    seen.types.push(ev.type);
    out.streamedIDs.push(ev.id);
    if (ev.type === 'agent.message') seen.texts.push(ev.content.map((b) => b.text).join('\n'));
    if (ev.type === 'session.status_idle') break;
  }
  out.turns.push(seen);
}
for await (const ev of client.beta.sessions.events.list(session.id)) out.listedIDs.push(ev.id);
console.log(JSON.stringify(out));
