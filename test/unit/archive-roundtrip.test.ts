import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createArchiveFile, extractArchive, detectFormat, selectFiles } from '../../src/archive/index.ts';
import type { ArchiveFormat, CompressionLevel } from '../../src/archive/index.ts';
import { listZip } from '../../src/archive/zip-reader.ts';
import { makeSampleTree, rmrf, snapshot, tempDir } from '../fixtures/archive/tree.ts';

async function roundTrip(format: ArchiveFormat, level: CompressionLevel, zip: Record<string, number> = {}): Promise<void> {
  const tmp = await tempDir();
  try {
    const src = path.join(tmp, 'src');
    await makeSampleTree(src);
    const sel = await selectFiles({ cwd: src, paths: ['.'] });
    const file = path.join(tmp, 'cache.zip');
    const made = await createArchiveFile(sel.entries, file, format, level, { zip });
    assert.equal(made.bytes, (await fs.promises.stat(file)).size, 'reported size is the file size');
    assert.equal(made.entries, sel.entries.length);
    assert.equal(await detectFormat(file), format === 'tarzstd' ? 'tarzstd' : 'zip');
    const dst = path.join(tmp, 'dst');
    const res = await extractArchive(file, dst);
    assert.equal(res.entries, sel.entries.length);
    assert.deepEqual(await snapshot(dst), await snapshot(src));
    assert.deepEqual(await fs.promises.readdir(tmp), ['cache.zip', 'dst', 'src'], 'no temp files left');
  } finally {
    await rmrf(tmp);
  }
}

for (const format of ['zip', 'zipzstd', 'tarzstd'] as const) {
  for (const level of ['fastest', 'default', 'slowest'] as const) {
    test(`round trip ${format} at ${level}: contents, modes, symlinks, mtimes`, () => roundTrip(format, level));
  }
}

test('round trip zip with every file streamed (data descriptors, parallel blocks) and forced zip64', () =>
  roundTrip('zip', 'fast', { smallFileLimit: 0, zip64Threshold: 0, parallelBlocks: 3 }));

test('zipzstd entries use method 93; zip entries carry Unix modes, UTF-8 flag and extras', async () => {
  const tmp = await tempDir();
  try {
    const src = path.join(tmp, 'src');
    await makeSampleTree(src);
    const sel = await selectFiles({ cwd: src, paths: ['.'] });
    for (const [format, method] of [['zipzstd', 93], ['zip', 8]] as const) {
      const file = path.join(tmp, `${format}.zip`);
      await createArchiveFile(sel.entries, file, format, 'default');
      const entries = await listZip(file);
      const names = entries.map((e) => e.name);
      const bare = names.map((n) => n.replace(/\/$/, ''));
      assert.deepEqual(bare, [...bare].sort(), 'sorted names');
      const main = entries.find((e) => e.name === 'src/main.c')!;
      assert.equal(main.method, method);
      assert.ok(main.flags & 0x0800, 'UTF-8 flag');
      assert.equal(entries.find((e) => e.name === 'bin/run.sh')!.mode, 0o755);
      assert.equal(entries.find((e) => e.name === 'src/readme-link')!.type, 'symlink');
      assert.equal(entries.find((e) => e.name === 'emptydir/')!.type, 'dir');
      assert.equal(main.uid, process.getuid!());
      const st = await fs.promises.stat(path.join(src, 'src/main.c'));
      assert.equal(main.mtimeMs, Math.floor(st.mtimeMs / 1000) * 1000, 'extended timestamp');
    }
  } finally {
    await rmrf(tmp);
  }
});

test('more than 65,535 entries: zip64 end records are written and read back (no extraction to disk)', async () => {
  const tmp = await tempDir();
  try {
    const one = path.join(tmp, 'one.txt');
    await fs.promises.writeFile(one, 'x');
    const st = await fs.promises.lstat(one);
    const n = 70_000;
    const entries = Array.from({ length: n }, (_, i) => ({
      name: `d${Math.floor(i / 1000)}/f${String(i).padStart(5, '0')}`, absPath: one, type: 'file' as const,
      mode: 0o644, mtimeMs: st.mtimeMs, size: 1, uid: 0, gid: 0,
    }));
    const file = path.join(tmp, 'many.zip');
    await createArchiveFile(entries, file, 'zip', 'fast');
    const buf = await fs.promises.readFile(file);
    assert.ok(buf.includes(Buffer.from([0x50, 0x4b, 0x06, 0x06])), 'zip64 end of central directory record');
    assert.ok(buf.includes(Buffer.from([0x50, 0x4b, 0x06, 0x07])), 'zip64 end of central directory locator');
    const listed = await listZip(file);
    assert.equal(listed.length, n);
    assert.equal(listed[n - 1].name, entries[n - 1].name);
  } finally {
    await rmrf(tmp);
  }
});

test('tar.zst: files around the inline limit (512 KiB) and the 1 MiB sink region, and names over 100 bytes, round trip', async () => {
  const tmp = await tempDir();
  try {
    const src = path.join(tmp, 'src');
    const long = `${'d'.repeat(60)}/${'e'.repeat(60)}`;
    await fs.promises.mkdir(path.join(src, long), { recursive: true });
    let seed = 7;
    for (const size of [0, 1, 65536, (512 << 10) - 513, (512 << 10) - 1, 512 << 10, (512 << 10) + 1, (1 << 20) - 512, 1 << 20, (1 << 20) + 1, 3 << 20]) {
      const data = Buffer.alloc(size);
      for (let i = 0; i < size; i++) data[i] = (seed = (seed * 1103515245 + 12345) & 0x7fffffff) >> 16;
      await fs.promises.writeFile(path.join(src, `f${size}`), data);
      await fs.promises.writeFile(path.join(src, long, `${'n'.repeat(40)}${size}`), data);
    }
    const sel = await selectFiles({ cwd: src, paths: ['.'] });
    assert.equal(sel.entries.find((e) => e.name === 'f1')!.absPath, path.join(src, 'f1'));
    const file = path.join(tmp, 'cache.tar.zst');
    await createArchiveFile(sel.entries, file, 'tarzstd', 'fast');
    const dst = path.join(tmp, 'dst');
    await extractArchive(file, dst);
    assert.deepEqual(await snapshot(dst), await snapshot(src));
  } finally {
    await rmrf(tmp);
  }
});
