/**
 * The tar writer's small files are read ahead on the threadpool with the native addon
 * (tar-read-ahead.ts) or read by the main thread without it: a file that changed between selection
 * and reading is handled alike by both. Vanished: skipped with a warning; grown: the stat'ed size;
 * shrunk: an error naming it; swapped for a symlink: an error naming it, never followed. Checked
 * with GNU tar. Files that fill several 1 MiB batches, between large (streamed) files.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { selectFiles } from '../../src/archive/index.ts';
import { nativeDeflate } from '../../src/archive/native-deflate.ts';
import { writeTar } from '../../src/archive/tar-writer.ts';
import { rmrf, tempDir } from '../fixtures/archive/tree.ts';

const modes = [...(nativeDeflate() ? [true] : []), false] as const;
const content = (i: number): string => `file ${i} `.repeat(100 + 37 * i);

async function tarAfterChanges(tmp: string, readAhead: boolean, change: (root: string) => void): Promise<{ file: string; warnings: string[] }> {
  const root = path.join(tmp, 'src');
  fs.mkdirSync(path.join(root, 'd'), { recursive: true });
  for (let i = 0; i < 300; i++) fs.writeFileSync(path.join(root, 'd', `f${i}.txt`), content(i));
  fs.writeFileSync(path.join(root, 'd', 'f150-big.bin'), Buffer.alloc(3 << 20, 7));
  fs.writeFileSync(path.join(root, 'd', 'empty'), '');
  const sel = await selectFiles({ cwd: root, paths: ['d'], exclude: [], untracked: false, env: {} });
  change(root);
  const file = path.join(tmp, 'out.tar');
  const warnings: string[] = [];
  await writeTar(sel.entries, fs.createWriteStream(file), { readAhead, onWarning: (w) => warnings.push(w) });
  return { file, warnings };
}

for (const readAhead of modes) {
  const label = readAhead ? 'read ahead (native)' : 'main thread';
  test(`tar, ${label}: files that vanished or grew after selection; the rest intact`, async () => {
    const tmp = await tempDir('cg-tar-read-ahead-');
    try {
      const { file, warnings } = await tarAfterChanges(tmp, readAhead, (root) => {
        fs.rmSync(path.join(root, 'd/f3.txt'));
        fs.appendFileSync(path.join(root, 'd/f9.txt'), 'MORE');
      });
      assert.deepEqual(warnings, ['d/f3.txt: file vanished while archiving, skipped']);
      const dst = path.join(tmp, 'dst');
      fs.mkdirSync(dst);
      const r = spawnSync('tar', ['-xf', file, '-C', dst], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(fs.existsSync(path.join(dst, 'd/f3.txt')), false);
      assert.equal(fs.readFileSync(path.join(dst, 'd/f9.txt'), 'utf8'), content(9));
      for (const i of [0, 1, 149, 150, 151, 299]) assert.equal(fs.readFileSync(path.join(dst, `d/f${i}.txt`), 'utf8'), content(i), `f${i}`);
      assert.ok(fs.readFileSync(path.join(dst, 'd/f150-big.bin')).equals(Buffer.alloc(3 << 20, 7)));
      assert.equal(fs.readFileSync(path.join(dst, 'd/empty'), 'utf8'), '');
      assert.equal(fs.readdirSync(path.join(dst, 'd')).length, 301);
    } finally {
      await rmrf(tmp);
    }
  });

  test(`tar, ${label}: a file that shrank is an error naming it`, async () => {
    const tmp = await tempDir('cg-tar-read-ahead-');
    try {
      await assert.rejects(
        tarAfterChanges(tmp, readAhead, (root) => fs.writeFileSync(path.join(root, 'd/f200.txt'), 'abc')),
        (err: Error) => err.message.includes('d/f200.txt: file shrank while archiving'),
      );
    } finally {
      await rmrf(tmp);
    }
  });

  test(`tar, ${label}: a file swapped for a symlink is an error naming it, never followed`, async () => {
    const tmp = await tempDir('cg-tar-read-ahead-');
    try {
      fs.writeFileSync(path.join(tmp, 'secret'), 'outside');
      await assert.rejects(
        tarAfterChanges(tmp, readAhead, (root) => {
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
