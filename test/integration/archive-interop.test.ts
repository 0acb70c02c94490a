/**
 * Interop with the reference tools, both ways: our archives read by unzip, Python's zipfile and
 * GNU tar + zstd; archives made by `zip -r -y`, `tar -I 'zstd -T0'` and Python's zipfile (forced
 * zip64) read by us. Trees are compared with `diff -r` plus modes and symlink targets.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createArchiveFile, extractArchive, selectFiles, verifyArchive } from '../../src/archive/index.ts';
import { diffR, makeSampleTree, rmrf, run, snapshot, tempDir } from '../fixtures/archive/tree.ts';

async function withTree(fn: (tmp: string, src: string) => Promise<void>): Promise<void> {
  const tmp = await tempDir();
  try {
    const src = path.join(tmp, 'src');
    await makeSampleTree(src);
    await fn(tmp, src);
  } finally {
    await rmrf(tmp);
  }
}

/** Same contents, modes, symlink targets (and file mtimes when `times`). */
/** Archives made by other tools pass the download verification (cache-extractor) before being extracted. */
async function verifiedExtract(file: string, dst: string): ReturnType<typeof extractArchive> {
  const checked = await verifyArchive(file);
  const res = await extractArchive(file, dst);
  assert.deepEqual(checked, res);
  return res;
}

async function assertSameTree(a: string, b: string, times = true): Promise<void> {
  assert.equal(diffR(a, b), '', 'diff -r');
  const sa = await snapshot(a, { dirTimes: false, times });
  const sb = await snapshot(b, { dirTimes: false, times });
  assert.deepEqual(sb, sa);
}

async function ours(src: string, file: string, format: 'zip' | 'zipzstd' | 'tarzstd', level: 'fastest' | 'fast' | 'default' = 'default'): Promise<void> {
  const sel = await selectFiles({ cwd: src, paths: ['.'] });
  await createArchiveFile(sel.entries, file, format, level);
}

const PY_EXTRACT_ZIP = `
import sys, zipfile, os, stat
zf = zipfile.ZipFile(sys.argv[1])
assert zf.testzip() is None
out = sys.argv[2]
dirs = []
for info in zf.infolist():
    mode = info.external_attr >> 16
    dest = os.path.join(out, info.filename)
    if stat.S_ISLNK(mode):
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        os.symlink(zf.read(info).decode(), dest)
    elif info.is_dir():
        os.makedirs(dest, exist_ok=True)
        dirs.append((dest, stat.S_IMODE(mode)))
    else:
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with open(dest, 'wb') as f:
            f.write(zf.read(info))
        os.chmod(dest, stat.S_IMODE(mode))
for d, m in reversed(dirs):
    os.chmod(d, m)
print(len(zf.infolist()))
`;

for (const level of ['fastest', 'default'] as const) {
  test(`our zip (${level}) is read by unzip: same tree, modes, symlinks, mtimes`, () =>
    withTree(async (tmp, src) => {
      const file = path.join(tmp, 'cache.zip');
      await ours(src, file, 'zip', level);
      assert.equal(run('unzip', ['-tq', file]).status, 0);
      const dst = path.join(tmp, 'dst');
      const r = run('unzip', ['-q', file, '-d', dst]);
      assert.equal(r.status, 0, r.stderr);
      await assertSameTree(src, dst);
    }));
}

test('our zip is read by Python zipfile (testzip CRCs, modes, symlinks)', () =>
  withTree(async (tmp, src) => {
    const file = path.join(tmp, 'cache.zip');
    await ours(src, file, 'zip');
    const dst = path.join(tmp, 'dst');
    const r = run('python3', ['-c', PY_EXTRACT_ZIP, file, dst]);
    assert.equal(r.status, 0, r.stderr);
    await assertSameTree(src, dst, false);
  }));

test('our zip with data descriptors and zip64 local fields is read by unzip and Python zipfile', () =>
  withTree(async (tmp, src) => {
    const sel = await selectFiles({ cwd: src, paths: ['.'] });
    const file = path.join(tmp, 'cache.zip');
    await createArchiveFile(sel.entries, file, 'zip', 'fast', { zip: { smallFileLimit: 0, zip64Threshold: 0 } });
    const dst = path.join(tmp, 'dst');
    assert.equal(run('unzip', ['-q', file, '-d', dst]).status, 0);
    await assertSameTree(src, dst);
    const dst2 = path.join(tmp, 'dst2');
    const r = run('python3', ['-c', PY_EXTRACT_ZIP, file, dst2]);
    assert.equal(r.status, 0, r.stderr);
    await assertSameTree(src, dst2, false);
  }));

test('our tar.zst is read by tar -I zstd -x', () =>
  withTree(async (tmp, src) => {
    const file = path.join(tmp, 'cache.zip');
    await ours(src, file, 'tarzstd');
    const dst = path.join(tmp, 'dst');
    await fs.promises.mkdir(dst);
    const r = run('tar', ['-I', 'zstd', '-xpf', file, '-C', dst]);
    assert.equal(r.status, 0, r.stderr);
    await assertSameTree(src, dst);
    const py = run('python3', ['-c', 'import sys,tarfile,subprocess; d=subprocess.run(["zstd","-dc",sys.argv[1]],capture_output=True,check=True).stdout; import io; t=tarfile.open(fileobj=io.BytesIO(d)); print(len(t.getmembers()))', file]);
    assert.equal(py.status, 0, py.stderr);
  }));

