/**
 * Our helper against GitLab Runner's helper archive code (bench/gitlab-ref, built here from
 * Debian's Go packages): our zip (fast, default) and tar.zst extracted by GitLab's extractors, and
 * GitLab's archives (zip fastest/fast/default, tar.zst) extracted by ours, compared entry by entry
 * (type, content, mode, symlink target, mtime) on a small tree with hard links, symlinks (one
 * dangling), executables, read-only files, empty directories and unicode names. Both helpers run
 * as real processes, in a job directory, with `--path cache`.
 *
 * GitLab's tar.zst extractor turns a hard-link entry (type 1) into an empty file (Go's archive/tar
 * reports it as a regular file of size 0; docs/archive.md "Against GitLab Runner's helper"): shown
 * here, and that `--tar-hard-links false` archives restore in full with it. It also leaves the
 * mtime of a directory holding a symlink to chance (see withoutSymlinkParentTimes).
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { buildGitlabRef, missingGitlabRefPackages } from '../../bench/gitlab-ref/build.ts';
import { cachegate } from '../support/cli.ts';
import { makeSampleTree, rmrf, run, snapshot, tempDir, type Snap } from '../fixtures/archive/tree.ts';

const missing = missingGitlabRefPackages();
const skip = missing.length > 0 && !fs.existsSync('/usr/bin/apt-get') ? `Go reference not buildable here: missing ${missing.join(' ')} and no apt-get to install them` : false;

let ref = '';
let bin = '';
before(async () => {
  if (skip) return;
  // npm test runs scripts/install-deps.sh first, which installs the packages
  bin = await tempDir('cg-gitlab-ref-bin-');
  ref = buildGitlabRef(bin);
});
process.on('exit', () => {
  if (bin) fs.rmSync(bin, { recursive: true, force: true });
});

const BIG = crypto.randomBytes(3 * 1024 * 1024 + 17); // over our 1 MiB read-ahead: a streamed zip entry
const STAMP = new Date(Date.UTC(2024, 0, 15, 11, 0, 0));
/** Later names of hard-linked files, with their first name (archive order). */
const LINKS: Record<string, string> = {
  'cache/links/sub/b.txt': 'cache/links/a.txt',
  'cache/links/sub/deeper/c.txt': 'cache/links/a.txt',
  'cache/links/z-big-again.bin': 'cache/links/big.bin',
};

/** job/cache: the archive fixture's sample tree plus hard links; whole-second mtimes everywhere. */
async function jobTree(job: string): Promise<void> {
  const root = path.join(job, 'cache');
  await makeSampleTree(root);
  await fs.promises.mkdir(path.join(root, 'links/sub/deeper'), { recursive: true });
  await fs.promises.writeFile(path.join(root, 'links/a.txt'), 'shared content\n');
  await fs.promises.writeFile(path.join(root, 'links/big.bin'), BIG, { mode: 0o755 });
  for (const [later, first] of Object.entries(LINKS)) await fs.promises.link(path.join(job, first), path.join(job, later));
  for (const rel of ['links/a.txt', 'links/big.bin', 'links/sub/deeper', 'links/sub', 'links', '.']) await fs.promises.utimes(path.join(root, rel), STAMP, STAMP);
}

async function withJob(fn: (tmp: string, job: string) => Promise<void>): Promise<void> {
  const tmp = await tempDir('cg-gitlab-interop-');
  try {
    const job = path.join(tmp, 'job');
    await jobTree(job);
    await fn(tmp, job);
  } finally {
    await rmrf(tmp);
  }
}

async function ourArchive(job: string, file: string, format: 'zip' | 'tarzstd', level: string, extra: string[] = []): Promise<void> {
  const r = await cachegate(['cache-archiver', '--file', file, '--path', 'cache', ...extra], job, { CACHE_COMPRESSION_FORMAT: format, CACHE_COMPRESSION_LEVEL: level });
  assert.equal(r.status, 0, r.out);
}

