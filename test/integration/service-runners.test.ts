/**
 * Runners that share a `name` (legal in GitLab Runner's config.toml) are told apart by their token:
 * each keeps its own backend (bucket, credentials), MaxUploadedArchiveSize (also on /v1/blob URLs)
 * and rate-limit bucket. On the local backend and on real S3 (Ceph RGW, two buckets).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { rgw, type Rgw } from '../support/rgw.ts';
import { presign, startTestService, type TestService } from '../support/service.ts';

const A = 'glrt-sharedname-aaaa1';
const B = 'glrt-sharedname-bbbb2';

/** A [[runners]] entry named "ci"; `cache` holds the lines of its [runners.cache] table. */
const ci = (token: string, ...cache: string[]): string => `[[runners]]\n  name = "ci"\n  token = "${token}"\n  [runners.cache]\n${cache.join('\n')}\n`;

const put = (url: string, body: Buffer, token?: string, headers: Record<string, string> = {}): Promise<Response> =>
  fetch(url, { method: 'PUT', headers: { ...headers, ...(token ? { authorization: `Bearer ${token}` } : {}) }, body });

describe('two runners named "ci" on the local backend', () => {
  let svc: TestService;

  before(async () => {
    svc = await startTestService({
      toml: ci(A, 'Type = "local"', 'Path = "a"', 'MaxUploadedArchiveSize = 1000') + ci(B, 'Type = "local"', 'Path = "b"'),
    });
  });
  after(async () => svc?.stop());

  it('are both served, and `check` warns about the shared name, naming both entries', () => {
    const warning = svc.state().config.findings.find((f) => f.field === 'runners.ci.name');
    assert.ok(warning, JSON.stringify(svc.state().config.findings));
    assert.match(warning.message, /2 runners are named "ci" \(runners\[0\], runners\[1\]\)/);
  });

  it('each runner keeps its own MaxUploadedArchiveSize on its /v1/blob URLs', async () => {
    const data = randomBytes(2000);
    const upA = await presign(svc, { operation: 'upload', key: 'k', projectId: '1' }, A);
    assert.equal(upA.status, 200, JSON.stringify(upA.json));
    assert.equal(upA.json.objectName, 'a/runner/sharednam/project/1/k');
    assert.equal(upA.json.maxUploadedArchiveSize, 1000);
    assert.equal(new URL(upA.json.url).searchParams.get('X-Cachegate-MaxSize'), '1000');
    const refused = await put(upA.json.url, data, undefined, upA.json.headers);
    assert.equal(refused.status, 413, await refused.text());

    const upB = await presign(svc, { operation: 'upload', key: 'k', projectId: '1' }, B);
    assert.equal(upB.status, 200, JSON.stringify(upB.json));
    assert.equal(upB.json.objectName, 'b/runner/sharednam/project/1/k');
    assert.equal(upB.json.maxUploadedArchiveSize, 0);
    assert.equal(new URL(upB.json.url).searchParams.get('X-Cachegate-MaxSize'), null);
    const stored = await put(upB.json.url, data, undefined, upB.json.headers);
    assert.equal(stored.status, 200, await stored.text());

    // A's cap is enforced at presign time too, with a stated size.
    const stated = await presign(svc, { operation: 'upload', key: 'k', projectId: '1', contentLength: 2000 }, A);
    assert.equal(stated.status, 413);
  });

  it('each runner keeps its own cap and namespace through the proxy', async () => {
    const data = randomBytes(2000);
    assert.equal((await put(`${svc.url}/v1/cache/2/k`, data, A)).status, 413);
    assert.equal((await put(`${svc.url}/v1/cache/2/k`, data, B)).status, 200);
    assert.equal((await fetch(`${svc.url}/v1/cache/2/k`, { headers: { authorization: `Bearer ${A}` } })).status, 404, "B's object is not A's");
    const got = await fetch(`${svc.url}/v1/cache/2/k`, { headers: { authorization: `Bearer ${B}` } });
    assert.ok(Buffer.from(await got.arrayBuffer()).equals(data));
  });

  it('/readyz names both runners apart', async () => {
    const res = await fetch(`${svc.url}/readyz`);
    const body = (await res.json()) as { backends: Record<string, string> };
    assert.deepEqual(Object.keys(body.backends).sort(), ['ci (runners[0])', 'ci (runners[1])']);
  });
});

