/**
 * Where a proxied byte's CPU goes: CPU ms per 1 MiB answer on each side of one loopback connection
 * pool, node:http against raw `net` sockets, and the shapes the door sends in (one Buffer, 64 KiB
 * writes as a piped stream makes, 64 KiB writes through a pipe()d Transform, 1 MiB coalesced writes),
 * and a minimal proxy reading its backend with node:http (`proxy`).
 * Server and client are separate processes, so each one's process.cpuUsage() is its own.
 *
 *   ./node_modules/.bin/node bench/http-byte-cost.ts                 every pairing, 4 s each, 8 connections
 *   BENCH_SECONDS=10 BENCH_CONNECTIONS=50 ./node_modules/.bin/node bench/http-byte-cost.ts
 *
 * Prints one JSON line per pairing: req/s, server and client CPU ms per request (user+system), and
 * the client's reads per answer (socket 'data' events: libuv reads up to 64 KiB at a time).
 */
import { fork } from 'node:child_process';
import { createServer as httpServer, Agent, request } from 'node:http';
import { createServer as netServer, connect, type Socket } from 'node:net';
import { PassThrough, Readable, Transform, pipeline } from 'node:stream';

const SIZE = 1024 * 1024;
const CHUNK = 64 * 1024;
const seconds = Number(process.env.BENCH_SECONDS ?? 4);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 8);

type ServerMode = 'proxy' | 'proxy-hwm256k' | 'proxy-hwm1m' | 'http-buffer' | 'http-64k-pipe' | 'http-64k-pipe-hwm1m' | 'http-64k-transform' | 'http-64k-corked' | 'net-buffer';
type ClientMode = 'http' | 'net';

const body = Buffer.alloc(SIZE, 7);
function chunks(): Readable {
  let i = 0;
  return new Readable({
    read() {
      this.push(i < SIZE ? body.subarray(i, (i += CHUNK)) : null);
    },
  });
}

