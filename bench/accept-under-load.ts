/**
 * How long a new connection waits to be served while a listener is saturated: a server bound by
 * src/service/listen-on.ts (as the service and the S3 front door are) whose requests each cost
 * ~5 ms of CPU is kept busy by `BUSY` keep-alive clients in a closed loop; then `FRESH` clients
 * connect at once, and the time to each one's first answer is taken. With libuv's one accept per
 * event-loop iteration an iteration here lasts BUSY × ~5 ms, and the fresh connections are taken
 * one per iteration; with src/service/accept-burst.ts all of them in the first.
 *
 *   ./node_modules/.bin/node bench/accept-under-load.ts            both arms, burst then CACHEGATE_ACCEPT_BURST=0
 *   BUSY=150 FRESH=50 ./node_modules/.bin/node bench/accept-under-load.ts
 * Prints one JSON object: per arm, the fresh clients' first-answer times (s): median, max.
 */
import { fork } from 'node:child_process';
import { createServer, Agent, request } from 'node:http';
import { loadavg } from 'node:os';
import { listenOn } from '../src/service/listen-on.ts';

const BUSY = Number(process.env.BUSY ?? 150);
const FRESH = Number(process.env.FRESH ?? 50);

if (process.argv[2] === 'server') {
  const body = Buffer.alloc(64 * 1024, 1);
  const server = createServer((_req, res) => {
    const until = performance.now() + 5;
    while (performance.now() < until); // the work of a request
    res.end(body);
  });
  const { port } = await listenOn(server, '127.0.0.1', 0);
  process.send?.({ port });
} else if (process.argv[2] === undefined) {
  const arms: Record<string, unknown> = {};
  for (const burst of ['1', '0']) {
    const child = fork(import.meta.filename, ['server'], { env: { ...process.env, CACHEGATE_ACCEPT_BURST: burst } });
    const port = await new Promise<number>((resolve) => child.once('message', (m) => resolve((m as { port: number }).port)));
    const get = (agent: Agent): Promise<void> => new Promise((resolve, reject) => {
      request({ host: '127.0.0.1', port, agent }, (res) => res.resume().on('end', resolve)).on('error', reject).end();
    });
    const busyAgent = new Agent({ keepAlive: true, maxSockets: BUSY });
    let running = true;
    const loops = Array.from({ length: BUSY }, async () => { while (running) await get(busyAgent); });
    await new Promise((r) => setTimeout(r, 3000)); // saturated
    const t0 = performance.now();
    const times = await Promise.all(Array.from({ length: FRESH }, async () => {
      await get(new Agent({ keepAlive: false }));
      return (performance.now() - t0) / 1000;
    }));
    running = false;
    await Promise.all(loops);
    busyAgent.destroy();
    child.kill();
    times.sort((a, b) => a - b);
    arms[burst === '1' ? 'burst' : 'libuvAlone'] = { medianS: Math.round(times[FRESH >> 1] * 100) / 100, maxS: Math.round(times[FRESH - 1] * 100) / 100 };
    process.stderr.write(`${burst === '1' ? 'burst' : 'libuv alone'}: ${JSON.stringify(arms[burst === '1' ? 'burst' : 'libuvAlone'])}\n`);
  }
  process.stdout.write(JSON.stringify({ bench: 'accept-under-load', date: new Date().toISOString(), busy: BUSY, fresh: FRESH, loadAverage: loadavg().map((x) => Math.round(x * 100) / 100), arms }, null, 2) + '\n');
}
