/**
 * File owners (uid/gid) are restored on extraction, as GitLab Runner's helper does (tar.zst: every
 * header's uid/gid; zip: the Info-ZIP 0x7875 extra field), without ever changing anything outside
 * the working directory (src/archive/owners.ts). Archives come from real tools: GNU tar
 * (--owner/--group), Info-ZIP zip on a chowned tree, Python zipfile with a hand-built 0x7875 field,
 * and our own archiver. Every case runs with background writes (native writeFiles) on and off; the
 * streamed path is a 3 MiB file (native inflateFile for zip, or workers with
 * CACHEGATE_NATIVE_DEFLATE=0). Needs root (chown to other ids); the non-root case runs the
 * extractor as `nobody` with setpriv.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { createArchiveFile, extractArchive, selectFiles } from '../../src/archive/index.ts';
import { extractTarZstd } from '../../src/archive/tar-reader.ts';
import { rmrf, run, tempDir } from '../fixtures/archive/tree.ts';
import { buildArchive, paxData, tarEntry, writeTarZst } from '../fixtures/archive/evil.ts';

const root = process.geteuid?.() === 0;
const skip = root ? false : 'needs root (chown to other ids)';
const UID = 1234;
const GID = 5678;
const BIG = 3 << 20; // over the 1 MiB small-entry limit: the streaming path
/** `node -e script ARCHIVE DIR` extracts, in a process of its own (another user, another environment). */
const script = `import(${JSON.stringify(path.resolve(import.meta.dirname, '../../src/archive/index.ts'))}).then((m) => m.extractArchive(process.argv[1], process.argv[2]))`;

/** A tree with a file, a large file, nested directories and a symlink, chowned (not followed) to UID:GID. */
function makeTree(src: string, chown = true): void {
  fs.mkdirSync(path.join(src, 'd/sub'), { recursive: true });
  fs.mkdirSync(path.join(src, 'private'), { mode: 0o700 });
  fs.writeFileSync(path.join(src, 'top.txt'), 'top\n');
  fs.writeFileSync(path.join(src, 'd/a.txt'), 'a\n');
  fs.writeFileSync(path.join(src, 'd/sub/b.txt'), 'b\n');
  fs.writeFileSync(path.join(src, 'private/secret'), 's\n', { mode: 0o600 });
  fs.writeFileSync(path.join(src, 'big.bin'), Buffer.alloc(BIG, 'x'));
  fs.symlinkSync('a.txt', path.join(src, 'd/link'));
  if (chown) assert.equal(run('chown', ['-hR', `${UID}:${GID}`, src]).status, 0);
}

/** uid:gid of everything under `dir` (lstat, not followed), by relative name. */
function owners(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string): void => {
    for (const name of fs.readdirSync(path.join(dir, rel))) {
      const r = rel ? `${rel}/${name}` : name;
      const st = fs.lstatSync(path.join(dir, r));
      out[r] = `${st.uid}:${st.gid}`;
      if (st.isDirectory()) walk(r);
    }
  };
  walk('');
  return out;
}

function assertOwned(work: string, expected = `${UID}:${GID}`): void {
  const got = owners(work);
  assert.ok(Object.keys(got).length >= 8, `extracted: ${Object.keys(got).join(', ')}`);
  assert.deepEqual(got, Object.fromEntries(Object.keys(got).map((k) => [k, expected])));
  // the working directory itself is not the archive's: a `./` entry never changes its owner
  assert.equal(`${fs.lstatSync(work).uid}:${fs.lstatSync(work).gid}`, '0:0');
  // permission bits are still the archived ones after the chown
  assert.equal(fs.lstatSync(path.join(work, 'private')).mode & 0o7777, 0o700);
  assert.equal(fs.lstatSync(path.join(work, 'private/secret')).mode & 0o7777, 0o600);
}

const PY_ZIP_UX = `
import sys, zipfile, struct, stat, os
src, out, uid, gid = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
ux = struct.pack('<HHBBIBI', 0x7875, 11, 1, 4, uid, 4, gid)
with zipfile.ZipFile(out, 'w', zipfile.ZIP_DEFLATED) as zf:
    for dp, dns, fns in sorted(os.walk(src)):
        dns.sort()
        for n in sorted(dns) + sorted(fns):
            p = os.path.join(dp, n)
            rel = os.path.relpath(p, src)
            st = os.lstat(p)
            zi = zipfile.ZipInfo(rel + ('/' if stat.S_ISDIR(st.st_mode) else ''), (2024, 1, 15, 10, 30, 0))
            zi.create_system = 3
            zi.external_attr = st.st_mode << 16
            zi.extra = ux
            zf.writestr(zi, os.readlink(p) if stat.S_ISLNK(st.st_mode) else b'' if stat.S_ISDIR(st.st_mode) else open(p, 'rb').read())
`;

