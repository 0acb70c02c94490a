/**
 * Malicious archives (built with Python's zipfile/tarfile and zstd) must be refused, and nothing
 * may be written outside the working directory. A corrupt or truncated archive must fail with a
 * clear error and leave no half-written file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { extractArchive, CorruptArchiveError, UnsafeEntryError } from '../../src/archive/index.ts';
import { listAll, rmrf, run, tempDir } from '../fixtures/archive/tree.ts';

/** Entries: [name, kind, data-or-target]; kind f = file, d = dir, l = symlink, h = hardlink (tar only). */
type Spec = Array<[string, 'f' | 'd' | 'l' | 'h', string]>;

const PY = `
import sys, json, io, zipfile, tarfile, subprocess, stat, time
kind, out = sys.argv[1], sys.argv[2]
spec = json.loads(sys.stdin.read())
if kind == 'zip':
    zf = zipfile.ZipFile(out, 'w', zipfile.ZIP_DEFLATED)
    for name, k, data in spec:
        zi = zipfile.ZipInfo(name)
        zi.create_system = 3
        if k == 'l': zi.external_attr = (stat.S_IFLNK | 0o777) << 16
        elif k == 'd': zi.external_attr = (stat.S_IFDIR | 0o755) << 16 | 0x10
        else: zi.external_attr = (stat.S_IFREG | 0o644) << 16
        zf.writestr(zi, data)
    zf.close()
else:
    buf = io.BytesIO()
    tf = tarfile.open(fileobj=buf, mode='w', format=tarfile.PAX_FORMAT)
    for name, k, data in spec:
        ti = tarfile.TarInfo(name)
        ti.mtime = time.time()
        if k == 'l': ti.type, ti.linkname = tarfile.SYMTYPE, data
        elif k == 'h': ti.type, ti.linkname = tarfile.LNKTYPE, data
        elif k == 'd': ti.type, ti.mode = tarfile.DIRTYPE, 0o755
        else: ti.size = len(data.encode())
        tf.addfile(ti, io.BytesIO(data.encode()) if k == 'f' else None)
    tf.close()
    open(out, 'wb').write(subprocess.run(['zstd', '-q', '-c'], input=buf.getvalue(), capture_output=True, check=True).stdout)
`;

interface Case {
  title: string;
  spec: (outside: string) => Spec;
  /** Prepare the working directory (pre-existing files/symlinks). */
  before?: (work: string, outside: string) => Promise<void>;
  /** Expected failure; undefined = extraction succeeds (but still writes nothing outside). */
  error?: RegExp;
  /**
   * tar is a stream: a file that comes before the symlink it would later be "under" is written into
   * a real directory inside the working directory, then the symlink is refused.
   */
  evilInsideOk?: boolean;
}

const cases: Case[] = [
  { title: 'a ../ name (zip-slip)', spec: () => [['ok.txt', 'f', 'ok'], ['../evil.txt', 'f', 'evil']], error: /"\.\."/ },
  { title: 'a nested a/../../ name', spec: () => [['a/../../evil.txt', 'f', 'evil']], error: /"\.\."/ },
  { title: 'an absolute name', spec: (o) => [[`${o}/evil.txt`, 'f', 'evil']], error: /absolute/ },
  { title: 'a symlink to outside, then a file through it', spec: (o) => [['link', 'l', o], ['link/evil.txt', 'f', 'evil']], error: /symlink/ },
  { title: 'a file through a symlink that comes later in the archive', spec: (o) => [['link/evil.txt', 'f', 'evil'], ['link', 'l', o]], error: /symlink/, evilInsideOk: true },
  { title: 'a symlink to .., then a file through it', spec: () => [['up', 'l', '..'], ['up/evil.txt', 'f', 'evil']], error: /symlink/ },
  { title: 'a symlink chain (a -> b/.., b -> outside) and a file through it', spec: (o) => [['b', 'l', o], ['a', 'l', 'b/..'], ['a/evil.txt', 'f', 'evil']], error: /symlink/ },
  { title: 'a directory entry through a symlink', spec: (o) => [['link', 'l', o], ['link/sub/', 'd', '']], error: /symlink/ },
  {
    title: 'a pre-existing symlink in the working directory pointing outside',
    before: async (w, o) => fs.promises.symlink(o, path.join(w, 'pre')),
    spec: () => [['pre/evil.txt', 'f', 'evil']],
    error: /outside/,
  },
  {
    title: 'a pre-existing symlink at a file path is replaced, not written through',
    before: async (w, o) => fs.promises.symlink(path.join(o, 'victim.txt'), path.join(w, 'target.txt')),
    spec: () => [['target.txt', 'f', 'new content']],
  },
  { title: 'a symlink pointing outside is created as a link only (upstream behaviour)', spec: (o) => [['link', 'l', `${o}/victim.txt`]] },
];

