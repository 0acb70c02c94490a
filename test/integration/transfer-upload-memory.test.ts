/**
 * The upload's memory: the archive is sent from a few reused buffers (src/transfer/file-body.ts),
 * not a fresh Buffer per read that V8 keeps until ~64 MB of external memory has piled up. The
 * upload runs in a child process (the receiving server's own buffers would count here), which
 * reports the most ArrayBuffer memory it held while sending a 96 MiB file.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';

const SIZE = 96 * 1024 * 1024;
const CHILD = `
import { upload } from ${JSON.stringify(new URL('../../src/transfer/index.ts', import.meta.url).href)};
let peak = 0;
const sample = () => { peak = Math.max(peak, process.memoryUsage().arrayBuffers); };
const timer = setInterval(sample, 1);
const res = await upload({ file: process.argv[1], url: process.argv[2] });
clearInterval(timer);
sample();
console.log(JSON.stringify({ status: res.status, peak }));
`;

describe('upload memory', () => {
  let dir: string;
  let server: http.Server;
  let received = 0;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cg-upload-memory-'));
    await writeFile(join(dir, 'cache.zip'), Buffer.alloc(SIZE, 7));
    server = http.createServer((req, res) => {
      req.on('data', (c: Buffer) => (received += c.length));
      req.on('end', () => res.end());
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  });
  after(async () => {
    server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('sends a 96 MiB archive holding < 16 MiB of buffers', async () => {
    const port = (server.address() as AddressInfo).port;
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', CHILD, join(dir, 'cache.zip'), `http://127.0.0.1:${port}/cache.zip`]);
    const out = JSON.parse(stdout) as { status: string; peak: number };
    assert.equal(out.status, 'uploaded');
    assert.equal(received, SIZE);
    assert.ok(out.peak < 16 * 1024 * 1024, `peak ArrayBuffer memory ${(out.peak / 1048576).toFixed(1)} MiB`);
  });
});
