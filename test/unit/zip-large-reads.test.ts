/**
 * Large files (> 1 MiB, cut into blocks) that changed between selection and reading: the native
 * path reads each block in its threadpool job (native-stream.ts), the node:zlib path on the main
 * thread; both must write a zip every reader accepts. Shrunk: what is left, with a warning (cut
 * inside a block, at a block boundary, to nothing); grown: the stat'ed size. Checked with Python's
 * zipfile (CRC and deflate stream) and our reader.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { extractArchive, selectFiles } from '../../src/archive/index.ts';
import { nativeDeflate } from '../../src/archive/native-deflate.ts';
import { writeZip } from '../../src/archive/zip-writer.ts';
import { rmrf, tempDir } from '../fixtures/archive/tree.ts';
import { METHOD_DEFLATE } from '../../src/archive/compress.ts';

const engines = [...(nativeDeflate() ? (['native'] as const) : []), 'zlib'] as const;
const MiB = 1 << 20;
const text = Buffer.from(Array.from({ length: 400000 }, (_, i) => `line ${i} of a log\n`).join('')).subarray(0, 5 * MiB + 777);
// 6 bits of entropy per byte: these blocks are stored by the native path
const sixBits = Buffer.from(crypto.randomBytes(5 * MiB + 777).map((b) => 0x30 + (b & 0x3f)));

for (const engine of engines) {
  test(`${engine}: large files that shrank (inside a block, at a block boundary, to nothing) or grew after selection`, async () => {
    const tmp = await tempDir('cg-zip-large-reads-');
    try {
      const root = path.join(tmp, 'src');
      fs.mkdirSync(path.join(root, 'd'), { recursive: true });
      const names = ['grew', 'inside', 'boundary', 'empty', 'same'];
      for (const kind of ['text', 'bin']) for (const n of names) fs.writeFileSync(path.join(root, 'd', `${n}.${kind}`), kind === 'text' ? text : sixBits);
      const sel = await selectFiles({ cwd: root, paths: ['d'], exclude: [], untracked: false, env: {} });
      const expected = new Map<string, Buffer>();
      for (const kind of ['text', 'bin']) {
        const data = kind === 'text' ? text : sixBits;
        const p = (n: string): string => path.join(root, 'd', `${n}.${kind}`);
        fs.appendFileSync(p('grew'), 'MORE');
        expected.set(`grew.${kind}`, data);
        fs.truncateSync(p('inside'), 2 * MiB + 100);
        expected.set(`inside.${kind}`, data.subarray(0, 2 * MiB + 100));
        fs.truncateSync(p('boundary'), 3 * MiB);
        expected.set(`boundary.${kind}`, data.subarray(0, 3 * MiB));
        fs.truncateSync(p('empty'), 0);
        expected.set(`empty.${kind}`, Buffer.alloc(0));
        expected.set(`same.${kind}`, data);
      }
      const file = path.join(tmp, 'out.zip');
      const warnings: string[] = [];
      await writeZip(sel.entries, fs.createWriteStream(file), { method: METHOD_DEFLATE, level: 1, engine, onWarning: (w) => warnings.push(w) });
      assert.deepEqual(warnings.filter((w) => w.includes('size changed')).length, 6, warnings.join('\n'));
      const py = spawnSync('python3', ['-c', 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); assert z.testzip() is None; print(len(z.namelist()))', file], { encoding: 'utf8' });
      assert.equal(py.status, 0, py.stderr);
      assert.equal(py.stdout.trim(), '11'); // d/ and 10 files
      const dst = path.join(tmp, 'dst');
      await extractArchive(file, dst);
      for (const [name, data] of expected) assert.ok(fs.readFileSync(path.join(dst, 'd', name)).equals(data), name);
    } finally {
      await rmrf(tmp);
    }
  });
}
