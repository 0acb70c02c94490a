/**
 * Both deflate engines of zip creation (docs/archive.md "Deflate engines"): the native addon
 * (libdeflate, native/) and the node:zlib fallback write zips that unzip, zip -T, Python's zipfile
 * and our own reader accept, on a tree with every kind of entry plus files that fill several
 * batches and large files cut into blocks (compressible, incompressible, an exact multiple of the
 * block). The addon must be built wherever libdeflate-dev is installed (.ci/run installs it).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { createArchiveFile, extractArchive, selectFiles } from '../../src/archive/index.ts';
import { deflateEngine, nativeDeflate } from '../../src/archive/native-deflate.ts';
import { diffR, makeSampleTree, rmrf, run, snapshot, tempDir } from '../fixtures/archive/tree.ts';

const PY_CHECK = `
import sys, zipfile
zf = zipfile.ZipFile(sys.argv[1])
assert zf.testzip() is None
print(sum(1 for i in zf.infolist() if i.compress_type == zipfile.ZIP_DEFLATED))
`;

async function makeTree(root: string): Promise<void> {
  await makeSampleTree(root);
  const w = (rel: string, data: Buffer | string): void => {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), data);
  };
  // ~3 MiB of small source-like files: several 1 MiB batches
  for (let i = 0; i < 600; i++) w(`pkg/m${i % 7}/f${i}.js`, `export const v${i} = ${JSON.stringify('x'.repeat(i % 97))};\n`.repeat(1 + (i % 150)));
  w('pkg/medium.json', JSON.stringify(Array.from({ length: 20000 }, (_, i) => ({ i, name: `n${i}` }))));
  const text = Buffer.from(Array.from({ length: 120000 }, (_, i) => `line ${i} ${i % 13 === 0 ? 'cache' : 'gate'}\n`).join(''));
  w('large/text.log', text);
  w('large/exact.bin', Buffer.concat([text, text]).subarray(0, 2 << 20));
  w('large/random.bin', crypto.randomBytes((1 << 20) + 12345));
  w('large/tiny-tail.bin', Buffer.concat([text.subarray(0, 1 << 20), Buffer.from('z')]));
}

const engines = [
  ...(nativeDeflate() ? (['native'] as const) : []),
  'zlib',
] as const;

test('the native addon is built where libdeflate-dev is installed', { skip: fs.existsSync('/usr/include/libdeflate.h') ? false : 'libdeflate-dev is not installed' }, () => {
  assert.ok(nativeDeflate(), 'native/build/Release/cachegate_deflate.node loads (npm ci builds it: scripts/build-native.sh)');
  assert.match(deflateEngine(), /^libdeflate \d+\.\d+ \(native addon\)$/);
});

test('CACHEGATE_NATIVE_DEFLATE=0 turns the addon off', () => {
  const code = `import('./src/archive/native-deflate.ts').then((m) => console.log(m.deflateEngine()))`;
  const r = spawnSync(process.execPath, ['-e', code], { cwd: path.resolve(import.meta.dirname, '../..'), env: { ...process.env, CACHEGATE_NATIVE_DEFLATE: '0' }, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'node:zlib (CACHEGATE_NATIVE_DEFLATE=0)');
});

for (const engine of engines) {
  for (const level of ['fast', 'default'] as const) {
    test(`zip (${level}) deflated by ${engine}: unzip -t, zip -T, Python zipfile and our reader agree with the tree`, async () => {
      const tmp = await tempDir();
      try {
        const src = path.join(tmp, 'src');
        await makeTree(src);
        const file = path.join(tmp, 'cache.zip');
        const sel = await selectFiles({ cwd: src, paths: ['.'] });
        await createArchiveFile(sel.entries, file, 'zip', level, { zip: { engine } });
        assert.equal(run('unzip', ['-tq', file]).status, 0);
        const t = run('zip', ['-T', file]);
        assert.equal(t.status, 0, t.stdout + t.stderr);
        const py = run('python3', ['-c', PY_CHECK, file]);
        assert.equal(py.status, 0, py.stderr);
        assert.ok(Number(py.stdout) > 600, `most files are deflated (${py.stdout.trim()})`);
        const dst = path.join(tmp, 'dst');
        await extractArchive(file, dst);
        assert.equal(diffR(src, dst), '');
        assert.deepEqual(await snapshot(dst, { dirTimes: false }), await snapshot(src, { dirTimes: false }));
        const dst2 = path.join(tmp, 'dst2');
        assert.equal(run('unzip', ['-q', file, '-d', dst2]).status, 0);
        assert.equal(diffR(src, dst2), '');
      } finally {
        await rmrf(tmp);
      }
    });
  }
}

test('native and node:zlib archives of the same tree are within 10 % of each other in size', { skip: nativeDeflate() ? false : 'native addon not built' }, async () => {
  const tmp = await tempDir();
  try {
    const src = path.join(tmp, 'src');
    await makeTree(src);
    const sel = await selectFiles({ cwd: src, paths: ['.'] });
    const sizes: number[] = [];
    for (const engine of ['native', 'zlib'] as const) {
      const file = path.join(tmp, `${engine}.zip`);
      await createArchiveFile(sel.entries, file, 'zip', 'fast', { zip: { engine } });
      sizes.push(fs.statSync(file).size);
    }
    assert.ok(sizes[0] < sizes[1] * 1.1, `native ${sizes[0]} bytes, node:zlib ${sizes[1]}`);
  } finally {
    await rmrf(tmp);
  }
});

test('native: large-file blocks that deflate poorly (6 bits of entropy per byte) are stored, text blocks deflated', { skip: nativeDeflate() ? false : 'native addon not built' }, async () => {
  const tmp = await tempDir();
  try {
    const src = path.join(tmp, 'src');
    fs.mkdirSync(src);
    // 64 symbols, no repeats: deflate gains only its Huffman coding (~0.75), GitLab's klauspost stores it
    const sixBits = crypto.randomBytes(4 << 20).map((b) => 0x30 + (b & 0x3f));
    const text = Buffer.from(Array.from({ length: 200000 }, (_, i) => `line ${i} of a log\n`).join('')).subarray(0, 3 << 20);
    fs.writeFileSync(path.join(src, 'six-bits.bin'), sixBits);
    fs.writeFileSync(path.join(src, 'mixed.bin'), Buffer.concat([sixBits.subarray(0, 1 << 20), text]));
    const sel = await selectFiles({ cwd: src, paths: ['.'] });
    const file = path.join(tmp, 'cache.zip');
    await createArchiveFile(sel.entries, file, 'zip', 'fast', { zip: { engine: 'native' } });
    const py = run('python3', ['-c', 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); assert z.testzip() is None; print(" ".join(f"{i.filename}={i.compress_size}" for i in z.infolist()))', file]);
    assert.equal(py.status, 0, py.stderr);
    const size = Object.fromEntries(py.stdout.trim().split(' ').map((kv) => kv.split('=')).map(([k, v]) => [k, Number(v)]));
    assert.ok(size['six-bits.bin'] >= 4 << 20, `stored (${size['six-bits.bin']})`);
    assert.ok(size['mixed.bin'] > 1 << 20 && size['mixed.bin'] < (1 << 20) + (1 << 20), `first block stored, the text after it deflated (${size['mixed.bin']})`);
  } finally {
    await rmrf(tmp);
  }
});
