/**
 * Small files of a zip are read by their batch's job on the threadpool (native addon) or by the
 * main thread (node:zlib): a file that changed between selection and reading is handled alike by
 * both. Vanished: skipped with a warning; shrunk: what is left; grown: the stat'ed size; swapped for
 * a symlink: an error naming the file (never followed). Checked with Python's zipfile and our reader.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { extractArchive, selectFiles } from '../../src/archive/index.ts';
import { nativeDeflate } from '../../src/archive/native-deflate.ts';
import { writeZip } from '../../src/archive/zip-writer.ts';
import { rmrf, tempDir } from '../fixtures/archive/tree.ts';
import { METHOD_DEFLATE } from '../../src/archive/compress.ts';

const engines = [...(nativeDeflate() ? (['native'] as const) : []), 'zlib'] as const;

async function zipAfterChanges(tmp: string, engine: 'native' | 'zlib', change: (root: string) => void): Promise<{ file: string; warnings: string[] }> {
  const root = path.join(tmp, 'src');
  fs.mkdirSync(path.join(root, 'd'), { recursive: true });
  for (let i = 0; i < 50; i++) fs.writeFileSync(path.join(root, 'd', `f${i}.txt`), `file ${i} `.repeat(100 + i));
  const sel = await selectFiles({ cwd: root, paths: ['d'], exclude: [], untracked: false, env: {} });
  change(root);
  const file = path.join(tmp, 'out.zip');
  const warnings: string[] = [];
  const out = fs.createWriteStream(file);
  await writeZip(sel.entries, out, { method: METHOD_DEFLATE, level: 1, engine, onWarning: (w) => warnings.push(w) });
  return { file, warnings };
}

for (const engine of engines) {
  test(`${engine}: files that vanished, shrank or grew after selection`, async () => {
    const tmp = await tempDir('cg-zip-batch-reads-');
    try {
      const { file, warnings } = await zipAfterChanges(tmp, engine, (root) => {
        fs.rmSync(path.join(root, 'd/f3.txt'));
        fs.writeFileSync(path.join(root, 'd/f7.txt'), 'abc');
        fs.appendFileSync(path.join(root, 'd/f9.txt'), 'MORE');
      });
      assert.deepEqual(warnings.filter((w) => w.includes('vanished')), ['d/f3.txt: file vanished while archiving, skipped']);
      const py = spawnSync('python3', ['-c', 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); assert z.testzip() is None; print(len(z.namelist()))', file], { encoding: 'utf8' });
      assert.equal(py.status, 0, py.stderr);
      assert.equal(py.stdout.trim(), '50'); // d/ and 49 files
      const dst = path.join(tmp, 'dst');
      await extractArchive(file, dst);
      assert.equal(fs.existsSync(path.join(dst, 'd/f3.txt')), false);
      assert.equal(fs.readFileSync(path.join(dst, 'd/f7.txt'), 'utf8'), 'abc');
      assert.equal(fs.readFileSync(path.join(dst, 'd/f9.txt'), 'utf8'), 'file 9 '.repeat(109));
      assert.equal(fs.readFileSync(path.join(dst, 'd/f49.txt'), 'utf8'), 'file 49 '.repeat(149));
    } finally {
      await rmrf(tmp);
    }
  });

  test(`${engine}: a file swapped for a symlink is an error naming it, never followed`, async () => {
    const tmp = await tempDir('cg-zip-batch-reads-');
    try {
      fs.writeFileSync(path.join(tmp, 'secret'), 'outside');
      await assert.rejects(
        zipAfterChanges(tmp, engine, (root) => {
          fs.rmSync(path.join(root, 'd/f5.txt'));
          fs.symlinkSync(path.join(tmp, 'secret'), path.join(root, 'd/f5.txt'));
        }),
        (err: Error) => /ELOOP/.test(err.message) && err.message.includes('f5.txt'),
      );
    } finally {
      await rmrf(tmp);
    }
  });
}
