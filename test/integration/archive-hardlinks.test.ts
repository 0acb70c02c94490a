/**
 * Hard links (issue 13): tar.zst stores a later name of a hard-linked file as a link entry (type 1)
 * naming the first, as GNU tar does; extraction restores tar hard links as hard links, inside the
 * working directory only. Checked with the real tools both ways (GNU tar + zstd, Python's tarfile),
 * hostile links (outside, absent, symlink, `..`, loops) and chains in every order. zip stores the
 * bytes of every name (no hard-link form that both our reader and GitLab's read).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { createArchiveFile, extractArchive, selectFiles, verifyArchive, UnsafeEntryError } from '../../src/archive/index.ts';
import { diffR, listAll, rmrf, run, tempDir } from '../fixtures/archive/tree.ts';
import { buildArchive, outsideSnapshot, type EvilEntry } from '../fixtures/archive/evil.ts';

const BIG = crypto.randomBytes(3 * 1024 * 1024 + 123); // streamed (over the 1 MiB read-ahead limit)

/** src/: a (3 names), big.bin (2 names, one in another directory), plain.txt (1 name), a symlink. */
async function linkedTree(src: string): Promise<void> {
  await fs.promises.mkdir(path.join(src, 'sub/deeper'), { recursive: true });
  await fs.promises.writeFile(path.join(src, 'a.txt'), 'shared content\n');
  await fs.promises.link(path.join(src, 'a.txt'), path.join(src, 'sub/b.txt'));
  await fs.promises.link(path.join(src, 'a.txt'), path.join(src, 'sub/deeper/c.txt'));
  await fs.promises.writeFile(path.join(src, 'big.bin'), BIG);
  await fs.promises.link(path.join(src, 'big.bin'), path.join(src, 'sub/big-again.bin'));
  await fs.promises.writeFile(path.join(src, 'plain.txt'), 'alone\n');
  await fs.promises.symlink('a.txt', path.join(src, 'sym'));
}

const ino = (p: string): number => fs.lstatSync(p).ino;

function assertLinked(root: string): void {
  assert.equal(ino(path.join(root, 'sub/b.txt')), ino(path.join(root, 'a.txt')), 'sub/b.txt is a.txt');
  assert.equal(ino(path.join(root, 'sub/deeper/c.txt')), ino(path.join(root, 'a.txt')), 'sub/deeper/c.txt is a.txt');
  assert.equal(ino(path.join(root, 'sub/big-again.bin')), ino(path.join(root, 'big.bin')), 'sub/big-again.bin is big.bin');
  assert.equal(fs.lstatSync(path.join(root, 'a.txt')).nlink, 3);
  assert.notEqual(ino(path.join(root, 'plain.txt')), ino(path.join(root, 'a.txt')));
  assert.equal(fs.readFileSync(path.join(root, 'sub/deeper/c.txt'), 'utf8'), 'shared content\n');
  assert.ok(fs.readFileSync(path.join(root, 'sub/big-again.bin')).equals(BIG));
  assert.equal(fs.readlinkSync(path.join(root, 'sym')), 'a.txt');
}

async function withDirs(fn: (tmp: string, src: string) => Promise<void>): Promise<void> {
  const tmp = await tempDir('cg-hardlinks-');
  try {
    const src = path.join(tmp, 'src');
    await linkedTree(src);
    await fn(tmp, src);
  } finally {
    await rmrf(tmp);
  }
}

async function ours(src: string, file: string, format: 'zip' | 'tarzstd'): Promise<void> {
  const sel = await selectFiles({ cwd: src, paths: ['.'] });
  await createArchiveFile(sel.entries, file, format, 'fast');
}

/** Type, link name and size of every member, as Python's tarfile reads them. */
function tarMembers(file: string): Record<string, { type: string; link: string; size: number }> {
  const py = `
import sys, tarfile, json
with tarfile.open(sys.argv[1], 'r:') as tf:
    print(json.dumps({m.name: {'type': m.type.decode(), 'link': m.linkname, 'size': m.size} for m in tf}))`;
  const tar = `${file}.tar`;
  assert.equal(run('zstd', ['-q', '-d', '-f', file, '-o', tar]).status, 0);
  const r = run('python3', ['-c', py, tar]);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as Record<string, { type: string; link: string; size: number }>;
}

