/**
 * The download's memory: node:http hands every socket read over as a fresh Buffer, and V8 left
 * them resident until ~64 MB of external memory had piled up; the download now scavenges every
 * 8 MiB (src/transfer/young-gc.ts). The download runs in a child process (the serving side's
 * buffers would count here), which reports the most ArrayBuffer memory it held while receiving a
 * 160 MiB object in 16 ranged parts. Measured: 26-34 MiB on a quiet machine, 41 MiB once under CI
 * load; 73-79 MiB with the scavenges disabled. The limit sits between the two.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';

const SIZE = 160 * 1024 * 1024;
const CHILD = `
import { download } from ${JSON.stringify(new URL('../../src/transfer/index.ts', import.meta.url).href)};
let peak = 0;
const sample = () => { peak = Math.max(peak, process.memoryUsage().arrayBuffers); };
const timer = setInterval(sample, 1);
const res = await download({ file: process.argv[1], url: process.argv[2], chunkSize: 10 * 1024 * 1024, concurrency: 16, metadataFile: false });
clearInterval(timer);
sample();
console.log(JSON.stringify({ status: res.status, parts: res.parts, peak }));
`;

describe('download memory', () => {
  let dir: string;
  let server: http.Server;
  const body = Buffer.alloc(SIZE, 7);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cg-download-memory-'));
    server = http.createServer((req, res) => {
      const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
      const start = m ? Number(m[1]) : 0;
      const end = m ? Math.min(Number(m[2]), SIZE - 1) : SIZE - 1;
      res.writeHead(m ? 206 : 200, { 'content-length': end - start + 1, ...(m ? { 'content-range': `bytes ${start}-${end}/${SIZE}` } : {}), etag: '"m"' });
      res.end(body.subarray(start, end + 1));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  });
  after(async () => {
    server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('receives 160 MiB in 16 parts holding < 56 MiB of buffers (73-79 MiB without the scavenges)', async () => {
    const port = (server.address() as AddressInfo).port;
    const file = join(dir, 'cache.zip');
    const { stdout } = await promisify(execFile)(process.execPath, ['--semi-space-growth-factor=1', '--input-type=module', '-e', CHILD, file, `http://127.0.0.1:${port}/cache.zip`]);
    const out = JSON.parse(stdout) as { status: string; parts: number; peak: number };
    assert.equal(out.status, 'downloaded');
    assert.equal(out.parts, 16);
    assert.equal((await stat(file)).size, SIZE);
    assert.ok(out.peak < 56 * 1024 * 1024, `peak ArrayBuffer memory ${(out.peak / 1048576).toFixed(1)} MiB`);
  });
});
