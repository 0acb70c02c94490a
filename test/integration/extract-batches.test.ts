/**
 * Small files written in the background by the native addon (file-batches.ts): what they write is
 * what the one-file-at-a-time path writes (contents, modes, mtimes, across more directories than
 * the handle cache holds), entries that touch a name still in flight wait for it, and the failures
 * leave no file. Archives are built by Python's zipfile/tarfile and the zstd CLI. Every case runs
 * with the background writes on and off (`writeBatches: { inFlight: 0 }`, as with
 * CACHEGATE_NATIVE_DEFLATE=0); the cases that need the addon are skipped without it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { extractZip } from '../../src/archive/zip-reader.ts';
import { extractTarZstd } from '../../src/archive/tar-reader.ts';
import { nativeDeflate } from '../../src/archive/native-deflate.ts';
import { ExtractRoot } from '../../src/archive/extract-root.ts';
import { FileBatches } from '../../src/archive/file-batches.ts';
import { CorruptArchiveError } from '../../src/archive/safe-writer.ts';
import { rmrf, tempDir } from '../fixtures/archive/tree.ts';
import { buildArchive, tarEntry, writeTarZst, type EvilEntry } from '../fixtures/archive/evil.ts';

const native = nativeDeflate();
const noBatches = native?.writeFiles ? false : 'the native addon (with writeFiles) is not built';

/** Counts the native batch jobs while `fn` runs. */
async function countingJobs<T>(fn: () => Promise<T>): Promise<{ result: T; jobs: number }> {
  const n = native as { writeFiles?: (...args: never[]) => Promise<void> };
  const original = n.writeFiles!;
  let jobs = 0;
  n.writeFiles = (...args: never[]) => {
    jobs++;
    return original.apply(n, args);
  };
  try {
    return { result: await fn(), jobs };
  } finally {
    n.writeFiles = original;
  }
}

const extract = (kind: 'zip' | 'tar', file: string, dir: string, batches: boolean): Promise<unknown> =>
  (kind === 'zip' ? extractZip : extractTarZstd)(file, dir, batches ? {} : { writeBatches: { inFlight: 0 } });

function manyFiles(): EvilEntry[] {
  const spec: EvilEntry[] = [];
  const modes = [0o644, 0o600, 0o755, 0o640, 0o4755, 0o444];
  for (let i = 0; i < 400; i++) {
    spec.push({ name: `d${i % 200}/s${i % 7}/f${i}.txt`, kind: 'f', data: `file ${i} `.repeat(1 + (i % 50) * 37), mode: modes[i % modes.length], mtime: 1_600_000_000 + i * 61 });
  }
  return spec;
}

