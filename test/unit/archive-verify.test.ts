/**
 * verifyArchive (what cache-extractor runs on a download before it replaces the local archive):
 * every format and level of ours passes; damage it must see is refused; it writes nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { CorruptArchiveError, createArchiveFile, extractArchive, selectFiles, verifyArchive } from '../../src/archive/index.ts';
import { listZip } from '../../src/archive/zip-reader.ts';
import { makeSampleTree, rmrf, snapshot, tempDir } from '../fixtures/archive/tree.ts';

async function withArchive(format: 'zip' | 'zipzstd' | 'tarzstd', fn: (file: string, tmp: string) => Promise<void>, level: 'fastest' | 'fast' = 'fast'): Promise<void> {
  const tmp = await tempDir();
  try {
    const src = path.join(tmp, 'src');
    await makeSampleTree(src);
    // a large entry whose data has no short period (in data/compressible.bin, a flipped distance bit
    // can copy the same bytes from elsewhere: unzip -t finds nothing either)
    const words = Array.from({ length: 400_000 }, (_v, i) => `w${(i * 7919) % 10007}`).join(' ');
    await fs.promises.writeFile(path.join(src, 'data/large.txt'), words);
    const file = path.join(tmp, 'cache.zip');
    await createArchiveFile((await selectFiles({ cwd: src, paths: ['.'] })).entries, file, format, level);
    await fn(file, tmp);
  } finally {
    await rmrf(tmp);
  }
}

for (const format of ['zip', 'zipzstd', 'tarzstd'] as const) {
  for (const level of ['fastest', 'fast'] as const) {
    test(`verifyArchive accepts our ${format} at ${level} and writes nothing`, () =>
      withArchive(format, async (file, tmp) => {
        const before = await fs.promises.readdir(tmp);
        const r = await verifyArchive(file);
        assert.equal(r.format, format === 'tarzstd' ? 'tarzstd' : 'zip');
        assert.ok(r.entries > 10);
        assert.deepEqual(await fs.promises.readdir(tmp), before);
      }, level));
  }
}

test('verifyArchive: a name changed in the central directory (which no CRC covers) is refused', () =>
  withArchive('zip', async (file) => {
    const buf = await fs.promises.readFile(file);
    const e = (await listZip(file)).find((x) => x.name === 'README.md');
    assert.ok(e);
    // the central directory record of README.md: the last occurrence of the name in the file
    const at = buf.lastIndexOf('README.md');
    assert.ok(at > e.localOffset + 30);
    buf[at] = 'X'.charCodeAt(0);
    await fs.promises.writeFile(file, buf);
    await assert.rejects(verifyArchive(file), (err: Error) => err instanceof CorruptArchiveError && /XEADME\.md: the local header names "README\.md"/.test(err.message));
  }));

test('verifyArchive: a zip cut anywhere is refused', () =>
  withArchive('zip', async (file) => {
    const buf = await fs.promises.readFile(file);
    for (const keep of [buf.length - 1, buf.length - 30, Math.floor(buf.length / 2), 100]) {
      await fs.promises.writeFile(file, buf.subarray(0, keep));
      await assert.rejects(verifyArchive(file), CorruptArchiveError, `cut at ${keep}`);
    }
  }));

test('verifyArchive: a tar.zst cut inside a frame, or with garbage appended, is refused', () =>
  withArchive('tarzstd', async (file) => {
    const buf = await fs.promises.readFile(file);
    await fs.promises.writeFile(file, buf.subarray(0, buf.length - 5));
    await assert.rejects(verifyArchive(file), CorruptArchiveError);
    await fs.promises.writeFile(file, Buffer.concat([buf, Buffer.from('garbage after the last frame')]));
    await assert.rejects(verifyArchive(file), CorruptArchiveError);
  }));

for (const [format, level] of [['zip', 'fast'], ['zip', 'fastest'], ['zipzstd', 'fast']] as const) {
  test(`verifyArchive and extraction: a flipped byte inside a large ${format} entry at ${level} (decoded by a worker thread) is refused`, () =>
    withArchive(format, async (file, tmp) => {
      const buf = await fs.promises.readFile(file);
      const e = (await listZip(file)).find((x) => x.name === 'data/large.txt');
      assert.ok(e && e.size > 1024 * 1024, 'a large entry');
      const start = e.localOffset + 30 + buf.readUInt16LE(e.localOffset + 26) + buf.readUInt16LE(e.localOffset + 28);
      buf[start + Math.floor(e.csize / 2)] ^= 0x10;
      await fs.promises.writeFile(file, buf);
      await assert.rejects(verifyArchive(file), (err: Error) => err instanceof CorruptArchiveError && /data\/large\.txt: (CRC-32 mismatch|cannot decompress|size mismatch)/.test(err.message));
      const dst = path.join(tmp, 'dst');
      await assert.rejects(extractArchive(file, dst), CorruptArchiveError);
      assert.equal(fs.existsSync(path.join(dst, 'data/large.txt')), false, 'no half-written file');
    }, level));
}

test('a tar.zst over 4 MiB (decoded in a worker thread): extracted whole; a flipped byte or a cut frame is refused', async () => {
  const tmp = await tempDir();
  try {
    const src = path.join(tmp, 'src');
    await makeSampleTree(src);
    const { randomBytes } = await import('node:crypto');
    await fs.promises.writeFile(path.join(src, 'data/big-random.bin'), randomBytes(6 * 1024 * 1024));
    const file = path.join(tmp, 'cache.tar.zst');
    await createArchiveFile((await selectFiles({ cwd: src, paths: ['.'] })).entries, file, 'tarzstd', 'fast');
    const good = await fs.promises.readFile(file);
    assert.ok(good.length > 4 * 1024 * 1024);
    const dst = path.join(tmp, 'dst');
    assert.equal((await extractArchive(file, dst)).format, 'tarzstd');
    assert.deepEqual(await snapshot(dst), await snapshot(src));
    const bad = Buffer.from(good);
    bad[bad.length >> 1] ^= 0x04;
    await fs.promises.writeFile(file, bad);
    await assert.rejects(verifyArchive(file), CorruptArchiveError);
    await assert.rejects(extractArchive(file, path.join(tmp, 'dst2')), CorruptArchiveError);
    await fs.promises.writeFile(file, good.subarray(0, good.length - 3));
    await assert.rejects(verifyArchive(file), /tar.zst archive is corrupt: unexpected end of data inside a zstd frame/);
  } finally {
    await rmrf(tmp);
  }
});

test('a large tar.zst whose tar stream is refused midway (unsafe name) stops its decoder worker', async () => {
  const tmp = await tempDir();
  try {
    const one = path.join(tmp, 'one');
    const { randomBytes } = await import('node:crypto');
    await fs.promises.writeFile(one, randomBytes(6 * 1024 * 1024));
    const entry = (name: string) => ({ name, absPath: one, type: 'file' as const, mode: 0o644, mtimeMs: Date.now(), size: 6 * 1024 * 1024, uid: 0, gid: 0 });
    const file = path.join(tmp, 'evil.tar.zst');
    await createArchiveFile([entry('a.bin'), entry('../evil.bin'), entry('z.bin')], file, 'tarzstd', 'fast');
    const { Worker } = await import('node:worker_threads');
    const orig = Worker.prototype.terminate;
    let terminated = 0;
    Worker.prototype.terminate = function (this: InstanceType<typeof Worker>) {
      terminated++;
      return orig.call(this);
    };
    try {
      await assert.rejects(extractArchive(file, path.join(tmp, 'dst')), /outside the working directory/);
    } finally {
      Worker.prototype.terminate = orig;
    }
    // without it the process would not exit: the worker waits for its buffers forever
    assert.equal(terminated, 1, 'the worker was stopped');
  } finally {
    await rmrf(tmp);
  }
});

test('verifying a zip of many medium entries (64 KiB – 1 MiB) keeps no pile of fresh buffers', async () => {
  const tmp = await tempDir();
  try {
    const src = path.join(tmp, 'src');
    await fs.promises.mkdir(src);
    // 160 entries of 640 KiB (compressible, but not trivially): ~100 MB decoded, ~100 MB of garbage
    // before the change (a fresh copy of each entry's bytes and a fresh output buffer).
    const words = Array.from({ length: 110_000 }, (_v, i) => `w${(i * 7919) % 10007}`).join(' ').slice(0, 640 * 1024);
    for (let i = 0; i < 160; i++) await fs.promises.writeFile(path.join(src, `f${i}.txt`), `${i}${words}`);
    const file = path.join(tmp, 'cache.zip');
    await createArchiveFile((await selectFiles({ cwd: src, paths: ['.'] })).entries, file, 'zip', 'fast');
    let most = 0;
    const base = process.memoryUsage().arrayBuffers;
    const timer = setInterval(() => (most = Math.max(most, process.memoryUsage().arrayBuffers - base)), 5);
    try {
      const r = await verifyArchive(file);
      assert.equal(r.entries, 160);
    } finally {
      clearInterval(timer);
    }
    most = Math.max(most, process.memoryUsage().arrayBuffers - base);
    assert.ok(most < 24 * 1024 * 1024, `ArrayBuffers grew by ${(most / 1048576).toFixed(1)} MiB while verifying`);
  } finally {
    await rmrf(tmp);
  }
});

test('verifying a zip as it arrives in 16 parts: entries over the read window do not grow every part\'s windows', async () => {
  const tmp = await tempDir();
  try {
    const src = path.join(tmp, 'src');
    await fs.promises.mkdir(src);
    // 64 entries of 1000 KiB that do not compress: each part holds four
    const { randomBytes } = await import('node:crypto');
    for (let i = 0; i < 64; i++) await fs.promises.writeFile(path.join(src, `m${i}.txt`), randomBytes(1000 * 1024));
    const file = path.join(tmp, 'cache.zip');
    await createArchiveFile((await selectFiles({ cwd: src, paths: ['.'] })).entries, file, 'zip', 'fast');
    const size = fs.statSync(file).size;
    const part = Math.ceil(size / 16);
    // all bytes already there: the same per-part loops as during a ranged download
    const growing = { size, starts: Array.from({ length: 16 }, (_v, i) => i * part), ready: async (): Promise<void> => {} };
    let most = 0;
    const base = process.memoryUsage().arrayBuffers;
    const timer = setInterval(() => (most = Math.max(most, process.memoryUsage().arrayBuffers - base)), 2);
    try {
      assert.equal((await verifyArchive(file, { growing })).entries, 64);
    } finally {
      clearInterval(timer);
    }
    most = Math.max(most, process.memoryUsage().arrayBuffers - base);
    // 16 parts × 2 windows grown to 1000 KiB: ~30 MiB before; now 2 × 128 KiB each
    assert.ok(most < 8 * 1024 * 1024, `ArrayBuffers grew by ${(most / 1048576).toFixed(1)} MiB while verifying`);
  } finally {
    await rmrf(tmp);
  }
});
