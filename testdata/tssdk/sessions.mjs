// Reads a local session of a running sandbox0d with the official TypeScript
// SDK and prints one JSON line of findings; sessions/local/tssdk_test.go
// checks them. The session has run one turn when this starts. Usage:
//   SANDBOX0D_URL=http://127.0.0.1:PORT SANDBOX0D_SESSION=sesn_… node sessions.mjs
import Anthropic from '@anthropic-ai/sdk';

const client = new Anthropic({ baseURL: process.env.SANDBOX0D_URL, apiKey: 'test-key', maxRetries: 0 });
const id = process.env.SANDBOX0D_SESSION;
const out = { ids: [] };
// What a client that guards with `!== null` sees: present and null, or not.
const details = (ev) => ({ present: 'stop_details' in ev, isNull: ev.stop_details === null });

const listed = [];
for await (const ev of client.beta.sessions.events.list(id)) {
  listed.push(ev);
  out.ids.push(ev.id);
}
out.listedIdle = listed.filter((ev) => ev.type === 'session.status_idle').map(details);

// The official pattern: open the stream, send a message, read until idle.
const stream = await client.beta.sessions.events.stream(id);
await client.beta.sessions.events.send(id, { events: [{ type: 'user.message', content: [{ type: 'text', text: 'again' }] }] });
for await (const ev of stream) {
  out.ids.push(ev.id);
  if (ev.type === 'session.status_idle') {
    out.streamedIdle = details(ev);
    break;
  }
}

const sess = await client.beta.sessions.retrieve(id);
out.session = {
  title: sess.title,
  description: sess.agent.description,
  system: sess.agent.system,
  model: sess.agent.model.id,
  mountPaths: sess.resources.map((r) => r.mount_path),
};
console.log(JSON.stringify(out));
