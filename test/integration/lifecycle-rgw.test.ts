/**
 * `cachegate lifecycle`: the S3 rule it prints is applied with the command it prints (the real aws
 * CLI) to a real S3 (Ceph RGW) and read back; the GCS and Azure documents have the documented shape.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { GetBucketLifecycleConfigurationCommand } from '@aws-sdk/client-s3';
import { rgw, type Rgw } from '../support/rgw.ts';

const BIN = resolve(import.meta.dirname, '../../bin/cachegate.js');

describe('cachegate lifecycle', () => {
  let dir: string;
  let s3: Rgw;
  let bucket: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cachegate-lifecycle-'));
    s3 = await rgw();
    bucket = await s3.bucket('lc');
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  const cli = (args: string[]) => spawnSync(process.execPath, [BIN, 'lifecycle', ...args], { encoding: 'utf8', cwd: dir, env: { PATH: process.env.PATH ?? '' } });

  it('S3: the printed aws command installs the printed rule on RGW, and it reads back the same', async () => {
    const conf = join(dir, 'config.toml');
    await writeFile(conf, `[cachegate.retention]\nmax_size = 100000000\nmax_age = 604800\n[[runners]]\nname = "ci"\ntoken = "glrt-lifecycle12345"\n[runners.cache]\nType = "s3"\nPath = "caches"\n${s3.toml(bucket)}` +
      `[[runners]]\nname = "other"\ntoken = "glrt-zzzzzzzzzzzz"\n[runners.cache]\nType = "gcs"\n[runners.cache.gcs]\nBucketName = "g"\n`);
    const r = cli(['--config', conf, '--runner', 'ci', '--json']);
    assert.equal(r.status, 0, r.stderr);
    const [out] = JSON.parse(r.stdout);
    assert.equal(out.prefix, 'caches/runner/lifecycle/');
    assert.match(out.command, new RegExp(`^aws s3api put-bucket-lifecycle-configuration --endpoint-url ${s3.endpoint} --bucket ${bucket} --lifecycle-configuration file://`));
    await writeFile(join(dir, out.file), out.document);
    const aws = spawnSync('bash', ['-c', out.command], {
      cwd: dir, encoding: 'utf8',
      // Debian's AWS CLI v2 first (scripts/install-deps.sh): a pyenv `aws` on PATH may be the v1 CLI.
      env: { PATH: `/usr/bin:${process.env.PATH ?? ''}`, HOME: dir, AWS_ACCESS_KEY_ID: s3.accessKey, AWS_SECRET_ACCESS_KEY: s3.secretKey, AWS_DEFAULT_REGION: s3.region },
    });
    assert.equal(aws.status, 0, `${aws.stdout}\n${aws.stderr}`);
    const got = await s3.client.send(new GetBucketLifecycleConfigurationCommand({ Bucket: bucket }));
    assert.equal(got.Rules?.length, 1);
    const rule = got.Rules![0];
    assert.equal(rule.ID, 'cachegate-ci');
    assert.equal(rule.Status, 'Enabled');
    assert.equal(rule.Filter?.Prefix, 'caches/runner/lifecycle/');
    assert.equal(rule.Expiration?.Days, 7, 'max_age 604800 s = 7 days');
    assert.equal(rule.AbortIncompleteMultipartUpload?.DaysAfterInitiation, 1);
    assert.match(out.xml, /<Filter><Prefix>caches\/runner\/lifecycle\/<\/Prefix><\/Filter>/);
  });

  it('GCS and Azure documents; --days; errors for an unknown runner and no cloud profile', async () => {
    const conf = join(dir, 'clouds.toml');
    await writeFile(conf, `[[runners]]\nname = "g"\ntoken = "glrt-gggggggggggg"\n[runners.cache]\nType = "gcs"\nShared = true\nPath = "p"\n[runners.cache.gcs]\nBucketName = "gb"\n` +
      `[[runners]]\nname = "a"\ntoken = "glrt-aaaaaaaaaaaa"\n[runners.cache]\nType = "azure"\n[runners.cache.azure]\nAccountName = "acct"\nContainerName = "cont"\nAccountKey = "a2V5"\n`);
    const r = cli(['--config', conf, '--days', '3', '--json']);
    assert.equal(r.status, 0, r.stderr);
    const [g, a] = JSON.parse(r.stdout);
    assert.deepEqual(JSON.parse(g.document), { lifecycle: { rule: [
      { action: { type: 'Delete' }, condition: { age: 3, matchesPrefix: ['p/'] } },
      { action: { type: 'AbortIncompleteMultipartUpload' }, condition: { age: 1, matchesPrefix: ['p/'] } },
    ] } });
    assert.equal(g.command, `gcloud storage buckets update gs://gb --lifecycle-file=${g.file}`);
    const policy = JSON.parse(a.document);
    assert.deepEqual(policy.rules[0].definition, { actions: { baseBlob: { delete: { daysAfterModificationGreaterThan: 3 } } }, filters: { blobTypes: ['blockBlob'], prefixMatch: ['cont/runner/aaaaaaaaa/'] } });
    assert.match(a.command, /^az storage account management-policy create --account-name acct --resource-group <RESOURCE_GROUP> --policy @policy-a\.json$/);
    const text = cli(['--config', conf, '--runner', 'g']);
    assert.match(text.stdout, /# apply with:\ngcloud storage buckets update gs:\/\/gb/);
    assert.equal(cli(['--config', conf, '--runner', 'nobody']).status, 1);
    assert.equal(cli(['--config', conf, '--days', '0']).status, 2);
    const local = join(dir, 'local.toml');
    await writeFile(local, '[[runners]]\nname = "l"\n[runners.cache]\nType = "local"\n');
    const none = cli(['--config', local]);
    assert.equal(none.status, 1);
    assert.match(none.stderr, /no cloud profile/);
  });
});