test('ours, tar.zst: later names are link entries naming the first; GNU tar, Python tarfile and ours restore them as hard links', async () => {
  await withDirs(async (tmp, src) => {
    const file = path.join(tmp, 'cache.tar.zst');
    await ours(src, file, 'tarzstd');
    const m = tarMembers(file);
    assert.deepEqual(m['sub/b.txt'], { type: '1', link: 'a.txt', size: 0 });
    assert.deepEqual(m['sub/deeper/c.txt'], { type: '1', link: 'a.txt', size: 0 });
    assert.deepEqual(m['sub/big-again.bin'], { type: '1', link: 'big.bin', size: 0 });
    assert.deepEqual(m['a.txt'], { type: '0', link: '', size: 15 });
    assert.equal(m['big.bin'].size, BIG.length);
    assert.ok(fs.statSync(file).size < BIG.length * 1.1, 'the big file is stored once');

    const byUs = path.join(tmp, 'ours');
    await verifyArchive(file);
    await extractArchive(file, byUs);
    assertLinked(byUs);
    assert.equal(diffR(src, byUs), '');

    const byTar = path.join(tmp, 'gnu');
    fs.mkdirSync(byTar);
    const r = run('tar', ['-I', 'zstd', '-xf', file, '-C', byTar]);
    assert.equal(r.status, 0, r.stderr);
    assertLinked(byTar);

    const byPy = path.join(tmp, 'py');
    const py = `
import sys, tarfile
with tarfile.open(sys.argv[1], 'r:') as tf:
    kw = {'filter': 'data'} if hasattr(tarfile, 'data_filter') else {}
    tf.extractall(sys.argv[2], **kw)`;
    const p = run('python3', ['-c', py, `${file}.tar`, byPy]);
    assert.equal(p.status, 0, p.stderr);
    assertLinked(byPy);
  });
});

test('GNU tar -I zstd with hard links → ours restores them as hard links', async () => {
  await withDirs(async (tmp, src) => {
    const file = path.join(tmp, 'gnu.tar.zst');
    const r = run('tar', ['-I', 'zstd -T0', '-cf', file, '-C', src, '.']);
    assert.equal(r.status, 0, r.stderr);
    const types = tarMembers(file);
    assert.ok(Object.values(types).filter((t) => t.type === '1').length >= 3, 'GNU tar wrote link entries');
    const dst = path.join(tmp, 'dst');
    await verifyArchive(file);
    await extractArchive(file, dst);
    assertLinked(dst);
    assert.equal(diffR(src, dst), '');
  });
});

test('zip stores the bytes of every name; unzip and ours read them back as separate files with the same content', async () => {
  await withDirs(async (tmp, src) => {
    const file = path.join(tmp, 'cache.zip');
    await ours(src, file, 'zip');
    const list = run('unzip', ['-Z', '-l', file]);
    assert.equal(list.status, 0, list.stderr);
    assert.match(list.stdout, new RegExp(`${BIG.length}\\s.*big\\.bin`));
    assert.match(list.stdout, new RegExp(`${BIG.length}\\s.*sub/big-again\\.bin`));
    const dst = path.join(tmp, 'dst');
    await extractArchive(file, dst);
    assert.equal(diffR(src, dst), '');
    const un = path.join(tmp, 'un');
    assert.equal(run('unzip', ['-q', file, '-d', un]).status, 0);
    assert.equal(diffR(src, un), '');
  });
});

test('a first name that vanishes before it is written: the next name carries the bytes and later names link to it', async () => {
  await withDirs(async (tmp, src) => {
    const sel = await selectFiles({ cwd: src, paths: ['.'] });
    await fs.promises.unlink(path.join(src, 'a.txt')); // selected, then gone
    const file = path.join(tmp, 'cache.tar.zst');
    const warnings: string[] = [];
    await createArchiveFile(sel.entries, file, 'tarzstd', 'fast', { onWarning: (w) => warnings.push(w) });
    assert.ok(warnings.some((w) => w.includes('a.txt: file vanished')), warnings.join('\n'));
    const m = tarMembers(file);
    assert.equal(m['a.txt'], undefined);
    assert.deepEqual(m['sub/b.txt'], { type: '0', link: '', size: 15 });
    assert.deepEqual(m['sub/deeper/c.txt'], { type: '1', link: 'sub/b.txt', size: 0 });
    const dst = path.join(tmp, 'dst');
    await extractArchive(file, dst);
    assert.equal(ino(path.join(dst, 'sub/deeper/c.txt')), ino(path.join(dst, 'sub/b.txt')));
    assert.equal(fs.readFileSync(path.join(dst, 'sub/deeper/c.txt'), 'utf8'), 'shared content\n');
  });
});

