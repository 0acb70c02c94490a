/**
 * Backend answers classified the same way on every backend, through the service over HTTP, against
 * the real servers (Ceph RGW, Azurite, the verifying GCS XML endpoint, the local disk):
 *   a missing object → 404; a missing bucket/container or wrong/denied credentials → 502
 *   backend_error naming the setting to check, with an ERROR line; unreachable → 503 (faults.test.ts).
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BlobServiceClient, StorageSharedKeyCredential } from '@azure/storage-blob';
import { startAzurite, type Azurite } from '../support/azurite.ts';
import { makeServiceAccount } from '../support/gcs-iam.ts';
import { startGcsXmlServer, type GcsXmlServer } from '../support/gcs-xml-server.ts';
import { rgw, type Rgw } from '../support/rgw.ts';
import { presign, startTestService, type TestService } from '../support/service.ts';

const T = {
  s3: 'glrt-classify-s3-000001',
  nobucket: 'glrt-classify-nobucket1',
  badsecret: 'glrt-classify-badsecret',
  badrole: 'glrt-classify-badrole01',
  azure: 'glrt-classify-azure0001',
  nocontainer: 'glrt-classify-nocontain',
  azurekey: 'glrt-classify-azurekey1',
  gcs: 'glrt-classify-gcs000001',
  gcsnobucket: 'glrt-classify-gcsnobuck',
  gcswrongsa: 'glrt-classify-gcswrongs',
};
const WRONG_SECRET = 'wrong-secret-key-0123456789';

async function call(svc: TestService, method: string, path: string, token: string, body?: string): Promise<{ status: number; json: any; retryAfter: string | null }> {
  const res = await fetch(`${svc.url}${path}`, { method, headers: { authorization: `Bearer ${token}` }, ...(body !== undefined ? { body } : {}) });
  const text = await res.text();
  return { status: res.status, json: text === '' ? undefined : JSON.parse(text), retryAfter: res.headers.get('retry-after') };
}

describe('backend errors: 404 miss, 502 configuration fault naming the setting, on every backend', () => {
  let s3: Rgw;
  let azurite: Azurite;
  let gcs: GcsXmlServer;
  let svc: TestService;
  const sa = makeServiceAccount();
  const stranger = makeServiceAccount('not-known-to-the-bucket');

  before(async () => {
    s3 = await rgw();
    const bucket = await s3.bucket('classify');
    azurite = await startAzurite();
    const blob = new BlobServiceClient(azurite.serviceUrl, new StorageSharedKeyCredential(azurite.accountName, azurite.accountKey));
    await blob.getContainerClient('classify').create();
    gcs = await startGcsXmlServer({ keys: new Map([[sa.email, sa.publicKey]]), buckets: ['cache'] }); // not the stranger's key
    const runner = (name: string, token: string, cache: string): string => `[[runners]]\n  name = "${name}"\n  token = "${token}"\n  [runners.cache]\n${cache}`;
    const azureTable = (container: string, key: string): string =>
      `    Type = "azure"\n    [runners.cache.azure]\n      AccountName = "${azurite.accountName}"\n      AccountKey = "${key}"\n      ContainerName = "${container}"\n      ServiceURL = "${azurite.serviceUrl}"\n`;
    const gcsTable = (bucketName: string, file: string): string =>
      `    Type = "gcs"\n    [runners.cache.gcs]\n      CredentialsFile = "${file}"\n      BucketName = "${bucketName}"\n      Endpoint = "${gcs.endpoint}"\n`;
    svc = await startTestService({
      toml: [
        runner('s3', T.s3, `    Type = "s3"\n${s3.toml(bucket)}`),
        runner('nobucket', T.nobucket, `    Type = "s3"\n${s3.toml('no-such-bucket-classify')}`),
        runner('badsecret', T.badsecret, `    Type = "s3"\n${s3.toml(bucket).replace(s3.secretKey, WRONG_SECRET)}`),
        runner('badrole', T.badrole, `    Type = "s3"\n${s3.toml(bucket, `RoleARN = "${s3.roleArn}"`).replace(s3.secretKey, WRONG_SECRET)}`),
        runner('azure', T.azure, azureTable('classify', azurite.accountKey)),
        runner('nocontainer', T.nocontainer, azureTable('no-such-container', azurite.accountKey)),
        runner('azurekey', T.azurekey, azureTable('classify', Buffer.alloc(64, 7).toString('base64'))),
        runner('gcs', T.gcs, gcsTable('cache', sa.file)),
        runner('gcsnobucket', T.gcsnobucket, gcsTable('no-such-bucket', sa.file)),
        runner('gcswrongsa', T.gcswrongsa, gcsTable('cache', stranger.file)),
      ].join('\n'),
    });
  });
  after(async () => {
    await svc?.stop();
    await azurite?.stop();
    await gcs?.stop();
  });

  it('a missing object is a 404 miss on every backend (GET and HEAD)', async () => {
    for (const token of [T.s3, T.azure, T.gcs]) {
      assert.equal((await call(svc, 'GET', '/v1/cache/1/absent', token)).status, 404, token);
      assert.equal((await call(svc, 'HEAD', '/v1/cache/1/absent', token)).status, 404, token);
    }
  });

  const cases: Array<{ name: string; token: () => string; check: RegExp }> = [
    { name: 'S3 missing bucket', token: () => T.nobucket, check: /check BucketName \("no-such-bucket-classify" does not exist/ },
    { name: 'S3 wrong SecretKey', token: () => T.badsecret, check: /check (SecretKey|AccessKey\/SecretKey)/ },
    { name: 'Azure missing container', token: () => T.nocontainer, check: /check ContainerName \(container "no-such-container" does not exist/ },
    { name: 'Azure wrong AccountKey', token: () => T.azurekey, check: /check AccountKey/ },
    { name: 'GCS missing bucket', token: () => T.gcsnobucket, check: /check BucketName \(bucket "no-such-bucket" does not exist\)/ },
    { name: 'GCS service account the bucket does not know', token: () => T.gcswrongsa, check: /check that the service account/ },
  ];
  for (const c of cases) {
    it(`${c.name}: proxy PUT, GET and HEAD answer 502 backend_error naming the setting, with an ERROR line; nothing says retry`, async () => {
      const before = svc.logs.length;
      const put = await call(svc, 'PUT', '/v1/cache/1/classified', c.token(), 'data');
      const get = await call(svc, 'GET', '/v1/cache/1/classified', c.token());
      const head = await call(svc, 'HEAD', '/v1/cache/1/classified', c.token());
      for (const [what, r] of [['PUT', put], ['GET', get]] as const) {
        assert.equal(r.status, 502, `${what}: ${JSON.stringify(r.json)}`);
        assert.equal(r.json.error.code, 'backend_error');
        assert.match(r.json.error.message, c.check, what);
        assert.equal(r.retryAfter, null, `${what}: a configuration fault is not worth a retry`);
        assert.ok(!r.json.error.message.includes(WRONG_SECRET));
      }
      assert.equal(head.status, 502, 'HEAD: a missing bucket is not a miss');
      const errors = svc.logs.slice(before).filter((l) => l.includes('"level":"error"') && l.includes('backend_error'));
      assert.ok(errors.length >= 3 && errors.every((l) => c.check.test(JSON.parse(l).msg)), svc.logs.slice(before).join('\n'));
    });
  }

  it('S3 wrong SecretKey with RoleARN: presign upload answers 502 (STS refused), not 503', async () => {
    const r = await presign(svc, { operation: 'upload', key: 'k', projectId: '1' }, T.badrole);
    assert.equal(r.status, 502, JSON.stringify(r.json));
    assert.match(r.json.error.message, /AssumeRole .*check AccessKey\/SecretKey/);
  });

  it('/readyz names the setting to check for each failing profile', async () => {
    let body: any;
    for (let i = 0; i < 20; i++) {
      const res = await fetch(`${svc.url}/readyz`);
      body = await res.json();
      if (Object.keys(body.backends).length === 10 && body.backends.gcswrongsa !== undefined) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(body.status, 'unavailable');
    assert.equal(body.backends.s3, 'ok');
    assert.match(body.backends.badsecret, /check AccessKey\/SecretKey/);
    assert.match(body.backends.nobucket, /check BucketName/);
    assert.match(body.backends.nocontainer, /check ContainerName/);
    assert.match(body.backends.azurekey, /check AccountKey/);
    assert.match(body.backends.gcsnobucket, /check BucketName/);
  });

  it('local backend: a data directory it cannot use is a 502 naming data_dir', async () => {
    const local = await startTestService({ toml: '[[runners]]\nname = "l"\ntoken = "glrt-classify-local001"\n[runners.cache]\nType = "local"\n', env: { CACHEGATE_LOCAL_SIGNING_KEY: 'k'.repeat(32) } });
    try {
      await writeFile(join(local.dataDir, 'data'), 'not a directory');
      const put = await call(local, 'PUT', '/v1/cache/1/k', 'glrt-classify-local001', 'x');
      assert.equal(put.status, 502, JSON.stringify(put.json));
      assert.match(put.json.error.message, /check \[cachegate\] data_dir/);
      assert.equal((await call(local, 'GET', '/v1/cache/1/k', 'glrt-classify-local001')).status, 502);
    } finally {
      await local.stop();
    }
  });
});
