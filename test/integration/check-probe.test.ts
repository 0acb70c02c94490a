/** `cachegate check --probe` against Ceph RGW: a real process, a good profile and two broken ones. */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { cachegate } from '../support/cli.ts';
import { rgw, type Rgw } from '../support/rgw.ts';

describe('cachegate check --probe (RGW)', () => {
  let s3: Rgw;
  let bucket: string;
  let dir: string;
  const runner = (name: string, cache: string): string => `[[runners]]\n  name = "${name}"\n  token = "glrt-probe-${name}-0000"\n  [runners.cache]\n    Type = "s3"\n    Path = "ci"\n${cache}`;

  before(async () => {
    s3 = await rgw();
    bucket = await s3.bucket('probe');
    dir = await mkdtemp(join(tmpdir(), 'cachegate-probe-'));
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  it('a working profile (with RoleARN): every step ok, exit 0, the probe object written under Path and deleted again', async () => {
    const cfg = join(dir, 'good.toml');
    await writeFile(cfg, runner('good', s3.toml(bucket, `RoleARN = "${s3.roleArn}"`)));
    const r = await cachegate(['check', '--config', cfg, '--probe'], dir);
    assert.equal(r.status, 0, r.out);
    for (const step of ['ready', 'PUT ci/.cachegate/probe', 'HEAD ci/.cachegate/probe', 'GET ci/.cachegate/probe', 'presigned GET', 'AssumeRole', 'DELETE ci/.cachegate/probe']) {
      assert.match(r.out, new RegExp(`^  ok   ${step.replace(/[./]/g, '\\$&')}: `, 'm'), `${step}:\n${r.out}`);
    }
    assert.match(r.out, /DELETE ci\/\.cachegate\/probe: deleted/);
    await assert.rejects(s3.client.send(new GetObjectCommand({ Bucket: bucket, Key: 'ci/.cachegate/probe' })), (err: Error) => err.name === 'NoSuchKey');
  });

  it('a wrong SecretKey and a missing bucket: check alone is clean, --probe fails each at its first step naming the setting, exit 1', async () => {
    const cfg = join(dir, 'bad.toml');
    await writeFile(cfg, [
      runner('badsecret', s3.toml(bucket).replace(s3.secretKey, 'not-the-secret-key-000')),
      runner('nobucket', s3.toml('no-such-bucket-probe')),
    ].join('\n'));
    const plain = await cachegate(['check', '--config', cfg], dir);
    assert.equal(plain.status, 0, 'nothing a static check can see');
    const r = await cachegate(['check', '--config', cfg, '--probe'], dir);
    assert.equal(r.status, 1, r.out);
    assert.match(r.out, /probe s3 \(badsecret\):\n  FAIL ready: 502 backend_error: .*check AccessKey\/SecretKey/);
    assert.match(r.out, /probe s3 \(nobucket\):\n  FAIL ready: 502 backend_error: .*check BucketName/);
    assert.ok(!r.out.includes('not-the-secret-key-000'), 'no secret in the report');
  });
});
