/**
 * The huge cases, behind CACHEGATE_TEST_LARGE=1 (minutes and ~15 GB of temporary disk):
 * an archive above 4 GiB with an entry above 4 GiB (zip64 sizes and offsets), and more than
 * 65,535 files round-tripped through the file system, each checked by unzip / Python as well.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { createArchiveFile, extractArchive, selectFiles } from '../../src/archive/index.ts';
import { listZip } from '../../src/archive/zip-reader.ts';
import { rmrf, run, tempDir } from '../fixtures/archive/tree.ts';

const LARGE = process.env.CACHEGATE_TEST_LARGE === '1';
const skip = LARGE ? false : 'set CACHEGATE_TEST_LARGE=1 to run (minutes, ~15 GB of temporary disk)';

async function sha256(file: string): Promise<string> {
  const h = crypto.createHash('sha256');
  for await (const c of fs.createReadStream(file, { highWaterMark: 1 << 20 })) h.update(c as Buffer);
  return h.digest('hex');
}

test('archive above 4 GiB with a 4.5 GiB entry (zip store, zip deflate, tar.zst) round-trips', { skip, timeout: 60 * 60_000 }, async () => {
  const tmp = await tempDir();
  try {
    const src = path.join(tmp, 'src');
    await fs.promises.mkdir(src);
    const big = path.join(src, 'big.bin');
    // 4.5 GiB: a pattern block written repeatedly (not sparse: real bytes on disk)
    const fh = await fs.promises.open(big, 'w');
    const block = crypto.randomBytes(1 << 20);
    const total = 4608;
    for (let i = 0; i < total; i++) {
      block.writeUInt32LE(i, 0);
      await fh.write(block);
    }
    await fh.close();
    await fs.promises.writeFile(path.join(src, 'after.txt'), 'written after the big entry: offset > 4 GiB\n');
    const want = await sha256(big);
    const sel = await selectFiles({ cwd: src, paths: ['.'] });
    for (const [format, level] of [['zip', 'fastest'], ['zip', 'fast'], ['tarzstd', 'fast']] as const) {
      const file = path.join(tmp, `big.${format}.${level}`);
      await createArchiveFile(sel.entries, file, format, level);
      const size = (await fs.promises.stat(file)).size;
      if (level === 'fastest') assert.ok(size > 2 ** 32, `archive is ${size} bytes`);
      if (format === 'zip') {
        const entries = await listZip(file);
        assert.equal(entries.find((e) => e.name === 'big.bin')!.size, total * 2 ** 20);
        const t = run('unzip', ['-tq', file]);
        assert.equal(t.status, 0, t.stdout + t.stderr);
      }
      const dst = path.join(tmp, 'dst');
      await extractArchive(file, dst);
      assert.equal(await sha256(path.join(dst, 'big.bin')), want);
      assert.equal(await fs.promises.readFile(path.join(dst, 'after.txt'), 'utf8'), 'written after the big entry: offset > 4 GiB\n');
      await rmrf(dst);
      await fs.promises.rm(file);
    }
  } finally {
    await rmrf(tmp);
  }
});

test('more than 65,535 files round-trip through the file system (zip, zipzstd, tarzstd) and unzip reads ours', { skip, timeout: 60 * 60_000 }, async () => {
  const tmp = await tempDir();
  try {
    const src = path.join(tmp, 'src');
    for (let d = 0; d < 67; d++) {
      const dir = path.join(src, `d${d}`);
      await fs.promises.mkdir(dir, { recursive: true });
      for (let i = 0; i < 1000; i++) fs.writeFileSync(path.join(dir, `f${i}`), `${d}/${i}`);
    }
    const sel = await selectFiles({ cwd: src, paths: ['.'] });
    assert.equal(sel.entries.length, 67_067);
    for (const format of ['zip', 'zipzstd', 'tarzstd'] as const) {
      const file = path.join(tmp, `many.${format}`);
      await createArchiveFile(sel.entries, file, format, 'fast');
      if (format === 'zip') {
        const l = run('unzip', ['-l', file]);
        assert.equal(l.status, 0, l.stderr);
        assert.match(l.stdout, /67067 files/);
      }
      const dst = path.join(tmp, `dst-${format}`);
      const res = await extractArchive(file, dst);
      assert.equal(res.entries, 67_067);
      const d = run('diff', ['-r', src, dst]);
      assert.equal(d.status, 0, d.stdout.slice(0, 2000));
      await rmrf(dst);
    }
  } finally {
    await rmrf(tmp);
  }
});
