/**
 * Transfer throughput and memory: a presigned-style PUT, a ranged parallel GET and a single-stream GET
 * of one file against a small HTTP server in a child process (so its memory is not counted here).
 *
 *   ./node_modules/.bin/node bench/transfer.ts [sizeMiB=512]
 *   ./node_modules/.bin/node bench/transfer.ts --archive FILE [--rate MiBps] [--chunk MiB]
 *
 * Prints MiB/s per transfer and this process's RSS before and at its peak during each (sampled every 10 ms).
 * With --archive: downloads that archive (a cache.zip or tar.zst) without verification, with the
 * verification as a second pass, and verified while it arrives (what cache-extractor does), ranged
 * and single-stream, plus the verification alone; --rate caps the server (all connections together)
 * to look like a remote store rather than loopback.
 */
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { download, upload } from '../src/transfer/index.ts';
import { verifyArchive, type GrowingFile } from '../src/archive/index.ts';

const MiB = 1024 * 1024;
const args = process.argv.slice(2);
const opt = (name: string): string | undefined => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const archive = opt('--archive');
const rate = opt('--rate');
const chunkMiB = Number(opt('--chunk') ?? 16);
const dir = await mkdtemp(join(tmpdir(), 'cg-bench-transfer-'));
const src = archive ?? join(dir, 'source.bin');
const sizeMiB = archive ? (await stat(archive)).size / (1024 * 1024) : Number(args[0] ?? 512);

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
    send(createReadStream(file, { start, end, highWaterMark: 1 << 20 }), res);
  } else {
    res.writeHead(200, { 'content-length': size, 'last-modified': lm });
    send(createReadStream(file, { highWaterMark: 1 << 20 }), res);
  }
});
// RATE (MiB/s, all responses together): each chunk waits for its turn.
const rate = Number(process.env.RATE ?? 0) * 1024 * 1024;
let next = 0;
function send(stream, res) {
  if (!rate) return void stream.pipe(res);
  let pending = 0;
  let ended = false;
  stream.on('data', (chunk) => {
    const now = Date.now();
    next = Math.max(next, now) + (chunk.length / rate) * 1000;
    stream.pause();
    pending++;
    setTimeout(() => {
      pending--;
      if (ended && pending === 0) return void res.end(chunk);
      if (res.write(chunk)) stream.resume(); else res.once('drain', () => stream.resume());
    }, next - now);
  });
  stream.on('end', () => { ended = true; if (pending === 0) res.end(); });
  res.on('close', () => stream.destroy());
}
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

async function archiveDownloads(): Promise<void> {
  const server = await startServer(rate ? { RATE: rate } : {});
  const noRange = await startServer({ NO_RANGE: '1', ...(rate ? { RATE: rate } : {}) });
  const streaming = (tmp: string, growing?: GrowingFile): Promise<void> => verifyArchive(tmp, { growing }).then(() => {});
  try {
    let k = 0;
    for (const [label, url] of [[`ranged ${chunkMiB} MiB × 16`, server.url], ['single stream', noRange.url]] as const) {
      for (const how of ['no verification', 'verification after', 'verified while arriving'] as const) {
        const file = join(dir, `d${k++}.zip`);
        await timed(`download ${label}, ${how}`, async () => {
          await download({ file, url, metadataFile: false, chunkSize: chunkMiB * MiB, verify: how === 'verified while arriving' ? streaming : undefined });
          if (how === 'verification after') await verifyArchive(file);
        });
        await rm(file);
      }
    }
    await timed('verification alone (local file)', () => verifyArchive(src));
  } finally {
    server.stop();
    noRange.stop();
  }
}

try {
  if (archive) {
    console.log(`archive ${archive}: ${sizeMiB.toFixed(0)} MiB${rate ? `, server capped at ${rate} MiB/s` : ''}, start RSS ${Math.round(process.memoryUsage().rss / MiB)} MB`);
    await archiveDownloads();
  } else await fileTransfers();
} finally {
  await rm(dir, { recursive: true, force: true });
}

async function fileTransfers(): Promise<void> {
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
}
