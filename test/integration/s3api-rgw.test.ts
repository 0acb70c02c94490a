/** The S3 front door with Ceph RGW as the profile's backend (real clients; see test/support/s3api-suite.ts). */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { rgw, type Rgw } from '../support/rgw.ts';
import { frontDoorSuite } from '../support/s3api-suite.ts';
import { startTestService, type TestService } from '../support/service.ts';

frontDoorSuite('Ceph RGW as backend', async () => {
  const server = await rgw();
  const bucket = await server.bucket('s3api');
  return { cache: `    Type = "s3"\n${server.toml(bucket)}` };
});

describe('S3 front door: the profile\'s SSE-KMS applies to what RGW stores', () => {
  let server: Rgw;
  let svc: TestService;
  let bucket: string;
  before(async () => {
    server = await rgw();
    bucket = await server.bucket('s3apikms');
    svc = await startTestService({
      toml: `
[[runners]]
  name = "kms"
  token = "glrt-s3apikms-0001"
  [runners.cache]
    Type = "s3"
${server.toml(bucket, 'ServerSideEncryption = "KMS"', `ServerSideEncryptionKeyID = "${server.kmsKeyId}"`)}
[cachegate.s3_api]
  listen = "127.0.0.1:0"
  [[cachegate.s3_api.keys]]
    access_key = "KMSKEY0000000001"
    secret_key = "kms-front-door-secret"
    runner = "kms"
`,
    });
  });
  after(async () => svc?.stop());

  it('a PutObject through the front door is stored with aws:kms and the profile\'s key', async () => {
    const c = new S3Client({ endpoint: svc.s3ApiUrl, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'KMSKEY0000000001', secretAccessKey: 'kms-front-door-secret' }, maxAttempts: 1 });
    const key = 'runner/s3apikms-/project/1/encrypted';
    await c.send(new PutObjectCommand({ Bucket: 'runner-cache', Key: key, Body: randomBytes(10_000) }));
    const h = await server.client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    assert.equal(h.ServerSideEncryption, 'aws:kms');
    assert.match(String(h.SSEKMSKeyId), new RegExp(server.kmsKeyId));
  });
});
