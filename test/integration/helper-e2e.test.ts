/**
 * Issue 5, end to end: a tree → `cachegate cache-archiver` (real process) → upload through the URL or
 * role credentials /v1/presign handed out → `cachegate cache-extractor` in a fresh directory →
 * identical tree (diff -r, modes, symlinks). On the local backend and on S3 (RGW), incl. RoleARN
 * multipart.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, lstat, mkdir, mkdtemp, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { formatEnvFile } from '../../src/transfer/index.ts';
import { cachegate } from '../support/cli.ts';
import { rgw } from '../support/rgw.ts';
import { presign, startTestService, type TestService } from '../support/service.ts';

const TOKEN = 'glrt-helper-e2e-01';
const ROLE_TOKEN = 'glrt-helper-e2e-role';
const S3_TOKEN = 'glrt-helper-e2e-s3';

async function makeTree(root: string): Promise<void> {
  await mkdir(join(root, 'build/deep/er'), { recursive: true });
  await mkdir(join(root, 'vendor'), { recursive: true });
  for (let i = 0; i < 50; i++) await writeFile(join(root, 'build', `f${i}.txt`), `file ${i}\n`.repeat(i + 1));
  await writeFile(join(root, 'build/deep/er/blob.bin'), randomBytes(3 * 1024 * 1024 + 17));
  await writeFile(join(root, 'build/run.sh'), '#!/bin/sh\necho hi\n');
  await chmod(join(root, 'build/run.sh'), 0o755);
  await symlink('deep/er/blob.bin', join(root, 'build/link'));
  await writeFile(join(root, 'vendor/ünïcode name.txt'), 'ü');
  await writeFile(join(root, 'not-cached.txt'), 'left out');
}

async function assertSameTree(a: string, b: string): Promise<void> {
  for (const dir of ['build', 'vendor']) {
    const d = spawnSync('diff', ['-r', '--no-dereference', join(a, dir), join(b, dir)], { encoding: 'utf8' });
    assert.equal(d.status, 0, d.stdout + d.stderr);
  }
  assert.equal(((await lstat(join(b, 'build/run.sh'))).mode & 0o777).toString(8), '755');
  assert.ok((await lstat(join(b, 'build/link'))).isSymbolicLink());
  assert.equal(await readlink(join(b, 'build/link')), 'deep/er/blob.bin');
  await assert.rejects(lstat(join(b, 'not-cached.txt')));
}

describe('helper end to end through the service', () => {
  let work: string;
  let src: string;
  let svc: TestService;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'cachegate-e2e-'));
    src = join(work, 'src');
    await mkdir(src);
    await makeTree(src);
    const server = await rgw();
    const bucket = await server.bucket('e2e');
    svc = await startTestService({
      toml: `
[[runners]]
  name = "local"
  token = "${TOKEN}"
  [runners.cache]
    Type = "local"
[[runners]]
  name = "s3"
  token = "${S3_TOKEN}"
  [runners.cache]
    Type = "s3"
${server.toml(bucket)}
[[runners]]
  name = "role"
  token = "${ROLE_TOKEN}"
  [runners.cache]
    Type = "s3"
${server.toml(bucket, `RoleARN = "${server.roleArn}"`)}`,
    });
  });
  after(async () => {
    await svc?.stop();
    await rm(work, { recursive: true, force: true });
  });

  const cases: Array<{ name: string; token: string; format: string }> = [
    { name: 'local backend, zip', token: TOKEN, format: 'zip' },
    { name: 'local backend, tar.zst', token: TOKEN, format: 'tarzstd' },
    { name: 'S3 on RGW, presigned URLs, zipzstd', token: S3_TOKEN, format: 'zipzstd' },
    { name: 'S3 on RGW, RoleARN multipart (goCloud URL + env file)', token: ROLE_TOKEN, format: 'zip' },
  ];
  for (const [i, c] of cases.entries()) {
    it(c.name, async () => {
      const key = `e2e-${i}`;
      await rm(join(src, 'cache.zip'), { force: true }); // else the unchanged-tree check keeps the previous format's archive
      const up = await presign(svc, { operation: 'upload', key, projectId: '42' }, c.token);
      assert.equal(up.status, 200, JSON.stringify(up.json));
      const args: string[] = [...up.json.helperArgs, '--path', 'build', '--path', 'vendor/**', '--chunk-size', String(1024 * 1024), '--compression-format', c.format];
      if (up.json.env) await writeFile(join(src, 'cache.env'), formatEnvFile(up.json.env));
      const archived = await cachegate(args, src);
      assert.equal(archived.status, 0, archived.out);

      const dst = join(work, `dst-${i}`);
      await mkdir(dst);
      const down = await presign(svc, { operation: 'download', key, projectId: '42' }, c.token);
      if (down.json.env) await writeFile(join(dst, 'cache.env'), formatEnvFile(down.json.env));
      const extracted = await cachegate([...down.json.helperArgs, '--chunk-size', String(1024 * 1024)], dst);
      assert.equal(extracted.status, 0, extracted.out);
      await assertSameTree(src, dst);
    });
  }

  it('a download of a key never uploaded exits 1, so the next fallback key runs', async () => {
    const dst = join(work, 'miss');
    await mkdir(dst);
    const down = await presign(svc, { operation: 'download', key: 'never', projectId: '42' }, TOKEN);
    const r = await cachegate(down.json.helperArgs, dst);
    assert.equal(r.status, 1, r.out);
  });

  it('an archive over MaxUploadedArchiveSize is kept locally and not uploaded (exit 0, upstream message)', async () => {
    const up = await presign(svc, { operation: 'upload', key: 'too-big', projectId: '42' }, TOKEN);
    const r = await cachegate([...up.json.helperArgs, '--path', 'build', '--max-uploaded-archive-size', '1000'], src);
    assert.equal(r.status, 0, r.out);
    assert.match(r.out, /Cache archive size \(\d+\) is too big \(Limit is set to 1000\)\. Cache will be stored only locally\./);
    assert.doesNotMatch(r.out, /Uploading/, 'no "Uploading" line before a size refusal');
    const down = await presign(svc, { operation: 'download', key: 'too-big', projectId: '42' }, TOKEN);
    assert.equal((await fetch(down.json.url)).status, 404);
  });
});