const tarOnly: Case[] = [
  { title: 'a hard link to a file outside', spec: (o) => [['hl', 'h', `${o}/victim.txt`]], error: /absolute|not a file of this archive/ },
  { title: 'a hard link with ../', spec: () => [['hl', 'h', '../outside/victim.txt']], error: /"\.\."/ },
];

for (const kind of ['zip', 'tar'] as const) {
  for (const c of kind === 'tar' ? [...cases, ...tarOnly] : cases) {
    test(`${kind}: ${c.title}`, async () => {
      const tmp = await tempDir();
      try {
        const work = path.join(tmp, 'work');
        const outside = path.join(tmp, 'outside');
        await fs.promises.mkdir(work);
        await fs.promises.mkdir(outside);
        await fs.promises.writeFile(path.join(outside, 'victim.txt'), 'original');
        await c.before?.(work, outside);
        const file = path.join(tmp, 'evil.archive');
        const r = run('python3', ['-c', PY, kind, file], { input: JSON.stringify(c.spec(outside)) });
        assert.equal(r.status, 0, r.stderr);
        const outsideBefore = await listAll(outside);
        const tmpBefore = (await fs.promises.readdir(tmp)).sort();
        if (c.error) {
          await assert.rejects(extractArchive(file, work), (err: Error) => {
            assert.ok(err instanceof UnsafeEntryError, `UnsafeEntryError expected, got ${err.name}: ${err.message}`);
            assert.match(err.message, c.error!);
            return true;
          });
        } else {
          await extractArchive(file, work);
        }
        assert.deepEqual(await listAll(outside), outsideBefore, 'nothing new outside');
        assert.equal(await fs.promises.readFile(path.join(outside, 'victim.txt'), 'utf8'), 'original');
        assert.deepEqual((await fs.promises.readdir(tmp)).sort(), tmpBefore, 'nothing next to the working directory');
        if (!(kind === 'tar' && c.evilInsideOk)) assert.ok(!(await listAll(work)).some((p) => p.includes('evil')), 'no evil file in the working directory either');
      } finally {
        await rmrf(tmp);
      }
    });
  }
}

async function corruptCase(kind: 'zip' | 'tar', mutate: (buf: Buffer) => Buffer, expect: RegExp): Promise<void> {
  const tmp = await tempDir();
  try {
    const file = path.join(tmp, 'a.archive');
    const big = 'x'.repeat(10) + Array.from({ length: 400_000 }, (_, i) => String(i * 7919)).join(',');
    const r = run('python3', ['-c', PY, kind, file], { input: JSON.stringify([['small.txt', 'f', 'hello'], ['zbig.txt', 'f', big]]) });
    assert.equal(r.status, 0, r.stderr);
    await fs.promises.writeFile(file, mutate(await fs.promises.readFile(file)));
    const work = path.join(tmp, 'work');
    await assert.rejects(extractArchive(file, work), (err: Error) => {
      assert.ok(err instanceof CorruptArchiveError, `CorruptArchiveError expected, got ${err.name}: ${err.message}`);
      assert.match(err.message, expect);
      return true;
    });
    assert.ok(!fs.existsSync(path.join(work, 'zbig.txt')), 'no half-written file');
    const left = await listAll(work);
    assert.ok(left.every((p) => p === 'small.txt'), `only complete files left: ${left.join(',')}`);
  } finally {
    await rmrf(tmp);
  }
}

test('zip: a flipped byte in a large entry fails its CRC/decompression and leaves no file', () =>
  corruptCase('zip', (b) => {
    const i = b.indexOf('zbig.txt') + 200;
    b[i] ^= 0x55;
    return b;
  }, /zbig\.txt/));

test('zip: a truncated archive is refused', () => corruptCase('zip', (b) => b.subarray(0, Math.floor(b.length * 0.6)), /corrupt/));

test('tar.zst: a truncated archive fails and leaves no half-written file', () => corruptCase('tar', (b) => b.subarray(0, Math.floor(b.length * 0.8)), /truncated|corrupt/));

test('tar.zst: garbage in the middle is refused', () =>
  corruptCase('tar', (b) => {
    for (let i = Math.floor(b.length / 2); i < Math.floor(b.length / 2) + 64; i++) b[i] ^= 0xff;
    return b;
  }, /corrupt|truncated/));
