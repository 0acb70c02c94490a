/**
 * `cache-archiver --server`: the helper asks cachegate for its upload URL after building the
 * archive, so MaxUploadedArchiveSize is enforced by the server with the real size (S3 on Ceph RGW):
 * 55 MB under a 50 MB limit is refused and nothing is stored; a small archive is uploaded. Also the
 * helperArgs flow's limits: no --path is an error, and an unsized URL takes any size (the case
 * --server exists for).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { cachegate } from '../support/cli.ts';
import { rgw, type Rgw } from '../support/rgw.ts';
import { presign, startTestService, type TestService } from '../support/service.ts';

const TOKEN = 'glrt-helper-server-01';
const LIMIT = 50_000_000;

describe('cache-archiver --server (S3 on RGW, MaxUploadedArchiveSize = 50 MB)', () => {
  let s3: Rgw;
  let bucket: string;
  let svc: TestService;
  let dir: string;
  const stored = async (key: string): Promise<number | undefined> => {
    try {
      return (await s3.client.send(new HeadObjectCommand({ Bucket: bucket, Key: `runner/helper-se/project/9/${key}` }))).ContentLength;
    } catch {
      return undefined;
    }
  };

  before(async () => {
    s3 = await rgw();
    bucket = await s3.bucket('helpersrv');
    svc = await startTestService({ toml: `[[runners]]\n  name = "r"\n  token = "${TOKEN}"\n  [runners.cache]\n    Type = "s3"\n    MaxUploadedArchiveSize = ${LIMIT}\n${s3.toml(bucket)}` });
    dir = await mkdtemp(join(tmpdir(), 'cachegate-helper-server-'));
    await mkdir(join(dir, 'big'));
    await writeFile(join(dir, 'big/blob.bin'), randomBytes(55_000_000)); // incompressible: a ~55 MB archive
    await mkdir(join(dir, 'small'));
    await writeFile(join(dir, 'small/a.txt'), 'small cache\n');
  });
  after(async () => {
    await svc?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const archiver = (key: string, path: string, extra: string[] = [], env: Record<string, string> = { CACHEGATE_RUNNER_TOKEN: TOKEN }) =>
    cachegate(['cache-archiver', '--file', `${key}.zip`, '--path', path, '--compression-level', 'fastest', '--server', svc.url, '--key', key, '--project', '9', ...extra], dir, env);

  it('55 MB under a 50 MB limit: refused by the server before any URL exists; exit 0, nothing stored, no "Uploading" line', async () => {
    const r = await archiver('big', 'big');
    assert.equal(r.status, 0, r.out);
    assert.match(r.out, /Cache archive size \(\d+\) is too big \(Limit is set to 50000000\)\. Cache will be stored only locally\./);
    assert.doesNotMatch(r.out, /Uploading/);
    assert.equal(await stored('big'), undefined);
  });

  it('a small archive: uploaded with the size signed (token from --token this time)', async () => {
    const r = await archiver('small', 'small', ['--token', TOKEN], {});
    assert.equal(r.status, 0, r.out);
    assert.match(r.out, /Created cache \(\d+ bytes, put\)/);
    const size = await stored('small');
    assert.ok(size !== undefined && size > 0, 'stored');
  });

  it('the URL it gets is bound to the stated size: the same URL with 55 MB is refused by RGW (403) and stores nothing', async () => {
    const up = await presign(svc, { operation: 'upload', key: 'sized', projectId: '9', contentLength: 1000 }, TOKEN);
    assert.equal(up.status, 200);
    const put = await fetch(up.json.url, { method: 'PUT', headers: { 'x-amz-meta-cachekey': 'sized' }, body: randomBytes(55_000_000) }).catch(() => undefined);
    assert.ok(put === undefined || put.status === 403, `status ${put?.status}`);
    assert.equal(await stored('sized'), undefined);
  });

  it('--server without a token or key says which is missing', async () => {
    const r = await cachegate(['cache-archiver', '--file', 'x.zip', '--path', 'small', '--server', svc.url, '--project', '9'], dir);
    assert.equal(r.status, 1);
    assert.match(r.out, /ERROR: --server needs --key, --token or CACHEGATE_RUNNER_TOKEN/);
  });

  it('an archiver run with no --path and no --untracked is an error (helperArgs as given), not "No files to cache."', async () => {
    const up = await presign(svc, { operation: 'upload', key: 'nopath', projectId: '9' }, TOKEN);
    const r = await cachegate(up.json.helperArgs, dir);
    assert.equal(r.status, 1, r.out);
    assert.match(r.out, /ERROR: nothing to archive: give the paths to cache with --path/);
    assert.equal(await stored('nopath'), undefined);
  });
});
