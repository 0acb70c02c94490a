/**
 * src/transfer against Ceph RGW through the service: presigned PUT and ranged parallel GET (real
 * SigV4), and the RoleARN path: env file written and read back, multipart upload through the goCloud
 * URL with the scoped credentials, ranged download with them, same bytes.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { download, readEnvFile, upload, writeEnvFile } from '../../src/transfer/index.ts';
import { rgw, type Rgw } from '../support/rgw.ts';
import { presign, startTestService, type TestService } from '../support/service.ts';

const TOKEN = 'glrt-transfer-s3-plain';
const ROLE_TOKEN = 'glrt-transfer-s3-role1';
const MiB = 1024 * 1024;

describe('transfer ↔ RGW', () => {
  let server: Rgw;
  let svc: TestService;
  let bucket: string;
  let dir: string;

  before(async () => {
    server = await rgw();
    bucket = await server.bucket('xfer');
    dir = await mkdtemp(join(tmpdir(), 'cg-xfer-rgw-'));
    svc = await startTestService({
      toml: `
[[runners]]
  name = "plain"
  token = "${TOKEN}"
  [runners.cache]
    Type = "s3"
${server.toml(bucket)}
[[runners]]
  name = "role"
  token = "${ROLE_TOKEN}"
  [runners.cache]
    Type = "s3"
${server.toml(bucket, `RoleARN = "${server.roleArn}"`)}
`,
    });
  });
  after(async () => {
    await svc?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('presigned PUT (signed length + metadata), ranged parallel GET, metadata.json, mtime', async () => {
    const data = randomBytes(3 * MiB + 17);
    const file = join(dir, 'plain.zip');
    await writeFile(file, data);
    const up = await presign(svc, { operation: 'upload', key: 'job/main', projectId: '4', contentLength: data.length }, TOKEN);
    assert.equal(up.status, 200, JSON.stringify(up.json));
    assert.equal((await upload({ file, url: up.json.url, headers: up.json.headers })).status, 'uploaded');

    const down = await presign(svc, { operation: 'download', key: 'job/main', projectId: '4' }, TOKEN);
    const out = join(dir, 'plain', 'cache.zip');
    const r = await download({ file: out, url: down.json.url, chunkSize: 512 * 1024, concurrency: 4 });
    assert.ok(r.status === 'downloaded' && r.ranged && r.parts === 7, JSON.stringify(r));
    assert.ok((await readFile(out)).equals(data));
    assert.equal(await readFile(join(dir, 'plain', 'metadata.json'), 'utf8'), '{"cachekey":"job/main"}');
    const head = await server.client.send(new HeadObjectCommand({ Bucket: bucket, Key: 'runner/transfer-/project/4/job/main' }));
    assert.equal((await stat(out)).mtime.getTime(), head.LastModified?.getTime());
    assert.equal((await download({ file: out, url: down.json.url })).status, 'up-to-date');
  });

  it('RGW refusals surface its Code: a body longer than the signed length → 403 without retries', async () => {
    const file = join(dir, 'wrong-length.zip');
    await writeFile(file, randomBytes(1001));
    const up = await presign(svc, { operation: 'upload', key: 'sized', projectId: '4', contentLength: 1000 }, TOKEN);
    let retried = 0;
    await assert.rejects(upload({ file, url: up.json.url, headers: up.json.headers, retryDelayMs: 1, onRetry: () => retried++ }), (err: Error & { status?: number }) => {
      assert.equal(err.status, 403);
      assert.match(err.message, /^upload failed: 403 Forbidden \((SignatureDoesNotMatch|AccessDenied)/);
      return true;
    });
    assert.equal(retried, 0);
  });

  it('RoleARN: env file → multipart upload through the goCloud URL → ranged download with the download role → same bytes', async () => {
    const data = randomBytes(13 * MiB + 5);
    const file = join(dir, 'role.zip');
    await writeFile(file, data);
    const up = await presign(svc, { operation: 'upload', key: 'multi/part', projectId: '9' }, ROLE_TOKEN);
    assert.equal(up.status, 200, JSON.stringify(up.json));
    assert.ok(up.json.goCloudUrl && up.json.env);
    const envFile = join(dir, 'cache.env');
    await writeEnvFile(envFile, up.json.env);
    const env = await readEnvFile(envFile);
    assert.deepEqual(env, up.json.env);

    let progress = 0;
    const res = await upload({ file, goCloudUrl: up.json.goCloudUrl, env, metadata: up.json.metadata, chunkSize: 5 * MiB, concurrency: 2, onProgress: (d) => (progress = d) });
    assert.deepEqual(res, { status: 'uploaded', size: data.length, mode: 's3-multipart', parts: 3 });
    assert.equal(progress, data.length);
    const head = await server.client.send(new HeadObjectCommand({ Bucket: bucket, Key: up.json.objectName }));
    assert.equal(head.ContentLength, data.length);
    assert.equal(head.Metadata?.cachekey, 'multi/part');
    assert.match(head.ETag ?? '', /-3"$/, 'a multipart ETag');

    // The upload role cannot read; the download answer's role can.
    const down = await presign(svc, { operation: 'download', key: 'multi/part', projectId: '9' }, ROLE_TOKEN);
    assert.ok(down.json.goCloudUrl && down.json.env);
    await assert.rejects(download({ file: join(dir, 'denied.zip'), goCloudUrl: up.json.goCloudUrl, env }), { status: 403 });
    const out = join(dir, 'role', 'cache.zip');
    const r = await download({ file: out, goCloudUrl: down.json.goCloudUrl, env: down.json.env, chunkSize: 4 * MiB, concurrency: 3 });
    assert.ok(r.status === 'downloaded' && r.ranged && r.parts === 4, JSON.stringify(r));
    assert.ok((await readFile(out)).equals(data));
    assert.equal(await readFile(join(dir, 'role', 'metadata.json'), 'utf8'), '{"cachekey":"multi/part"}');
  });

  it('RoleARN: a small archive is one signed PutObject; credentials for another object are refused (403)', async () => {
    const small = join(dir, 'small.zip');
    await writeFile(small, randomBytes(1000));
    const up = await presign(svc, { operation: 'upload', key: 'small', projectId: '9' }, ROLE_TOKEN);
    assert.deepEqual(await upload({ file: small, goCloudUrl: up.json.goCloudUrl, env: up.json.env }), { status: 'uploaded', size: 1000, mode: 'put', parts: 1 });
    const other = await presign(svc, { operation: 'upload', key: 'other', projectId: '9' }, ROLE_TOKEN);
    await assert.rejects(upload({ file: small, goCloudUrl: other.json.goCloudUrl, env: up.json.env, retryDelayMs: 1 }), { status: 403 });
  });
});