type Maker = (src: string, out: string) => void;
const makers: Record<string, { ext: string; chown: boolean; make: Maker }> = {
  'GNU tar --owner/--group (tar.zst)': {
    ext: 'tar.zst',
    chown: false,
    make: (src, out) => {
      const r = spawnSync('sh', ['-c', `tar --owner=${UID} --group=${GID} -C "$1" -cf - . | zstd -q -o "$2"`, 'sh', src, out]);
      assert.equal(r.status, 0, r.stderr.toString());
    },
  },
  'Info-ZIP zip (0x7875 from a chowned tree)': {
    ext: 'zip',
    chown: true,
    make: (src, out) => assert.equal(run('zip', ['-q', '-r', '-y', out, '.'], { cwd: src }).status, 0),
  },
  'Python zipfile with a hand-built 0x7875 field': {
    ext: 'zip',
    chown: false,
    make: (src, out) => {
      const r = run('python3', ['-c', PY_ZIP_UX, src, out, String(UID), String(GID)]);
      assert.equal(r.status, 0, r.stderr);
    },
  },
  'our archiver, zip (chowned tree)': {
    ext: 'zip',
    chown: true,
    make: () => {},
  },
  'our archiver, tar.zst (chowned tree)': {
    ext: 'tar.zst',
    chown: true,
    make: () => {},
  },
};

for (const [what, m] of Object.entries(makers)) {
  for (const batches of [true, false]) {
    test(`owners restored: ${what} (background writes ${batches ? 'on' : 'off'})`, { skip }, async () => {
      const tmp = await tempDir('owners-');
      try {
        const src = path.join(tmp, 'src');
        makeTree(src, m.chown);
        const archive = path.join(tmp, `a.${m.ext}`);
        if (what.startsWith('our archiver')) {
          const sel = await selectFiles({ cwd: src, paths: ['.'] });
          await createArchiveFile(sel.entries, archive, m.ext === 'zip' ? 'zip' : 'tarzstd', 'fast');
        } else m.make(src, archive);
        const work = path.join(tmp, 'work');
        await extractArchive(archive, work, batches ? {} : { writeBatches: { inFlight: 0 } });
        assertOwned(work);
      } finally {
        await rmrf(tmp);
      }
    });
  }
}

