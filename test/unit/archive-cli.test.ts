import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { main as archiver } from '../../src/cli/cache-archiver.ts';
import { main as extractor } from '../../src/cli/cache-extractor.ts';
import { makeSampleTree, rmrf, snapshot, tempDir } from '../fixtures/archive/tree.ts';

function capture(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') };
}

async function runArchiver(argv: string[], cwd: string, env: Record<string, string> = {}): Promise<{ code: number; out: string; err: string }> {
  const o = capture();
  const e = capture();
  const code = await archiver(argv, { cwd, env, stdout: o.stream, stderr: e.stream });
  return { code, out: o.text(), err: e.text() };
}

test('cache-archiver: no matching files → "No files to cache.", exit 0, no archive', async () => {
  const tmp = await tempDir();
  try {
    const r = await runArchiver(['--file', 'cache/cache.zip', '--path', 'nothing/**'], tmp);
    assert.equal(r.code, 0);
    assert.match(r.out, /^No files to cache\.$/m);
    assert.ok(!fs.existsSync(path.join(tmp, 'cache')));
  } finally {
    await rmrf(tmp);
  }
});

test('cache-archiver: Missing --file → exit 1', async () => {
  const r = await runArchiver(['--path', 'x'], '/');
  assert.equal(r.code, 1);
  assert.match(r.err, /Missing --file/);
});

for (const format of ['zip', 'zipzstd', 'tarzstd'] as const) {
  test(`cache-archiver + cache-extractor (${format}): archive, metadata.json, up-to-date check, extraction`, async () => {
    const tmp = await tempDir();
    try {
      const work = path.join(tmp, 'work');
      await makeSampleTree(work);
      const env = { CACHE_COMPRESSION_FORMAT: format, CACHE_COMPRESSION_LEVEL: 'bogus', CACHE_METADATA: '{"CacheKey":"my key","b":"2"}', DIRS: 'src' };
      const argv = ['--file', '../cache/cache.zip', '--path', '$DIRS', '--path', 'bin/**', '--path', 'data', '--exclude', 'data/random.bin'];
      const r = await runArchiver(argv, work, env);
      assert.equal(r.code, 0, r.err);
      assert.match(r.err, /compression level "bogus" is invalid, falling back to default/);
      assert.match(r.out, /No URL provided/);
      const file = path.join(tmp, 'cache/cache.zip');
      assert.equal(fs.readFileSync(path.join(tmp, 'cache/metadata.json'), 'utf8'), '{"b":"2","cachekey":"my key"}');
      const magic = fs.readFileSync(file).subarray(0, 4).toString('hex');
      assert.equal(magic, format === 'tarzstd' ? '28b52ffd' : '504b0304');
      const again = await runArchiver(argv, work, env);
      assert.match(again.out, /Archive is up to date!/);

      const dst = path.join(tmp, 'dst');
      fs.mkdirSync(dst);
      const o = capture();
      const e = capture();
      const code = await extractor(['--file', file], { cwd: dst, stdout: o.stream, stderr: e.stream });
      assert.equal(code, 0, e.text());
      const want = await snapshot(work);
      const got = await snapshot(dst);
      for (const name of Object.keys(want)) {
        const selected = name.startsWith('src') || name.startsWith('bin') || (name.startsWith('data') && name !== 'data/random.bin');
        if (selected) assert.deepEqual(got[name], want[name], name);
        else assert.equal(got[name], undefined, name);
      }
    } finally {
      await rmrf(tmp);
    }
  });
}

test('cache-extractor: a missing file and a malicious archive exit 1', async () => {
  const tmp = await tempDir();
  try {
    const e = capture();
    assert.equal(await extractor(['--file', 'nope.zip'], { cwd: tmp, stdout: new PassThrough(), stderr: e.stream }), 1);
    assert.match(e.text(), /does not exist/);
    // a zip with "../evil" built with our own writer
    const { createArchiveFile } = await import('../../src/archive/index.ts');
    const one = path.join(tmp, 'one');
    fs.writeFileSync(one, 'x');
    await createArchiveFile([{ name: '../evil', absPath: one, type: 'file', mode: 0o644, mtimeMs: Date.now(), size: 1, uid: 0, gid: 0 }], path.join(tmp, 'evil.zip'), 'zip', 'fast');
    const work = path.join(tmp, 'work');
    fs.mkdirSync(work);
    const e2 = capture();
    assert.equal(await extractor(['--file', '../evil.zip'], { cwd: work, stdout: new PassThrough(), stderr: e2.stream }), 1);
    assert.match(e2.text(), /refusing to extract/);
    assert.ok(!fs.existsSync(path.join(tmp, 'evil')));
  } finally {
    await rmrf(tmp);
  }
});

