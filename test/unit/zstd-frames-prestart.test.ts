// The tar.zst frame threads started ahead of the writer (zstd-frames.ts prestartFrameWorkers): the
// archiver starts them while it selects the files; a writer takes them, each job carries its level,
// and threads nobody takes are ended (docs/archive.md "Session 7").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { Writable } from 'node:stream';
import { prestartFrameWorkers, prestartedFrameWorkers, releasePrestartedFrameWorkers, ZstdFrameWriter } from '../../src/archive/zstd-frames.ts';
import { main as archiver } from '../../src/cli/cache-archiver.ts';

function collect(): { out: Writable; bytes: () => Buffer } {
  const parts: Buffer[] = [];
  const out = new Writable({
    write(chunk: Buffer, _enc, cb) {
      parts.push(Buffer.from(chunk));
      cb();
    },
  });
  return { out, bytes: () => Buffer.concat(parts) };
}

async function compress(data: Buffer, level: number, parallel: number): Promise<Buffer> {
  const { out, bytes } = collect();
  const w = new ZstdFrameWriter(out, level, { parallel, segment: 1 << 20 });
  await new Promise<void>((resolve, reject) => {
    w.on('error', reject);
    w.end(data, resolve);
  });
  return bytes();
}

// compressible, but not trivially: level 19 finds much more than level 1
function sample(): Buffer {
  const words = ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta', 'eta', 'theta'];
  let seed = 7;
  const parts: string[] = [];
  for (let i = 0; i < 300_000; i++) {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    parts.push(words[seed % 8] + (seed % 97).toString(36));
  }
  return Buffer.from(parts.join(' '));
}

test('a writer takes the prestarted threads, and each frame is made at the writer\'s level', async () => {
  const data = sample();
  prestartFrameWorkers(2);
  assert.equal(prestartedFrameWorkers(), 2);
  const fast = await compress(data, 1, 2);
  assert.equal(prestartedFrameWorkers(), 0, 'the writer took both threads');
  prestartFrameWorkers(2);
  const small = await compress(data, 19, 2);
  assert.equal(prestartedFrameWorkers(), 0);
  assert.deepEqual(zlib.zstdDecompressSync(fast), data);
  assert.deepEqual(zlib.zstdDecompressSync(small), data);
  assert.ok(small.length < fast.length * 0.9, `level 19 (${small.length}) must be smaller than level 1 (${fast.length})`);
});

test('threads no writer takes are ended', async () => {
  prestartFrameWorkers(3);
  await compress(Buffer.from('x'.repeat(1000)), 1, 1);
  assert.equal(prestartedFrameWorkers(), 2);
  await releasePrestartedFrameWorkers();
  assert.equal(prestartedFrameWorkers(), 0);
});

test('cache-archiver (tar.zst) leaves no prestarted thread behind: archived, up to date, nothing to cache', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cg-prestart-'));
  try {
    fs.mkdirSync(path.join(dir, 'src'));
    fs.writeFileSync(path.join(dir, 'src', 'a.txt'), 'a'.repeat(5000));
    fs.mkdirSync(path.join(dir, 'empty'));
    const quiet = new Writable({ write: (_c, _e, cb) => cb() });
    const env = { CACHE_COMPRESSION_FORMAT: 'tarzstd', CACHE_HELPER_MEMORY: '0' };
    const run = (p: string): Promise<number> => archiver(['--file', 'c.tar.zst', '--path', p], { cwd: dir, env, stdout: quiet, stderr: quiet });
    assert.equal(await run('src'), 0);
    assert.equal(prestartedFrameWorkers(), 0, 'after archiving');
    assert.equal(await run('src'), 0);
    assert.equal(prestartedFrameWorkers(), 0, 'after "Archive is up to date"');
    assert.equal(await run('missing'), 0);
    assert.equal(prestartedFrameWorkers(), 0, 'after "No files to cache"');
    assert.ok(fs.statSync(path.join(dir, 'c.tar.zst')).size > 0);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