test('owners: CACHE_RESTORE_OWNERS=0 (restoreOwners: false) leaves the extracting user as owner', { skip }, async () => {
  const tmp = await tempDir('owners-');
  try {
    const src = path.join(tmp, 'src');
    makeTree(src);
    const archive = path.join(tmp, 'a.zip');
    await createArchiveFile((await selectFiles({ cwd: src, paths: ['.'] })).entries, archive, 'zip', 'fast');
    const work = path.join(tmp, 'work');
    await extractArchive(archive, work, { restoreOwners: false });
    assertOwned(work, '0:0');
    const env = { ...process.env, CACHE_RESTORE_OWNERS: '0' };
    const r = spawnSync(process.execPath, ['-e', script, archive, path.join(tmp, 'work2')], { env, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assertOwned(path.join(tmp, 'work2'), '0:0');
  } finally {
    await rmrf(tmp);
  }
});

test('owners: a hard link keeps the owner of the file it names, not its own header', { skip }, async () => {
  const tmp = await tempDir('owners-');
  try {
    const pax = (uid: number, gid: number): Buffer => paxData([['uid', String(uid)], ['gid', String(gid)]]);
    const tar = Buffer.concat([
      tarEntry({ name: 'PaxHeaders/a', type: 'x' }, pax(UID, GID)),
      tarEntry({ name: 'a', type: '0' }, Buffer.from('data')),
      tarEntry({ name: 'PaxHeaders/b', type: 'x' }, pax(4321, 8765)),
      tarEntry({ name: 'b', type: '1', linkname: 'a' }),
    ]);
    const archive = path.join(tmp, 'a.tar.zst');
    writeTarZst(archive, tar);
    for (const batches of [true, false]) {
      const work = path.join(tmp, `work-${batches}`);
      await extractTarZstd(archive, work, batches ? {} : { writeBatches: { inFlight: 0 } });
      const a = fs.lstatSync(path.join(work, 'a'));
      const b = fs.lstatSync(path.join(work, 'b'));
      assert.equal(a.ino, b.ino);
      assert.deepEqual([b.uid, b.gid], [UID, GID]);
    }
  } finally {
    await rmrf(tmp);
  }
});

test('owners: nothing outside the working directory changes owner (symlinks of the archive and of the tree)', { skip }, async () => {
  const tmp = await tempDir('owners-');
  try {
    const outside = path.join(tmp, 'outside');
    fs.mkdirSync(path.join(outside, 'dir'), { recursive: true });
    fs.writeFileSync(path.join(outside, 'victim'), 'v');
    const before = owners(outside);
    const work = path.join(tmp, 'work');
    fs.mkdirSync(path.join(work, 'inner'), { recursive: true });
    // symlinks already in the working directory (an earlier cache, the checkout): one out, one in
    fs.symlinkSync(path.join(outside, 'victim'), path.join(work, 'planted'));
    fs.symlinkSync('inner', path.join(work, 'in-tree'));
    const pax = paxData([['uid', String(UID)], ['gid', String(GID)]]);
    const entry = (h: Parameters<typeof tarEntry>[0], data?: Buffer): Buffer[] => [tarEntry({ name: `PaxHeaders/${h.name}`, type: 'x' }, pax), tarEntry(h, data)];
    for (const variant of ['link then file', 'file then link']) {
      const link = entry({ name: 'evil', type: '2', linkname: path.join(outside, 'victim') });
      const file = entry({ name: 'evil', type: '0' }, Buffer.from('mine'));
      const tar = Buffer.concat([
        ...(variant === 'link then file' ? [...link, ...file] : [...file, ...link]),
        ...entry({ name: 'up', type: '2', linkname: '../outside/dir' }),
        ...entry({ name: 'planted', type: '0' }, Buffer.from('replaces the planted link')),
        ...entry({ name: 'in-tree/', type: '5' }),
      ]);
      const archive = path.join(tmp, 'a.tar.zst');
      writeTarZst(archive, tar);
      await extractTarZstd(archive, work);
      assert.deepEqual(owners(outside), before, variant);
      assert.equal(fs.lstatSync(path.join(outside, 'victim')).uid, 0);
      assert.equal(fs.lstatSync(path.join(outside, 'dir')).uid, 0);
      // the links themselves carry the owner; what the tree's own link leads to is left alone
      assert.equal(fs.lstatSync(path.join(work, 'up')).uid, UID);
      assert.equal(fs.lstatSync(path.join(work, 'planted')).uid, UID);
      assert.equal(fs.lstatSync(path.join(work, 'inner')).uid, 0);
    }
  } finally {
    await rmrf(tmp);
  }
});

test('owners: an unprivileged extractor (nobody) succeeds and owns what it extracts', { skip: skip || (run('setpriv', ['--version']).status === 0 ? false : 'no setpriv') }, async () => {
  const tmp = await tempDir('owners-');
  try {
    fs.chmodSync(tmp, 0o755);
    const src = path.join(tmp, 'src');
    makeTree(src);
    for (const [format, ext] of [['zip', 'zip'], ['tarzstd', 'tar.zst']] as const) {
      const archive = path.join(tmp, `a.${ext}`);
      await createArchiveFile((await selectFiles({ cwd: src, paths: ['.'] })).entries, archive, format, 'fast');
      fs.chmodSync(archive, 0o644);
      for (const native of ['1', '0']) {
        const work = path.join(tmp, `work-${ext}-${native}`);
        fs.mkdirSync(work);
        fs.chownSync(work, 65534, 65534);
        const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', script, archive, work], {
          env: { ...process.env, CACHEGATE_NATIVE_DEFLATE: native },
          encoding: 'utf8',
        });
        assert.equal(r.status, 0, r.stderr);
        const got = owners(work);
        assert.equal(fs.readFileSync(path.join(work, 'd/sub/b.txt'), 'utf8'), 'b\n');
        assert.deepEqual(got, Object.fromEntries(Object.keys(got).map((k) => [k, '65534:65534'])), `${ext} native=${native}`);
      }
    }
  } finally {
    await rmrf(tmp);
  }
});
