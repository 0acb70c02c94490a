/**
 * What zip extraction keeps per entry (issue 13, session 8): the central directory stays raw bytes
 * with a small index (zip-directory.ts), names are not copied when already clean, and nothing
 * remembers every file written (zip has no hard links). Measured as live heap after a full
 * collection at the end of the extraction (SafeWriter.finish), against the heap before it: a
 * ZipEntry object, a name, a cleaned copy of it, a map entry and a set entry per entry were ~450
 * bytes each (~14 MB for 30,000 entries); now the per-entry cost is the directory's raw records,
 * outside the heap.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { extractArchive } from '../../src/archive/index.ts';
import { SafeWriter } from '../../src/archive/safe-writer.ts';
import { readCentralDirectory } from '../../src/archive/zip-directory.ts';
import { FileSource } from '../../src/archive/file-source.ts';
import { CorruptArchiveError } from '../../src/archive/errors.ts';
import { rmrf, tempDir } from '../fixtures/archive/tree.ts';

const ENTRIES = 30_000;

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

function liveHeap(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

/** A zip of `n` one-byte files with node_modules-like names, written by Python's zipfile (central directory in `order`). */
function pyZip(file: string, n: number, order: 'file' | 'reversed' = 'file'): void {
  const py = `
import sys, zipfile
z = zipfile.ZipFile(sys.argv[1], 'w')
for i in range(int(sys.argv[2])):
    z.writestr('node_modules/package-%03d/lib/a-fairly-long-module-name-like-npm-has-%05d.js' % (i // 100, i), b'x')
if sys.argv[3] == 'reversed':
    z.filelist.reverse()
z.close()
`;
  const r = spawnSync('python3', ['-c', py, file, String(n), order], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
}

test(`zip extraction holds no per-entry objects on the heap (${ENTRIES} entries)`, async () => {
  const tmp = await tempDir();
  const finish = SafeWriter.prototype.finish;
  try {
    const file = path.join(tmp, 'many.zip');
    pyZip(file, ENTRIES);
    const dst = path.join(tmp, 'x');
    await fs.promises.mkdir(dst);
    let atFinish = 0;
    SafeWriter.prototype.finish = function (this: SafeWriter): Promise<void> {
      atFinish = liveHeap();
      return finish.call(this);
    };
    const before = liveHeap();
    const r = await extractArchive(file, dst);
    assert.equal(r.entries, ENTRIES);
    const grown = atFinish - before;
    // ~14 MB before session 8; now ~1 MB (directories, V8's own noise)
    assert.ok(grown < 4 * 1024 * 1024, `the heap held ${(grown / 1048576).toFixed(1)} MiB more at the end of the extraction`);
    assert.equal(fs.readFileSync(path.join(dst, 'node_modules/package-299/lib/a-fairly-long-module-name-like-npm-has-29999.js'), 'utf8'), 'x');
  } finally {
    SafeWriter.prototype.finish = finish;
    await rmrf(tmp);
  }
});

test('the central directory index: file order when the directory lists entries in another order', async () => {
  const tmp = await tempDir();
  try {
    const file = path.join(tmp, 'rev.zip');
    pyZip(file, 50, 'reversed');
    const fh = await fs.promises.open(file, 'r');
    try {
      const cd = await readCentralDirectory(new FileSource(fh, (await fh.stat()).size));
      assert.equal(cd.count, 50);
      assert.match(cd.name(0), /-00049\.js$/);
      const order = [...cd.fileOrder()];
      assert.deepEqual(order, Array.from({ length: 50 }, (_v, i) => 49 - i));
      for (let k = 1; k < order.length; k++) assert.ok(cd.localOffset(order[k]) > cd.localOffset(order[k - 1]));
      assert.equal(cd.entry(order[0]).localOffset, 0);
    } finally {
      await fh.close();
    }
    const dst = path.join(tmp, 'x');
    await fs.promises.mkdir(dst);
    assert.equal((await extractArchive(file, dst)).entries, 50);
  } finally {
    await rmrf(tmp);
  }
});

test('a central directory that cannot hold the entry count it declares is refused before anything is allocated for it', async () => {
  const tmp = await tempDir();
  try {
    const file = path.join(tmp, 'count.zip');
    pyZip(file, 3);
    const bytes = fs.readFileSync(file);
    const eocd = bytes.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
    bytes.writeUInt16LE(60_000, eocd + 8);
    bytes.writeUInt16LE(60_000, eocd + 10);
    fs.writeFileSync(file, bytes);
    const dst = path.join(tmp, 'x');
    await fs.promises.mkdir(dst);
    await assert.rejects(extractArchive(file, dst), (err: Error) => err instanceof CorruptArchiveError && /central directory ends after \d+ of 60000 entries/.test(err.message));
    assert.deepEqual(fs.readdirSync(dst), []);
  } finally {
    await rmrf(tmp);
  }
});
