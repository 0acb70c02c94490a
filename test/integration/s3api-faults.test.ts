/**
 * The S3 front door when its backend fails: Ceph RGW behind a fault proxy (down, hanging, answering
 * 503). S3 clients get 503 ServiceUnavailable with Retry-After (which every S3 client backs off on),
 * as S3 XML; nothing stored is corrupted, and a PUT during the outage replaces nothing.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { startFaultProxy, type FaultMode, type FaultProxy } from '../support/fault-proxy.ts';
import { rgw } from '../support/rgw.ts';
import { raw } from '../support/s3api-suite.ts';
import { startTestService, type TestService } from '../support/service.ts';

const AK = 'FAULTSKEY0000001';
const SK = 'faults-secret-000001';
const KEY = 'runner/s3apifaul/project/1/k';

describe('S3 front door: backend outage (RGW behind a fault proxy)', () => {
  let svc: TestService;
  let proxy: FaultProxy;
  let s3: string;
  let c: S3Client;
  const data = randomBytes(300_000);

  before(async () => {
    const server = await rgw();
    const bucket = await server.bucket('s3apifault');
    const u = new URL(server.endpoint);
    proxy = await startFaultProxy({ target: { host: u.hostname, port: Number(u.port) } });
    svc = await startTestService({
      toml: `
[cachegate]
  backend_timeout = 3
[[runners]]
  name = "f"
  token = "glrt-s3apifaults-1"
  [runners.cache]
    Type = "s3"
${server.toml(bucket).replace(server.serverAddress, proxy.address)}
[cachegate.s3_api]
  listen = "127.0.0.1:0"
  [[cachegate.s3_api.keys]]
    access_key = "${AK}"
    secret_key = "${SK}"
    runner = "f"
`,
    });
    s3 = svc.s3ApiUrl as string;
    c = new S3Client({ endpoint: s3, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: AK, secretAccessKey: SK }, maxAttempts: 1, requestChecksumCalculation: 'WHEN_REQUIRED' });
    await c.send(new PutObjectCommand({ Bucket: 'runner-cache', Key: KEY, Body: data }));
  });
  after(async () => {
    await svc?.stop();
    await proxy?.close();
  });

  const presigned = (cmd: GetObjectCommand | HeadObjectCommand | PutObjectCommand) => getSignedUrl(c, cmd, { expiresIn: 600 });

  for (const mode of ['refuse', 'hang', 'http5xx'] as FaultMode[]) {
    it(`${mode}: GET and HEAD answer 503 ServiceUnavailable with Retry-After${mode === 'hang' ? '' : '; a PUT too, and it replaces nothing'}`, async () => {
      await proxy.setMode(mode);
      try {
        const get = await raw(await presigned(new GetObjectCommand({ Bucket: 'runner-cache', Key: KEY })), { method: 'GET' });
        assert.equal(get.status, 503, get.body);
        assert.match(get.body, /<Code>ServiceUnavailable<\/Code>/);
        assert.match(String(get.headers['retry-after']), /^\d+$/);
        const head = await raw(await presigned(new HeadObjectCommand({ Bucket: 'runner-cache', Key: KEY })), { method: 'HEAD' });
        assert.equal(head.status, 503);
        assert.ok(head.headers['retry-after']);
        if (mode !== 'hang') {
          const put = await raw(await presigned(new PutObjectCommand({ Bucket: 'runner-cache', Key: KEY })), { method: 'PUT', body: randomBytes(1000) });
          assert.equal(put.status, 503, put.body);
          assert.match(put.body, /<Code>ServiceUnavailable<\/Code>/);
        }
      } finally {
        await proxy.setMode('pass');
      }
      const back = await c.send(new GetObjectCommand({ Bucket: 'runner-cache', Key: KEY }));
      assert.ok(Buffer.from(await (back.Body as { transformToByteArray: () => Promise<Uint8Array> }).transformToByteArray()).equals(data), 'the stored object is intact');
    });
  }
});