async function ourExtract(file: string, dest: string): Promise<void> {
  await fs.promises.mkdir(dest, { recursive: true });
  const r = await cachegate(['cache-extractor', '--file', file], dest);
  assert.equal(r.status, 0, r.out);
}

function gitlab(...args: string[]): void {
  const r = run(ref, args);
  assert.equal(r.status, 0, `gitlab-ref ${args.join(' ')}: ${r.stderr}`);
}

async function assertSameTree(got: string, want: string): Promise<void> {
  assert.deepEqual(await snapshot(got), await snapshot(want));
}

/**
 * GitLab's tar.zst extractor creates the symlinks and sets the directories' mtimes in one loop over
 * a Go map, in random order: a directory whose mtime is set before a symlink is made in it keeps
 * the time of extraction. Those directories' mtimes are left out (set to 0) on both sides.
 */
function withoutSymlinkParentTimes(snap: Record<string, Snap>): Record<string, Snap> {
  const out = structuredClone(snap);
  for (const [rel, e] of Object.entries(snap)) {
    const parent = path.posix.dirname(rel);
    if (e.type === 'symlink' && parent !== '.') out[parent].mtime = 0;
  }
  return out;
}

/** A tree extracted by GitLab's tar.zst extractor against its source (see withoutSymlinkParentTimes). */
async function gitlabTarSnapshots(got: string, want: string): Promise<[Record<string, Snap>, Record<string, Snap>]> {
  return [withoutSymlinkParentTimes(await snapshot(got)), withoutSymlinkParentTimes(await snapshot(want))];
}

for (const level of ['fast', 'default']) {
  test(`our zip (${level}) extracted by GitLab's fastzip extractor: same entries, modes, symlinks, mtimes`, { skip }, async () => {
    await withJob(async (tmp, job) => {
      const file = path.join(tmp, 'cache.zip');
      await ourArchive(job, file, 'zip', level);
      const dest = path.join(tmp, 'x');
      gitlab('zip-extract', file, dest);
      await assertSameTree(path.join(dest, 'cache'), path.join(job, 'cache'));
    });
  });
}

test('our tar.zst with --tar-hard-links false extracted by GitLab\'s tarzstd extractor: restored in full', { skip }, async () => {
  await withJob(async (tmp, job) => {
    const file = path.join(tmp, 'cache.tar.zst');
    await ourArchive(job, file, 'tarzstd', 'fast', ['--tar-hard-links', 'false']);
    const dest = path.join(tmp, 'x');
    gitlab('tarzstd-extract', file, dest);
    const [got, want] = await gitlabTarSnapshots(path.join(dest, 'cache'), path.join(job, 'cache'));
    assert.deepEqual(got, want);
  });
});

test('our tar.zst with hard links (type 1) extracted by GitLab\'s tarzstd extractor: every later name is an EMPTY file, the rest is intact', { skip }, async () => {
  await withJob(async (tmp, job) => {
    const file = path.join(tmp, 'cache.tar.zst');
    await ourArchive(job, file, 'tarzstd', 'fast');
    const dest = path.join(tmp, 'x');
    gitlab('tarzstd-extract', file, dest);
    const [got, want] = await gitlabTarSnapshots(path.join(dest, 'cache'), path.join(job, 'cache'));
    const empty = crypto.createHash('sha256').digest('hex');
    const expected: Record<string, Snap> = { ...want };
    for (const later of Object.keys(LINKS)) {
      const rel = later.slice('cache/'.length);
      assert.notEqual(want[rel].hash, empty);
      expected[rel] = { ...want[rel], hash: empty };
    }
    assert.deepEqual(got, expected);
    for (const later of Object.keys(LINKS)) assert.equal(fs.statSync(path.join(dest, later)).nlink, 1, `${later}: not a link`);
    // our extractor restores the same archive as hard links
    const ours = path.join(tmp, 'ours');
    await ourExtract(file, ours);
    await assertSameTree(path.join(ours, 'cache'), path.join(job, 'cache'));
    for (const [later, first] of Object.entries(LINKS)) assert.equal(fs.statSync(path.join(ours, later)).ino, fs.statSync(path.join(ours, first)).ino, `${later} is ${first}`);
  });
});