const f = (name: string, data = name): EvilEntry => ({ name, kind: 'f', data });
const h = (name: string, target: string): EvilEntry => ({ name, kind: 'h', data: target });

interface Good {
  title: string;
  spec: EvilEntry[];
  /** Groups of names that must be one inode, and the content they hold. */
  same: Array<{ names: string[]; content: string }>;
}

const good: Good[] = [
  { title: 'inside', spec: [f('a'), h('d/b', 'a')], same: [{ names: ['a', 'd/b'], content: 'a' }] },
  { title: 'a chain: c → b → a', spec: [f('a'), h('b', 'a'), h('c', 'b')], same: [{ names: ['a', 'b', 'c'], content: 'a' }] },
  { title: 'a chain in reverse order: c → b, b → a, then a', spec: [h('c', 'b'), h('b', 'a'), f('a')], same: [{ names: ['a', 'b', 'c'], content: 'a' }] },
  { title: 'a link before its target', spec: [h('x/l', 'y/t'), f('y/t', 'T')], same: [{ names: ['x/l', 'y/t'], content: 'T' }] },
  { title: 'a later file entry of a link name replaces the link', spec: [f('a'), h('b', 'a'), f('b', 'B')], same: [{ names: ['a'], content: 'a' }, { names: ['b'], content: 'B' }] },
  { title: 'a later link entry of a file name replaces the file', spec: [f('a'), f('b', 'B'), h('b', 'a')], same: [{ names: ['a', 'b'], content: 'a' }] },
  { title: 'a ./ prefixed target (GNU tar -C dir .)', spec: [f('./a', 'a'), h('./b', './a')], same: [{ names: ['a', 'b'], content: 'a' }] },
];

for (const c of good) {
  test(`tar hard links restored: ${c.title}`, async () => {
    const tmp = await tempDir('cg-hardlinks-');
    try {
      const file = path.join(tmp, 'x.tar.zst');
      buildArchive('tar', file, c.spec);
      const work = path.join(tmp, 'work');
      await extractArchive(file, work);
      for (const g of c.same) {
        for (const n of g.names) {
          assert.equal(fs.readFileSync(path.join(work, n), 'utf8'), g.content, n);
          assert.equal(ino(path.join(work, n)), ino(path.join(work, g.names[0])), `${n} is ${g.names[0]}`);
          assert.equal(fs.lstatSync(path.join(work, n)).nlink, g.names.length, n);
        }
      }
    } finally {
      await rmrf(tmp);
    }
  });
}

interface Bad {
  title: string;
  spec: (outside: string) => EvilEntry[];
  before?: (work: string, outside: string) => void;
  error: RegExp;
}