for (const kind of ['zip', 'tar'] as const) {
  test(`${kind}: 400 small files in 200 directories (more than the 128 cached handles), background writes give the same tree as one by one`, { skip: noBatches }, async () => {
    const tmp = await tempDir();
    try {
      const archive = path.join(tmp, kind === 'zip' ? 'a.zip' : 'a.tar.zst');
      const spec = manyFiles();
      buildArchive(kind, archive, spec);
      const { jobs } = await countingJobs(() => extract(kind, archive, path.join(tmp, 'on'), true));
      assert.ok(jobs >= 400 / 32, `the files went through the native batches (${jobs} jobs)`);
      const off = await countingJobs(() => extract(kind, archive, path.join(tmp, 'off'), false));
      assert.equal(off.jobs, 0);
      for (const e of spec) {
        const [a, b] = ['on', 'off'].map((d) => path.join(tmp, d, e.name));
        assert.equal(fs.readFileSync(a, 'utf8'), e.data, e.name);
        const [sa, sb] = [fs.statSync(a), fs.statSync(b)];
        assert.equal(sa.mode & 0o7777, e.mode! & 0o777, `${e.name} mode (special bits are dropped)`);
        assert.equal(sa.mode, sb.mode);
        assert.equal(sa.mtimeMs, sb.mtimeMs, `${e.name} mtime`);
        if (kind === 'tar') assert.equal(sa.mtimeMs, e.mtime! * 1000, `${e.name} mtime`); // zip keeps DOS times: 2 s steps
      }
    } finally {
      await rmrf(tmp);
    }
  });

  test(`${kind}: a file whose name holds a directory already is refused and the directory kept (both paths)`, async () => {
    for (const batches of [true, false]) {
      const tmp = await tempDir();
      try {
        const archive = path.join(tmp, kind === 'zip' ? 'a.zip' : 'a.tar.zst');
        buildArchive(kind, archive, [{ name: 'x', kind: 'f', data: 'x' }, { name: 'ok', kind: 'f', data: 'ok' }]);
        fs.mkdirSync(path.join(tmp, 'w', 'x', 'inner'), { recursive: true });
        await assert.rejects(extract(kind, archive, path.join(tmp, 'w'), batches), /a directory is in the way/);
        assert.ok(fs.statSync(path.join(tmp, 'w', 'x', 'inner')).isDirectory());
      } finally {
        await rmrf(tmp);
      }
    }
  });

  test(`${kind}: a symlink at a file's name, pointing outside, is replaced, never written through (both paths)`, async () => {
    for (const batches of [true, false]) {
      const tmp = await tempDir();
      try {
        const archive = path.join(tmp, kind === 'zip' ? 'a.zip' : 'a.tar.zst');
        buildArchive(kind, archive, [{ name: 'sub/victim', kind: 'f', data: 'from the archive' }]);
        fs.writeFileSync(path.join(tmp, 'outside'), 'untouched');
        fs.mkdirSync(path.join(tmp, 'w', 'sub'), { recursive: true });
        fs.symlinkSync(path.join(tmp, 'outside'), path.join(tmp, 'w', 'sub', 'victim'));
        await extract(kind, archive, path.join(tmp, 'w'), batches);
        assert.equal(fs.readFileSync(path.join(tmp, 'outside'), 'utf8'), 'untouched');
        assert.ok(fs.lstatSync(path.join(tmp, 'w', 'sub', 'victim')).isFile());
        assert.equal(fs.readFileSync(path.join(tmp, 'w', 'sub', 'victim'), 'utf8'), 'from the archive');
      } finally {
        await rmrf(tmp);
      }
    }
  });
}

test('tar: a name repeated across batches: the last entry wins; a file then a directory of its name is refused (both paths)', async () => {
  for (const batches of [true, false]) {
    const tmp = await tempDir();
    try {
      const entries: Buffer[] = [];
      for (let i = 0; i < 100; i++) entries.push(tarEntry({ name: i % 2 ? 'same' : `other${i}`, type: '0' }, Buffer.from(`version ${i}`)));
      writeTarZst(path.join(tmp, 'a.tar.zst'), Buffer.concat(entries));
      await extractTarZstd(path.join(tmp, 'a.tar.zst'), path.join(tmp, 'w'), batches ? { writeBatches: { batchFiles: 2, inFlight: 3 } } : { writeBatches: { inFlight: 0 } });
      assert.equal(fs.readFileSync(path.join(tmp, 'w', 'same'), 'utf8'), 'version 99');
      writeTarZst(path.join(tmp, 'b.tar.zst'), Buffer.concat([tarEntry({ name: 'f', type: '0' }, Buffer.from('f')), tarEntry({ name: 'f/g', type: '0' }, Buffer.from('g'))]));
      await assert.rejects(extractTarZstd(path.join(tmp, 'b.tar.zst'), path.join(tmp, 'w2'), batches ? {} : { writeBatches: { inFlight: 0 } }), /a file is in the way/);
      assert.equal(fs.readFileSync(path.join(tmp, 'w2', 'f'), 'utf8'), 'f');
    } finally {
      await rmrf(tmp);
    }
  }
});

