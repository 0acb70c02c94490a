/** The reference for HTTP benchmarks: a hono hello-world route on @hono/node-server, as plain as it gets. */
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import type { AddressInfo } from 'node:net';

const app = new Hono();
app.get('/', (c) => c.text('Hello World'));
app.post('/', (c) => c.json({ hello: 'world' }));
const server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, () => {
  process.stdout.write(`listening on http://127.0.0.1:${(server.address() as AddressInfo).port}\n`);
});
