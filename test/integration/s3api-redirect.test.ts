/**
 * `[cachegate.s3_api] redirect_get = true` with Ceph RGW as the profile's backend: a runner's
 * presigned GET/HEAD gets 307 to RGW's own presigned URL, and the clients that follow it get the
 * object from RGW: Go's net/http (what GitLab Runner's helper downloads with; test/fixtures/go-http-get,
 * standard library only, built offline) and curl -L. Header-signed SDK reads stay proxied; every
 * refusal stays an S3 error without a Location; the local backend stays proxied.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { rgw, type Rgw } from '../support/rgw.ts';
import { run } from '../support/run.ts';
import { raw, runnerPresigner } from '../support/s3api-suite.ts';
import { startTestService, type TestService } from '../support/service.ts';

const GO_SRC = resolve(import.meta.dirname, '../fixtures/go-http-get');
const AK = 'REDIRECTKEY00001';
const SK = 'redirect-secret-0001';
const RO_AK = 'REDIRECTREADONLY';
const RO_SK = 'redirect-secret-ro01';
const LOCAL_AK = 'REDIRECTLOCAL001';
const NS = 'runner/redirect1/project/7';
const LOCAL_NS = 'runner/redirloc1/project/7';


const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');


describe('S3 front door: redirect_get sends presigned GET/HEAD to the backend with 307', () => {
  let server: Rgw;
  let svc: TestService;
  let s3: string;
  let dir: string;
  let goGet: string;
  const data = randomBytes(300_000);
  const key = `${NS}/archive.zip`;

  before(async () => {
    server = await rgw();
    const bucket = await server.bucket('s3apiredirect');
    svc = await startTestService({
      toml: `
[[runners]]
  name = "remote"
  token = "glrt-redirect1-token"
  [runners.cache]
    Type = "s3"
${server.toml(bucket)}
[[runners]]
  name = "local"
  token = "glrt-redirloc1-token"
  [runners.cache]
    Type = "local"
[cachegate.s3_api]
  listen = "127.0.0.1:0"
  redirect_get = true
  [[cachegate.s3_api.keys]]
    access_key = "${AK}"
    secret_key = "${SK}"
    runner = "remote"
  [[cachegate.s3_api.keys]]
    access_key = "${RO_AK}"
    secret_key = "${RO_SK}"
    runner = "remote"
    read_only = true
  [[cachegate.s3_api.keys]]
    access_key = "${LOCAL_AK}"
    secret_key = "${SK}"
    runner = "local"
`,
    });
    s3 = svc.s3ApiUrl as string;
    dir = await mkdtemp(join(tmpdir(), 'cg-s3redirect-'));
    goGet = join(dir, 'go-http-get');
    const built = await run('go', ['build', '-o', goGet, '.'], { GO111MODULE: 'off', GOPATH: '/usr/share/gocode', GOFLAGS: '', GOCACHE: join(tmpdir(), 'cg-go-cache') }, GO_SRC);
    assert.equal(built.code, 0, built.err);
    const put = await getSignedUrl(runnerPresigner(s3, AK, SK), new PutObjectCommand({ Bucket: 'runner-cache', Key: key }), { expiresIn: 600 });
    assert.equal((await raw(put, { method: 'PUT', body: data })).status, 200);
  });
  after(async () => {
    await svc?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const goFetch = async (method: string, url: string, range?: string): Promise<{ status: number; finalHost: string; redirects: number; contentRange: string; lastModified: string; bodyLength: number; sha256: string }> => {
    const r = await run(goGet, [method, url, ...(range ? [range] : [])]);
    assert.equal(r.code, 0, r.err);
    return JSON.parse(r.out);
  };

  it('a presigned GET is a 307 to RGW; Go net/http follows it (whole and with Range) and gets the object from RGW', async () => {
    const url = await getSignedUrl(runnerPresigner(s3, AK, SK), new GetObjectCommand({ Bucket: 'runner-cache', Key: key }), { expiresIn: 600 });
    const first = await raw(url, { method: 'GET' });
    assert.equal(first.status, 307);
    assert.equal(first.body, '');
    const location = String(first.headers.location);
    assert.ok(location.startsWith(`${server.endpoint}/`), location);
    assert.match(location, /X-Amz-Expires=300/);

    const whole = await goFetch('GET', url);
    assert.deepEqual([whole.status, whole.redirects, whole.finalHost, whole.bodyLength, whole.sha256], [200, 1, server.serverAddress, data.length, sha(data)]);
    // The helper's probe for parallel downloads, and a part.
    const probe = await goFetch('GET', url, 'bytes=0-0');
    assert.deepEqual([probe.status, probe.contentRange, probe.bodyLength], [206, `bytes 0-0/${data.length}`, 1]);
    const part = await goFetch('GET', url, 'bytes=1000-1999');
    assert.deepEqual([part.status, part.sha256], [206, sha(data.subarray(1000, 2000))]);
    const m = await (await fetch(`${svc.url}/metrics`)).text();
    assert.match(m, /cachegate_s3api_requests_total\{operation="GetObject",outcome="redirected"\} [1-9]/);
  });

  it('a presigned HEAD is a 307 to RGW; Go net/http follows it and reads Last-Modified', async () => {
    const url = await getSignedUrl(runnerPresigner(s3, AK, SK), new HeadObjectCommand({ Bucket: 'runner-cache', Key: key }), { expiresIn: 600 });
    const first = await raw(url, { method: 'HEAD' });
    assert.equal(first.status, 307);
    const head = await goFetch('HEAD', url);
    assert.deepEqual([head.status, head.redirects, head.finalHost], [200, 1, server.serverAddress]);
    assert.ok(!Number.isNaN(Date.parse(head.lastModified)), head.lastModified);
  });

  it('curl -L follows it with its Range; a read-only key is redirected too', async () => {
    const url = await getSignedUrl(runnerPresigner(s3, RO_AK, RO_SK), new GetObjectCommand({ Bucket: 'runner-cache', Key: key }), { expiresIn: 600 });
    const out = join(dir, 'curl.out');
    const r = await run('curl', ['-sS', '-L', '-f', '-r', '10-19', '-o', out, '-w', '%{num_redirects} %{url_effective}', url]);
    assert.equal(r.code, 0, r.err);
    assert.ok(r.out.startsWith(`1 ${server.endpoint}/`), r.out);
    assert.deepEqual(await readFile(out), data.subarray(10, 20));
  });

  it('header-signed reads (SDKs, which do not follow redirects) stay proxied', async () => {
    const c = new S3Client({ endpoint: s3, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: AK, secretAccessKey: SK }, maxAttempts: 1 });
    const got = await c.send(new GetObjectCommand({ Bucket: 'runner-cache', Key: key }));
    assert.equal(sha(Buffer.from(await (got.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray())), sha(data));
    const head = await c.send(new HeadObjectCommand({ Bucket: 'runner-cache', Key: key }));
    assert.equal(head.ContentLength, data.length);
  });

  it('a tampered, expired or foreign-namespace URL gets its S3 error and no Location', async () => {
    const url = await getSignedUrl(runnerPresigner(s3, AK, SK), new GetObjectCommand({ Bucket: 'runner-cache', Key: key }), { expiresIn: 600 });
    const sig = /X-Amz-Signature=([0-9a-f]+)/.exec(url)?.[1] as string;
    const tampered = url.replace(sig, `${sig.slice(0, -1)}${sig.endsWith('0') ? '1' : '0'}`);
    const expired = await getSignedUrl(runnerPresigner(s3, AK, SK), new GetObjectCommand({ Bucket: 'runner-cache', Key: key }), { expiresIn: 60, signingDate: new Date(Date.now() - 3600_000) });
    const foreign = await getSignedUrl(runnerPresigner(s3, AK, SK), new GetObjectCommand({ Bucket: 'runner-cache', Key: 'runner/otherrunn/project/7/archive.zip' }), { expiresIn: 600 });
    for (const [u, status, code] of [[tampered, 403, 'SignatureDoesNotMatch'], [expired, 403, 'AccessDenied'], [foreign, 403, 'AccessDenied']] as const) {
      const r = await raw(u, { method: 'GET' });
      assert.equal(r.status, status, r.body);
      assert.match(r.body, new RegExp(`<Code>${code}</Code>`));
      assert.equal(r.headers.location, undefined);
    }
  });

  it('the local backend stays proxied (its own signed URLs point at the service, not at something runners reach)', async () => {
    const k = `${LOCAL_NS}/local.zip`;
    const c = runnerPresigner(s3, LOCAL_AK, SK);
    const put = await getSignedUrl(c, new PutObjectCommand({ Bucket: 'runner-cache', Key: k }), { expiresIn: 600 });
    assert.equal((await raw(put, { method: 'PUT', body: Buffer.from('local bytes') })).status, 200);
    const get = await getSignedUrl(c, new GetObjectCommand({ Bucket: 'runner-cache', Key: k }), { expiresIn: 600 });
    const r = await raw(get, { method: 'GET' });
    assert.deepEqual([r.status, r.body], [200, 'local bytes']);
  });
});