test('zip: a small entry with a flipped byte fails its CRC before its file is created, earlier files stay (both paths)', async () => {
  for (const batches of [true, false]) {
    const tmp = await tempDir();
    try {
      const archive = path.join(tmp, 'a.zip');
      buildArchive('zip', archive, [{ name: 'good.txt', kind: 'f', data: 'good '.repeat(100) }, { name: 'bad.txt', kind: 'f', data: 'MARKERMARKER'.repeat(3) }]);
      const buf = fs.readFileSync(archive);
      // stored or deflated, the entry's bytes follow its local header's name
      const at = buf.indexOf('bad.txt') + 'bad.txt'.length + 4;
      buf[at] ^= 0x01;
      fs.writeFileSync(archive, buf);
      const err = await extractZip(archive, path.join(tmp, 'w'), batches ? {} : { writeBatches: { inFlight: 0 } }).catch((e: unknown) => e);
      assert.ok(err instanceof CorruptArchiveError, String(err));
      assert.match(err.message, /bad\.txt/);
      assert.equal(fs.existsSync(path.join(tmp, 'w', 'bad.txt')), false);
      assert.equal(fs.readFileSync(path.join(tmp, 'w', 'good.txt'), 'utf8'), 'good '.repeat(100));
    } finally {
      await rmrf(tmp);
    }
  }
});

test('FileBatches: an entry that is, or goes through, a name in flight waits for it (the order of the entries holds)', { skip: noBatches }, async () => {
  const tmp = await tempDir();
  const root = await ExtractRoot.open(tmp);
  try {
    const batches = new FileBatches(native!.writeFiles!.bind(native), root, () => new Error('failed'), { batchFiles: 4 });
    assert.equal(batches.ready('a'), null);
    batches.add({ rel: 'a', entry: 'a', dirFd: root.dir('a', '', true), base: 'a', mode: 0o644, chmod: false, atimeS: 0, mtimeMs: 0, method: 0, size: 1, crc: -1, uid: -1, gid: -1 }, Buffer.from('1'));
    for (const rel of ['a', 'a/b', 'a/b/c']) assert.ok(batches.ready(rel) instanceof Promise, rel);
    assert.equal(batches.ready('ab'), null);
    await batches.ready('a');
    assert.equal(batches.pending.size, 0);
    assert.equal(fs.readFileSync(path.join(tmp, 'a'), 'utf8'), '1');
  } finally {
    root.close();
    await rmrf(tmp);
  }
});

test('zip: large entries (deflated and stored) are decoded by the addon on the threadpool, no worker thread; a flipped byte is refused and leaves no file (both paths)', { skip: native?.inflateFile ? false : 'the native addon (with inflateFile) is not built' }, async () => {
  const n = native as { inflateFile?: (...args: never[]) => Promise<[number, number]> };
  const original = n.inflateFile!;
  const tmp = await tempDir();
  try {
    const big = Array.from({ length: 150_000 }, (_, i) => `line ${i} ${(i * 7919) % 1000}\n`).join('');
    const archive = path.join(tmp, 'a.zip');
    // Python zipfile: deflated; `zip -0`: stored
    buildArchive('zip', archive, [{ name: 'big.txt', kind: 'f', data: big }]);
    fs.writeFileSync(path.join(tmp, 'stored.txt'), big);
    const stored = path.join(tmp, 's.zip');
    const z = (await import('node:child_process')).spawnSync('zip', ['-0', '-q', stored, 'stored.txt'], { cwd: tmp });
    assert.equal(z.status, 0);
    for (const useNative of [true, false]) {
      let calls = 0;
      n.inflateFile = useNative ? (...args: never[]) => (calls++, original.apply(n, args)) : undefined;
      const out = path.join(tmp, `w-${useNative}`);
      await extractZip(archive, out);
      await extractZip(stored, out);
      assert.equal(calls, useNative ? 2 : 0);
      assert.equal(fs.readFileSync(path.join(out, 'big.txt'), 'utf8'), big);
      assert.equal(fs.readFileSync(path.join(out, 'stored.txt'), 'utf8'), big);
      const bad = fs.readFileSync(archive);
      bad[bad.indexOf('big.txt') + 'big.txt'.length + 5000] ^= 0x10;
      fs.writeFileSync(path.join(tmp, 'bad.zip'), bad);
      const err = await extractZip(path.join(tmp, 'bad.zip'), path.join(tmp, `bad-${useNative}`)).catch((e: unknown) => e);
      assert.ok(err instanceof CorruptArchiveError, String(err));
      assert.equal(fs.existsSync(path.join(tmp, `bad-${useNative}`, 'big.txt')), false);
    }
  } finally {
    n.inflateFile = original;
    await rmrf(tmp);
  }
});