function serve(mode: ServerMode): void {
  const head = Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${SIZE}\r\nConnection: keep-alive\r\n\r\n`);
  const onReady = (port: number): void => {
    process.send?.({ port });
    process.on('message', () => {
      const u = process.cpuUsage();
      process.send?.({ cpuMs: (u.user + u.system) / 1000 }, () => process.exit(0));
    });
  };
  if (mode === 'net-buffer') {
    const s = netServer((sock) => {
      let buf = '';
      sock.on('data', (d) => {
        buf += d.toString('latin1');
        while (buf.includes('\r\n\r\n')) {
          buf = buf.slice(buf.indexOf('\r\n\r\n') + 4);
          sock.cork();
          sock.write(head);
          sock.write(body);
          sock.uncork();
        }
      });
      sock.on('error', () => undefined);
    });
    s.listen(0, '127.0.0.1', () => onReady((s.address() as { port: number }).port));
    return;
  }
  const hwm = mode.endsWith('-hwm1m') ? SIZE : mode.endsWith('-hwm256k') ? 256 * 1024 : undefined;
  if (mode.startsWith('proxy')) {
    // The door's GET: an upstream answer (a raw `net` server in its own process) piped into the client's response.
    const upstream = fork(import.meta.filename, ['server', 'net-buffer']);
    const agent = new Agent({ keepAlive: true, maxSockets: 128 });
    upstream.once('message', (m) => {
      const port = (m as { port: number }).port;
      const s = httpServer(hwm ? { highWaterMark: hwm } : {}, (_req, res) => {
        request({ host: '127.0.0.1', port, agent, ...(hwm ? { highWaterMark: hwm } : {}) }, (up) => {
          res.writeHead(200, { 'content-length': String(SIZE) });
          pipeline(up, res, () => undefined);
        }).end();
      });
      s.keepAliveTimeout = 60_000;
      s.listen(0, '127.0.0.1', () => onReady((s.address() as { port: number }).port));
    });
    return;
  }
  const s = httpServer(hwm ? { highWaterMark: hwm } : {}, (req, res) => {
    res.writeHead(200, { 'content-length': String(SIZE) });
    if (mode === 'http-buffer') return void res.end(body);
    if (mode === 'http-64k-corked') {
      // The same 16 chunks, but all handed to the socket in one writev.
      res.cork();
      for (let i = 0; i < SIZE; i += CHUNK) res.write(body.subarray(i, i + CHUNK));
      res.end();
      return void res.uncork();
    }
    if (mode.startsWith('http-64k-pipe')) return void pipeline(chunks(), res, () => undefined);
    const t = new Transform({ transform: (c, _e, cb) => cb(null, c) });
    pipeline(chunks(), t, new PassThrough(), res, () => undefined);
  });
  s.keepAliveTimeout = 60_000;
  s.listen(0, '127.0.0.1', () => onReady((s.address() as { port: number }).port));
}

async function load(mode: ClientMode, port: number): Promise<void> {
  let requests = 0;
  let reads = 0;
  const deadline = performance.now() + seconds * 1000;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  if (mode === 'http') {
    const agent = new Agent({ keepAlive: true, maxSockets: connections });
    const one = (): Promise<void> =>
      new Promise((resolve, reject) => {
        request({ host: '127.0.0.1', port, agent }, (res) => {
          res.on('data', () => reads++);
          res.on('end', () => {
            requests++;
            resolve();
          });
        }).on('error', reject).end();
      });
    await Promise.all(Array.from({ length: connections }, async () => {
      while (performance.now() < deadline) await one();
    }));
    agent.destroy();
  } else {
    const req = Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await Promise.all(Array.from({ length: connections }, () =>
      new Promise<void>((resolve) => {
        const sock: Socket = connect(port, '127.0.0.1');
        let got = 0;
        let want = -1;
        sock.on('data', (d) => {
          reads++;
          got += d.length;
          if (want < 0) want = d.indexOf('\r\n\r\n') + 4 + SIZE; // the head arrives whole in the first read here
          if (got >= want) {
            requests++;
            got -= want;
            want = -1;
            if (performance.now() < deadline) sock.write(req);
            else {
              sock.destroy();
              resolve();
            }
          }
        });
        sock.write(req);
      })));
  }
  const elapsed = (performance.now() - t0) / 1000;
  const u = process.cpuUsage(cpu0);
  process.send?.({ requests, reqPerSec: Math.round(requests / elapsed), clientMsPerRequest: Math.round(((u.user + u.system) / 1000 / requests) * 100) / 100, readsPerAnswer: Math.round((reads / requests) * 10) / 10 });
}

const role = process.argv[2];
// A child never outlives the run (an upstream's parent, the proxy, is killed at its end too).
if (role !== undefined) process.once('disconnect', () => process.exit(0));
if (role === 'server') serve(process.argv[3] as ServerMode);
else if (role === 'client') await load(process.argv[3] as ClientMode, Number(process.argv[4]));
else {
  const message = <T>(child: ReturnType<typeof fork>): Promise<T> =>
    new Promise((r, j) => {
      child.once('message', (m) => r(m as T));
      child.once('exit', (code) => j(new Error(`a bench process exited (${code}) before reporting`)));
    });
  const pairs: [ServerMode, ClientMode][] = [
    ['proxy', 'http'], ['proxy-hwm256k', 'http'], ['proxy-hwm1m', 'http'],
    ['net-buffer', 'net'], ['net-buffer', 'http'], ['http-buffer', 'net'], ['http-buffer', 'http'],
    ['http-64k-pipe', 'http'], ['http-64k-pipe-hwm1m', 'http'], ['http-64k-transform', 'http'], ['http-64k-corked', 'http'],
  ];
  const only = process.env.BENCH_PAIRS?.split(',');
  for (const [sm, cm] of pairs) {
    if (only && !only.includes(`${sm}/${cm}`)) continue;
    const server = fork(import.meta.filename, ['server', sm], process.env.BENCH_PROF ? { execArgv: ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROF}/server`] } : {});
    const { port } = await message<{ port: number }>(server);
    const client = fork(import.meta.filename, ['client', cm, String(port)], process.env.BENCH_PROF ? { execArgv: ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROF}`] } : {});
    const r = await message<{ requests: number }>(client);
    server.send('cpu');
    const { cpuMs } = await message<{ cpuMs: number }>(server);
    client.kill();
    console.log(JSON.stringify({ server: sm, client: cm, connections, ...r, serverMsPerRequest: Math.round((cpuMs / r.requests) * 100) / 100 }));
  }
}