const bad: Bad[] = [
  { title: 'target outside (absolute)', spec: (o) => [f('a'), h('hl', `${o}/victim.txt`)], error: /absolute/ },
  { title: 'target outside through ..', spec: () => [f('a'), h('hl', '../outside/victim.txt')], error: /"\.\."/ },
  { title: 'target inside through ..', spec: () => [f('d/a'), h('hl', 'd/../d/a')], error: /"\.\."/ },
  { title: 'name outside through ..', spec: () => [f('a'), h('../outside/new', 'a')], error: /"\.\."/ },
  { title: 'target absent', spec: () => [f('a'), h('hl', 'nothere')], error: /not a file of this archive/ },
  { title: 'target is a directory of the archive', spec: () => [{ name: 'dir', kind: 'd' }, h('hl', 'dir')], error: /not a file of this archive/ },
  { title: 'target is a symlink of the archive (pointing outside)', spec: (o) => [{ name: 's', kind: 'l', data: `${o}/victim.txt` }, h('hl', 's')], error: /not a file of this archive/ },
  { title: 'target behind a symlink of the archive', spec: (o) => [{ name: 's', kind: 'l', data: o }, h('hl', 's/victim.txt')], error: /symlink/ },
  {
    title: 'target is a file that was already in the working directory',
    before: (w) => fs.writeFileSync(path.join(w, 'old.txt'), 'old'),
    spec: () => [h('hl', 'old.txt')],
    error: /not a file of this archive/,
  },
  {
    title: 'target behind a symlink planted in the working directory',
    before: (w, o) => fs.symlinkSync(o, path.join(w, 'planted')),
    spec: () => [h('hl', 'planted/victim.txt')],
    error: /not a file of this archive/,
  },
  { title: 'a loop: a → b, b → a', spec: () => [h('a', 'b'), h('b', 'a')], error: /loop/ },
  { title: 'a link to itself', spec: () => [f('a'), h('a', 'a')], error: /loop/ },
  { title: 'a chain ending outside', spec: (o) => [h('c', 'b'), h('b', `${o}/victim.txt`)], error: /absolute/ },
];

for (const c of bad) {
  test(`tar hard link refused: ${c.title}`, async () => {
    const tmp = await tempDir('cg-hardlinks-');
    try {
      const work = path.join(tmp, 'work');
      const outside = path.join(tmp, 'outside');
      fs.mkdirSync(work);
      fs.mkdirSync(outside);
      fs.writeFileSync(path.join(outside, 'victim.txt'), 'original');
      c.before?.(work, outside);
      const file = path.join(tmp, 'evil.tar.zst');
      buildArchive('tar', file, c.spec(outside));
      const before = await outsideSnapshot(tmp, work);
      await assert.rejects(extractArchive(file, work), (err: Error) => {
        assert.ok(err instanceof UnsafeEntryError, `UnsafeEntryError expected, got ${err.name}: ${err.message}`);
        assert.match(err.message, c.error);
        return true;
      });
      assert.deepEqual(await outsideSnapshot(tmp, work), before, 'nothing outside the working directory changed');
      assert.equal(fs.statSync(path.join(outside, 'victim.txt')).nlink, 1, 'the victim gained no name');
      assert.ok(!(await listAll(work)).includes('hl'), 'no link left in the working directory');
    } finally {
      await rmrf(tmp);
    }
  });
}

test('cache-archiver --tar-hard-links false / CACHE_TAR_HARD_LINKS=false: every name carries its bytes (for GitLab\'s own extractor); a bad value is refused', async () => {
  const { main: archiver } = await import('../../src/cli/cache-archiver.ts');
  const { PassThrough } = await import('node:stream');
  await withDirs(async (tmp, src) => {
    const quiet = (): InstanceType<typeof PassThrough> => new PassThrough().resume();
    const make = (name: string, argv: string[], env: Record<string, string>) =>
      archiver(['--file', path.join(tmp, name), '--path', '.', '--compression-format', 'tarzstd', ...argv], { cwd: src, env, stdout: quiet(), stderr: quiet() });
    assert.equal(await make('default.tar.zst', [], {}), 0);
    assert.equal(await make('flag.tar.zst', ['--tar-hard-links', 'false'], {}), 0);
    assert.equal(await make('env.tar.zst', [], { CACHE_TAR_HARD_LINKS: 'false' }), 0);
    assert.equal(await make('bad.tar.zst', ['--tar-hard-links', 'maybe'], {}), 1);
    const linksIn = (f: string): string[] => Object.entries(tarMembers(path.join(tmp, f))).filter(([, m]) => m.type === '1').map(([n]) => n).sort();
    assert.deepEqual(linksIn('default.tar.zst'), ['./sub/big-again.bin', './sub/b.txt', './sub/deeper/c.txt'].map((n) => n.replace(/^\.\//, '')).sort());
    for (const f of ['flag.tar.zst', 'env.tar.zst']) {
      assert.deepEqual(linksIn(f), [], `${f}: no link entries`);
      const m = tarMembers(path.join(tmp, f));
      assert.equal(m['sub/big-again.bin']?.size, BIG.length, `${f}: the second name carries the bytes`);
    }
  });
});
