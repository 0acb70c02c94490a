/**
 * Transfer throughput and memory: a presigned-style PUT, a ranged parallel GET and a single-stream GET
 * of one file against a small HTTP server in a child process (so its memory is not counted here).
 *
 *   ./node_modules/.bin/node bench/transfer.ts [sizeMiB=512]
 *
 * Prints MiB/s per transfer and this process's RSS before and at its peak during each (sampled every 10 ms).
 */
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { download, upload } from '../src/transfer/index.ts';

const MiB = 1024 * 1024;
const sizeMiB = Number(process.argv[2] ?? 512);
const dir = await mkdtemp(join(tmpdir(), 'cg-bench-transfer-'));
const src = join(dir, 'source.bin');

const SERVER = `
import { createServer } from 'node:http';
import { createReadStream, statSync } from 'node:fs';
const file = process.argv[1];
const size = statSync(file).size;
const srv = createServer((req, res) => {
  if (req.method === 'PUT') { req.resume(); req.on('end', () => res.writeHead(200).end()); return; }
  const m = /^bytes=(\\d+)-(\\d+)$/.exec(req.headers.range ?? '');
  const lm = 'Sun, 22 Nov 2026 08:00:00 GMT';
  if (m && !process.env.NO_RANGE) {
    const start = Number(m[1]); const end = Math.min(Number(m[2]), size - 1);
    res.writeHead(206, { 'content-length': end - start + 1, 'content-range': 'bytes ' + start + '-' + end + '/' + size, 'last-modified': lm });
    createReadStream(file, { start, end, highWaterMark: 1 << 20 }).pipe(res);
  } else {
    res.writeHead(200, { 'content-length': size, 'last-modified': lm });
    createReadStream(file, { highWaterMark: 1 << 20 }).pipe(res);
  }
});
srv.listen(0, '127.0.0.1', () => console.log(srv.address().port));
`;

async function startServer(env: Record<string, string> = {}): Promise<{ url: string; stop: () => void }> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', SERVER, src], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } });
  const port = await new Promise<string>((res) => child.stdout.once('data', (d: Buffer) => res(d.toString().trim())));
  return { url: `http://127.0.0.1:${port}/object`, stop: () => child.kill() };
}

async function timed(name: string, fn: () => Promise<unknown>): Promise<void> {
  globalThis.gc?.();
  const before = process.memoryUsage().rss;
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 10);
  const t = performance.now();
  await fn();
  const s = (performance.now() - t) / 1000;
  clearInterval(sampler);
  console.log(`${name.padEnd(46)} ${(sizeMiB / s).toFixed(0).padStart(5)} MiB/s  (${s.toFixed(2)} s)  RSS ${Math.round(before / MiB)} → peak ${Math.round(peak / MiB)} MB`);
}

try {
  // Source file written in 1 MiB pieces (not held in memory).
  await new Promise<void>((res, rej) => {
    const ws = createWriteStream(src);
    const block = randomBytes(MiB);
    let i = 0;
    const next = (): void => {
      while (i < sizeMiB) if (!ws.write(block, () => {}) && ++i) return void ws.once('drain', next); else i++;
      ws.end(res);
    };
    ws.on('error', rej);
    next();
  });
  console.log(`file ${sizeMiB} MiB, start RSS ${Math.round(process.memoryUsage().rss / MiB)} MB`);
  const server = await startServer();
  const noRange = await startServer({ NO_RANGE: '1' });
  try {
    await timed('upload (one PUT, streamed)', () => upload({ file: src, url: server.url }));
    await timed('download ranged, 16 MiB × 16 in flight', () => download({ file: join(dir, 'a.bin'), url: server.url, metadataFile: false }));
    await timed('download ranged, 4 MiB × 4 in flight', () => download({ file: join(dir, 'b.bin'), url: server.url, chunkSize: 4 * MiB, concurrency: 4, metadataFile: false }));
    await timed('download single stream (server ignores Range)', () => download({ file: join(dir, 'c.bin'), url: noRange.url, metadataFile: false }));
    for (const f of ['a.bin', 'b.bin', 'c.bin']) if ((await stat(join(dir, f))).size !== sizeMiB * MiB) throw new Error(`${f}: wrong size`);
  } finally {
    server.stop();
    noRange.stop();
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
