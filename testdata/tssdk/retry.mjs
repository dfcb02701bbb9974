// The TypeScript SDK re-sends a POST whose connection drops before the
// answer arrives. Run through a proxy that drops the first answer of each
// request, this prints what each retried run call returned; daemon's
// idempotency_test.go checks that the keyed one created one run, not two.
// Usage: SANDBOX0D_URL=http://proxy DEPLOYMENT_ID=depl_… node retry.mjs
import Anthropic from '@anthropic-ai/sdk';

const client = new Anthropic({ baseURL: process.env.SANDBOX0D_URL, apiKey: 'unused', maxRetries: 2 });
const id = process.env.DEPLOYMENT_ID;
const keyed = await client.beta.deployments.run(id, {}, { headers: { 'Idempotency-Key': 'ts-run-1' } });
const unkeyed = await client.beta.deployments.run(id);
console.log(JSON.stringify({ keyed: keyed.id, unkeyed: unkeyed.id }));