for (const level of ['fastest', 'fast', 'default']) {
  test(`GitLab's zip (${level}) extracted by ours: same entries, modes, symlinks, mtimes`, { skip }, async () => {
    await withJob(async (tmp, job) => {
      const file = path.join(tmp, 'cache.zip');
      gitlab('zip-create', job, file, level, 'cache');
      const dest = path.join(tmp, 'x');
      await ourExtract(file, dest);
      await assertSameTree(path.join(dest, 'cache'), path.join(job, 'cache'));
    });
  });
}

test('GitLab\'s tar.zst (fast) extracted by ours: same entries, modes, symlinks, mtimes (hard-linked names carry their bytes)', { skip }, async () => {
  await withJob(async (tmp, job) => {
    const file = path.join(tmp, 'cache.tar.zst');
    gitlab('tarzstd-create', job, file, 'fast', 'cache');
    const listing = run('tar', ['-I', 'zstd', '-tvf', file]);
    assert.equal(listing.status, 0, listing.stderr);
    assert.doesNotMatch(listing.stdout, / link to /, 'GitLab\'s archiver writes no hard-link entries');
    const dest = path.join(tmp, 'x');
    await ourExtract(file, dest);
    await assertSameTree(path.join(dest, 'cache'), path.join(job, 'cache'));
  });
});

/** Method, flags and extra-field ids of every zip entry, as Python's zipfile reads them. */
function zipEntries(file: string): Record<string, { method: number; descriptor: boolean; extras: number[]; mode: number }> {
  const py = `
import sys, zipfile, json, struct
def ids(extra):
    out = []
    while len(extra) >= 4:
        i, n = struct.unpack('<HH', extra[:4]); out.append(i); extra = extra[4 + n:]
    return out
with zipfile.ZipFile(sys.argv[1]) as z:
    print(json.dumps({i.filename: {'method': i.compress_type, 'descriptor': bool(i.flag_bits & 8), 'extras': ids(i.extra), 'mode': i.external_attr >> 16} for i in z.infolist()}))`;
  const r = run('python3', ['-c', py, file]);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as Record<string, { method: number; descriptor: boolean; extras: number[]; mode: number }>;
}

test('the reference writes zip as fastzip does: Store at fastest, deflate otherwise (stored when it does not shrink), symlinks stored without a data descriptor, extras 0x5455 + 0x7875', { skip }, async () => {
  await withJob(async (tmp, job) => {
    for (const level of ['fastest', 'fast']) {
      const file = path.join(tmp, `${level}.zip`);
      gitlab('zip-create', job, file, level, 'cache');
      const e = zipEntries(file);
      // not sorted: directories and symlinks go in at once, files as their workers finish
      const compressible = e['cache/data/compressible.bin'];
      assert.equal(compressible.method, level === 'fastest' ? 0 : 8, `${level}: compressible.bin method`);
      assert.equal(compressible.descriptor, true);
      assert.equal(e['cache/data/random.bin'].method, 0, `${level}: random bytes stored`);
      const link = e['cache/src/readme-link'];
      assert.deepEqual([link.method, link.descriptor, link.mode & 0o170000], [0, false, 0o120000]);
      assert.equal(e['cache/bin/run.sh'].mode & 0o777, 0o755);
      assert.ok(e['cache/emptydir/nested/'], 'directories are entries ending in /');
      for (const [name, x] of Object.entries(e)) assert.deepEqual([...x.extras].sort((a, b) => a - b), [0x5455, 0x7875], `${name}: extras`);
    }
  });
});