test('archives made by zip -r -y are read by us', () =>
  withTree(async (tmp, src) => {
    const file = path.join(tmp, 'ref.zip');
    const r = run('zip', ['-r', '-q', '-y', file, '.'], { cwd: src });
    assert.equal(r.status, 0, r.stderr);
    const dst = path.join(tmp, 'dst');
    await verifiedExtract(file, dst);
    await assertSameTree(src, dst);
  }));

test('archives made by zip -r -y -1 with streamed input (fdescriptors, -fz) are read by us', () =>
  withTree(async (tmp, src) => {
    const file = path.join(tmp, 'ref.zip');
    // `zip -fz` forces zip64 structures
    const r = run('zip', ['-r', '-q', '-y', '-1', '-fz', file, '.'], { cwd: src });
    assert.equal(r.status, 0, r.stderr);
    const dst = path.join(tmp, 'dst');
    await verifiedExtract(file, dst);
    await assertSameTree(src, dst);
  }));

for (const tarArgs of [['-I', 'zstd -T0'], ['-I', 'zstd -1 -T0 --no-check'], ['--format=gnu', '-I', 'zstd -T0'], ['--format=pax', '-I', 'zstd -T0']]) {
  test(`archives made by tar ${tarArgs.join(' ')} are read by us`, () =>
    withTree(async (tmp, src) => {
      const file = path.join(tmp, 'ref.tar.zst');
      const r = run('tar', ['-c', ...tarArgs, '-f', file, '.'], { cwd: src });
      assert.equal(r.status, 0, r.stderr);
      const dst = path.join(tmp, 'dst');
      const res = await verifiedExtract(file, dst);
      assert.equal(res.format, 'tarzstd');
      await assertSameTree(src, dst);
    }));
}

test('multi-frame zstd input (frames concatenated) is read by us', () =>
  withTree(async (tmp, src) => {
    const tarFile = path.join(tmp, 'ref.tar');
    assert.equal(run('tar', ['-cf', tarFile, '.'], { cwd: src }).status, 0);
    const buf = await fs.promises.readFile(tarFile);
    const half = Math.floor(buf.length / 2 / 512) * 512;
    await fs.promises.writeFile(path.join(tmp, 'a'), buf.subarray(0, half));
    await fs.promises.writeFile(path.join(tmp, 'b'), buf.subarray(half));
    assert.equal(run('zstd', ['-q', '-f', path.join(tmp, 'a'), path.join(tmp, 'b')]).status, 0);
    const file = path.join(tmp, 'multi.tar.zst');
    await fs.promises.writeFile(file, Buffer.concat([await fs.promises.readFile(path.join(tmp, 'a.zst')), await fs.promises.readFile(path.join(tmp, 'b.zst'))]));
    const dst = path.join(tmp, 'dst');
    await verifiedExtract(file, dst);
    await assertSameTree(src, dst);
  }));

test('Python zipfile archives (forced zip64, deflate + stored, streamed to a pipe) are read by us', () =>
  withTree(async (tmp, src) => {
    const py = `
import sys, os, zipfile, stat
src, out, streamed = sys.argv[1], sys.argv[2], sys.argv[3] == '1'
class Unseekable:
    def __init__(self, f): self.f = f
    def write(self, b): return self.f.write(b)
    def flush(self): self.f.flush()
raw = open(out, 'wb')
zf = zipfile.ZipFile(Unseekable(raw) if streamed else raw, 'w', zipfile.ZIP_DEFLATED)
for root, dirs, files in os.walk(src):
    dirs.sort()
    for name in sorted(dirs + files):
        p = os.path.join(root, name)
        rel = os.path.relpath(p, src)
        st = os.lstat(p)
        if stat.S_ISDIR(st.st_mode):
            zi = zipfile.ZipInfo(rel + '/')
            zi.external_attr = (st.st_mode & 0xFFFF) << 16 | 0x10
            zf.writestr(zi, b'')
            continue
        if os.path.isdir(p) and not os.path.islink(p):
            continue
        zi = zipfile.ZipInfo.from_file(p, rel) if not os.path.islink(p) else zipfile.ZipInfo(rel)
        zi.create_system = 3
        zi.external_attr = (st.st_mode & 0xFFFF) << 16
        zi.compress_type = zipfile.ZIP_STORED if name.endswith('.md') else zipfile.ZIP_DEFLATED
        data = os.readlink(p).encode() if os.path.islink(p) else open(p, 'rb').read()
        with zf.open(zi, 'w', force_zip64=True) as w:
            w.write(data)
zf.close()
`;
    for (const streamed of ['0', '1']) {
      const file = path.join(tmp, `py${streamed}.zip`);
      const r = run('python3', ['-c', py, src, file, streamed]);
      assert.equal(r.status, 0, r.stderr);
      const dst = path.join(tmp, `dst${streamed}`);
      await verifiedExtract(file, dst);
      await assertSameTree(src, dst, false);
    }
  }));