describe('two runners named "ci" and rate limits', () => {
  let svc: TestService;
  before(async () => {
    svc = await startTestService({
      toml: `[cachegate]\nrate_limit = 0.01\nrate_limit_burst = 2\n${ci(A, 'Type = "local"')}${ci(B, 'Type = "local"')}`,
    });
  });
  after(async () => svc?.stop());

  it('do not share a rate-limit bucket', async () => {
    const body = { operation: 'head', key: 'k', projectId: '1' };
    assert.equal((await presign(svc, body, A)).status, 200);
    assert.equal((await presign(svc, body, A)).status, 200);
    assert.equal((await presign(svc, body, A)).status, 429, "A's burst is spent");
    assert.equal((await presign(svc, body, B)).status, 200, "B's bucket is its own");
  });
});

describe('two runners named "ci" on S3 (RGW, two buckets)', () => {
  let server: Rgw;
  let svc: TestService;
  let bucketA: string;
  let bucketB: string;

  before(async () => {
    server = await rgw();
    bucketA = await server.bucket('runa');
    bucketB = await server.bucket('runb');
    // B's secret is wrong: RGW refuses whatever is signed with B's credentials.
    const tomlB = server.toml(bucketB).replace(`SecretKey = "${server.secretKey}"`, 'SecretKey = "not-the-secret-of-runner-b"');
    svc = await startTestService({
      toml: ci(A, 'Type = "s3"', 'MaxUploadedArchiveSize = 100000', server.toml(bucketA)) + ci(B, 'Type = "s3"', tomlB),
    });
  });
  after(async () => svc?.stop());

  it("A's presigned URL names A's bucket and is signed with A's credentials; B's with B's", async () => {
    const data = randomBytes(4096);
    const upA = await presign(svc, { operation: 'upload', key: 'k', projectId: '3', contentLength: data.length }, A);
    assert.equal(upA.status, 200, JSON.stringify(upA.json));
    assert.equal(new URL(upA.json.url).pathname.split('/')[1], bucketA);
    assert.equal(upA.json.maxUploadedArchiveSize, 100000);
    const okA = await put(upA.json.url, data, undefined, upA.json.headers);
    assert.equal(okA.status, 200, await okA.text());
    await server.client.send(new HeadObjectCommand({ Bucket: bucketA, Key: upA.json.objectName }));

    const upB = await presign(svc, { operation: 'upload', key: 'k', projectId: '3', contentLength: data.length }, B);
    assert.equal(upB.status, 200, JSON.stringify(upB.json));
    assert.equal(new URL(upB.json.url).pathname.split('/')[1], bucketB);
    assert.equal(upB.json.maxUploadedArchiveSize, 0);
    const refusedB = await put(upB.json.url, data, undefined, upB.json.headers);
    assert.equal(refusedB.status, 403, 'signed with B\'s (wrong) secret');

    const tooBig = await presign(svc, { operation: 'upload', key: 'k', projectId: '3', contentLength: 200000 }, A);
    assert.equal(tooBig.status, 413);
  });

  it('through the proxy: A stores in its bucket within its cap, B uses its own credentials', async () => {
    const small = randomBytes(1000);
    const okA = await put(`${svc.url}/v1/cache/4/k`, small, A);
    assert.equal(okA.status, 200, await okA.text());
    await server.client.send(new HeadObjectCommand({ Bucket: bucketA, Key: 'runner/sharednam/project/4/k' }));
    assert.equal((await put(`${svc.url}/v1/cache/4/big`, randomBytes(200000), A)).status, 413);
    const viaB = await put(`${svc.url}/v1/cache/4/k`, small, B);
    assert.ok(viaB.status >= 500 && viaB.status < 600, `B's wrong secret is a backend failure, got ${viaB.status}`);
    assert.equal((await fetch(`${svc.url}/v1/cache/4/k`, { headers: { authorization: `Bearer ${A}` } })).status, 200);
  });
});