test('cache-archiver --alternate-file: the other name of the cache is renamed to --file and reused', async () => {
  const tmp = await tempDir();
  try {
    const work = path.join(tmp, 'work');
    await makeSampleTree(work);
    const argv = (file: string): string[] => ['--file', file, '--path', 'src'];
    // an archive under the hashed name, newer than every file: reusable as it is
    assert.equal((await runArchiver(argv('../cache/hashed/cache.zip'), work, { CACHE_METADATA: '{"cachekey":"k"}' })).code, 0);
    const hashed = path.join(tmp, 'cache/hashed/cache.zip');
    const bytes = fs.readFileSync(hashed);

    const r = await runArchiver([...argv('../cache/plain/cache.zip'), '--alternate-file', '../cache/hashed/cache.zip'], work);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^Renamed \.\.\/cache\/hashed\/cache\.zip to \.\.\/cache\/plain\/cache\.zip$/m);
    assert.match(r.out, /Archive is up to date!/, 'reused, not rebuilt');
    assert.ok(fs.readFileSync(path.join(tmp, 'cache/plain/cache.zip')).equals(bytes));
    assert.ok(!fs.existsSync(hashed));
    assert.equal(fs.readFileSync(path.join(tmp, 'cache/plain/metadata.json'), 'utf8'), '{"cachekey":"k"}', 'metadata.json moved along');
    assert.ok(!fs.existsSync(path.join(tmp, 'cache/hashed/metadata.json')));

    // --file exists: the alternate is left alone
    fs.mkdirSync(path.dirname(hashed), { recursive: true });
    fs.writeFileSync(hashed, 'other');
    const both = await runArchiver([...argv('../cache/plain/cache.zip'), '--alternate-file', '../cache/hashed/cache.zip'], work);
    assert.equal(both.code, 0, both.err);
    assert.doesNotMatch(both.out, /Renamed/);
    assert.equal(fs.readFileSync(hashed, 'utf8'), 'other');
    assert.ok(fs.readFileSync(path.join(tmp, 'cache/plain/cache.zip')).equals(bytes));

    // neither exists: built at --file as usual
    const fresh = await runArchiver([...argv('../cache/new/cache.zip'), '--alternate-file', '../cache/none/cache.zip'], work);
    assert.equal(fresh.code, 0, fresh.err);
    assert.doesNotMatch(fresh.out, /Renamed/);
    assert.match(fresh.out, /Created cache archive/);
    assert.ok(fs.existsSync(path.join(tmp, 'cache/new/cache.zip')));
  } finally {
    await rmrf(tmp);
  }
});

test('cache-archiver --alternate-file: a stale alternate is adopted, then rebuilt because files changed', async () => {
  const tmp = await tempDir();
  try {
    const work = path.join(tmp, 'work');
    await makeSampleTree(work);
    const alt = path.join(tmp, 'alt.zip');
    fs.writeFileSync(alt, 'stale');
    const old = new Date('2001-01-01T00:00:00Z');
    fs.utimesSync(alt, old, old);
    const r = await runArchiver(['--file', '../cache.zip', '--alternate-file', '../alt.zip', '--path', 'src'], work);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /Renamed \.\.\/alt\.zip to \.\.\/cache\.zip/);
    assert.match(r.out, /Created cache archive/);
    assert.equal(fs.readFileSync(path.join(tmp, 'cache.zip')).subarray(0, 4).toString('hex'), '504b0304');
    assert.ok(!fs.existsSync(alt));
  } finally {
    await rmrf(tmp);
  }
});

test('helper start-up: the compile cache goes to a 0700 directory of the user (off with CACHEGATE_COMPILE_CACHE=0; a group-writable one is not used)', async () => {
  const { spawnSync } = await import('node:child_process');
  const { compileCacheDir } = await import('../../src/cli/helper-startup.js');
  assert.equal(compileCacheDir({ XDG_CACHE_HOME: '/x/cache' }), '/x/cache/cachegate/compile-cache');
  assert.equal(compileCacheDir({ XDG_CACHE_HOME: 'relative' }), path.join(os.homedir(), '.cache/cachegate/compile-cache'));
  assert.equal(compileCacheDir({ CACHEGATE_COMPILE_CACHE: '0' }), undefined);
  const tmp = await tempDir();
  try {
    const bin = path.resolve(import.meta.dirname, '../../bin/cachegate.js');
    const run = (home: string, env: Record<string, string> = {}): void => {
      const r = spawnSync(process.execPath, [bin, 'cache-extractor', '--help'], { env: { PATH: process.env.PATH ?? '', HOME: home, ...env }, encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
    };
    const cache = (home: string): string => path.join(home, '.cache/cachegate/compile-cache');
    run(path.join(tmp, 'a'));
    assert.equal(fs.statSync(cache(path.join(tmp, 'a'))).mode & 0o777, 0o700);
    assert.ok(fs.readdirSync(cache(path.join(tmp, 'a'))).length > 0, 'entries written');
    run(path.join(tmp, 'b'), { CACHEGATE_COMPILE_CACHE: '0' });
    assert.ok(!fs.existsSync(cache(path.join(tmp, 'b'))));
    fs.mkdirSync(cache(path.join(tmp, 'c')), { recursive: true });
    fs.chmodSync(cache(path.join(tmp, 'c')), 0o777);
    run(path.join(tmp, 'c'));
    assert.deepEqual(fs.readdirSync(cache(path.join(tmp, 'c'))), [], 'a directory others can write to is not used');
  } finally {
    await rmrf(tmp);
  }
});
