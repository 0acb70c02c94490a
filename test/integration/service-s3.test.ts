/** The service on S3 (Ceph RGW, real SigV4, STS and KMS), end to end over HTTP. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { rgw, type Rgw } from '../support/rgw.ts';
import { presign, startTestService, type TestService } from '../support/service.ts';

const TOKEN = 'glrt-s3service-0001';
const ROLE_TOKEN = 'glrt-s3service-role1';
const KMS_TOKEN = 'glrt-s3service-kms01';

describe('service on S3 (RGW)', () => {
  let server: Rgw;
  let svc: TestService;
  let bucket: string;

  before(async () => {
    server = await rgw();
    bucket = await server.bucket('svc');
    svc = await startTestService({
      toml: `
[[runners]]
  name = "plain"
  token = "${TOKEN}"
  [runners.cache]
    Type = "s3"
    MaxUploadedArchiveSize = 100000
${server.toml(bucket)}
[[runners]]
  name = "role"
  token = "${ROLE_TOKEN}"
  [runners.cache]
    Type = "s3"
${server.toml(bucket, `RoleARN = "${server.roleArn}"`)}
[[runners]]
  name = "kms"
  token = "${KMS_TOKEN}"
  [runners.cache]
    Type = "s3"
${server.toml(bucket, 'ServerSideEncryption = "KMS"', `ServerSideEncryptionKeyID = "${server.kmsKeyId}"`)}
`,
    });
  });
  after(async () => svc?.stop());

  it('presign upload → PUT by plain HTTP → presign download → GET: same bytes and x-amz-meta-cachekey', async () => {
    const data = randomBytes(64 * 1024);
    const up = await presign(svc, { operation: 'upload', key: 'job/main', projectId: '12', contentLength: data.length }, TOKEN);
    assert.equal(up.status, 200, JSON.stringify(up.json));
    assert.equal(up.json.objectName, 'runner/s3service/project/12/job/main');
    assert.match(up.json.url, /X-Amz-Signature=/);
    assert.equal(up.json.headers['x-amz-meta-cachekey'], 'job/main');
    const put = await fetch(up.json.url, { method: 'PUT', headers: up.json.headers, body: data });
    assert.equal(put.status, 200, await put.text());
    const down = await presign(svc, { operation: 'download', key: 'job/main', projectId: '12' }, TOKEN);
    const get = await fetch(down.json.url);
    assert.equal(get.status, 200);
    assert.equal(get.headers.get('x-amz-meta-cachekey'), 'job/main');
    assert.ok(Buffer.from(await get.arrayBuffer()).equals(data));
  });

  it('a stated size above MaxUploadedArchiveSize is refused before signing; another length than the signed one gets 403 from RGW', async () => {
    const big = await presign(svc, { operation: 'upload', key: 'big', projectId: '12', contentLength: 100001 }, TOKEN);
    assert.equal(big.status, 413);
    const up = await presign(svc, { operation: 'upload', key: 'sized', projectId: '12', contentLength: 1000 }, TOKEN);
    const put = await fetch(up.json.url, { method: 'PUT', headers: { 'x-amz-meta-cachekey': 'sized' }, body: randomBytes(1001) });
    assert.equal(put.status, 403);
  });

  it('KMS: the upload is encrypted with the configured key', async () => {
    const up = await presign(svc, { operation: 'upload', key: 'secret', projectId: '3' }, KMS_TOKEN);
    assert.equal(up.json.headers['x-amz-server-side-encryption'], 'aws:kms');
    assert.equal(up.json.headers['x-amz-server-side-encryption-aws-kms-key-id'], server.kmsKeyId);
    assert.equal((await fetch(up.json.url, { method: 'PUT', headers: up.json.headers, body: 'x' })).status, 200);
    const head = await presign(svc, { operation: 'head', key: 'secret', projectId: '3' }, KMS_TOKEN);
    const h = await fetch(head.json.url, { method: 'HEAD' });
    assert.equal(h.headers.get('x-amz-server-side-encryption'), 'aws:kms');
  });

  it('RoleARN: goCloudUrl, env and helperArgs come back, and AssumeRole is counted in /metrics', async () => {
    const up = await presign(svc, { operation: 'upload', key: 'multi', projectId: '5' }, ROLE_TOKEN);
    assert.equal(up.status, 200, JSON.stringify(up.json));
    assert.match(up.json.goCloudUrl, new RegExp(`^s3://${bucket}/runner/s3service/project/5/multi\\?`));
    assert.deepEqual(Object.keys(up.json.env).sort(), ['AWS_ACCESS_KEY_ID', 'AWS_PROFILE', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN']);
    assert.deepEqual(up.json.helperArgs.slice(0, 7), ['cache-archiver', '--file', 'cache.zip', '--gocloud-url', up.json.goCloudUrl, '--env-file', 'cache.env']);
    await presign(svc, { operation: 'upload', key: 'multi', projectId: '5' }, ROLE_TOKEN);
    const metrics = await (await fetch(`${svc.url}/metrics`)).text();
    assert.match(metrics, /cachegate_assume_role_total\{result="ok"\} 1\b/);
    assert.match(metrics, /cachegate_assume_role_total\{result="cached"\} [1-9]/);
    assert.match(metrics, /cachegate_presign_total\{operation="upload",backend="s3",result="ok",runner="role"\} [1-9]/);
    // No secret from the role or the configuration reaches a log line.
    const logs = svc.logs.join('\n');
    for (const secret of [server.secretKey, up.json.env.AWS_SECRET_ACCESS_KEY, up.json.env.AWS_SESSION_TOKEN, TOKEN, ROLE_TOKEN, 'X-Amz-Signature']) {
      assert.ok(!logs.includes(secret), `log leaks ${secret.slice(0, 6)}…`);
    }
  });

  it('proxy mode streams through the service to RGW', async () => {
    const data = randomBytes(50_000);
    const auth = { authorization: `Bearer ${TOKEN}` };
    assert.equal((await fetch(`${svc.url}/v1/cache/8/proxied`, { method: 'PUT', headers: auth, body: data })).status, 200);
    const get = await fetch(`${svc.url}/v1/cache/8/proxied`, { headers: { ...auth, range: 'bytes=1000-1999' } });
    assert.equal(get.status, 206);
    assert.ok(Buffer.from(await get.arrayBuffer()).equals(data.subarray(1000, 2000)));
    assert.equal((await fetch(`${svc.url}/v1/cache/8/absent`, { headers: auth })).status, 404);
    assert.equal((await fetch(`${svc.url}/readyz`)).status, 200);
  });

  it('a proxy upload the client cuts off is the client\'s fault: no 503, no error line, nothing stored', async () => {
    const { request } = await import('node:http');
    const url = new URL(`${svc.url}/v1/cache/8/cut-off`);
    const before = svc.logs.length;
    await new Promise<void>((resolve) => {
      const req = request(url, { method: 'PUT', headers: { authorization: `Bearer ${TOKEN}`, 'content-length': '90000' } });
      req.on('error', () => undefined);
      req.on('close', () => resolve());
      req.write(randomBytes(30_000), () => setTimeout(() => req.destroy(), 200));
    });
    await new Promise((r) => setTimeout(r, 500));
    const lines = svc.logs.slice(before).map((l) => JSON.parse(l) as { level: string; msg: string; status?: number; path?: string });
    assert.deepEqual(lines.filter((l) => l.level === 'error'), []);
    const access = lines.find((l) => l.msg === 'request' && l.path === '/v1/cache/8/cut-off');
    assert.ok(access && access.status !== 503, `access line: ${JSON.stringify(access)}`);
    assert.equal((await fetch(url, { method: 'HEAD', headers: { authorization: `Bearer ${TOKEN}` } })).status, 404);
  });
});
