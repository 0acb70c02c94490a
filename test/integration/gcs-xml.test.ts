/**
 * GCS adapter against the verifying XML endpoint (test/support/gcs-xml-server.ts): every request
 * the endpoint accepts passed the independent verifier (test/support/gcs-verifier.ts).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { createGcsAdapter } from '../../adapters/gcs/index.ts';
import type { CacheAdapter } from '../../src/adapter.ts';
import { CacheGateError } from '../../src/errors.ts';
import { makeContext } from '../contract/context.ts';
import { makeServiceAccount } from '../support/gcs-iam.ts';
import { startGcsXmlServer, type GcsXmlServer } from '../support/gcs-xml-server.ts';

const sa = makeServiceAccount();
const MAX = 1024;
let server: GcsXmlServer;
const adapters: Record<'v2' | 'v4', CacheAdapter> = {} as Record<'v2' | 'v4', CacheAdapter>;

function make(version: 'v2' | 'v4', bucketName = 'cache'): Promise<CacheAdapter> {
  return createGcsAdapter(
    makeContext({
      type: 'gcs',
      path: '',
      shared: false,
      maxUploadedArchiveSize: MAX,
      gcs: { credentialsFile: sa.file, accessId: '', privateKey: '', bucketName, endpoint: server.endpoint, signatureVersion: version },
    }),
  );
}

before(async () => {
  server = await startGcsXmlServer({ keys: new Map([[sa.email, sa.publicKey]]), buckets: ['cache'] });
  adapters.v4 = await make('v4');
  adapters.v2 = await make('v2');
});
after(() => server.stop());

const stored = (name: string) => server.buckets.get('cache')!.get(name);

for (const version of ['v4', 'v2'] as const) {
  test(`${version}: presigned PUT by plain fetch, then GET and HEAD return bytes and x-goog-meta-cachekey`, async () => {
    const a = adapters[version];
    const name = `runner/r1/project/1/${version}/key with space`;
    const put = await a.presign({ method: 'PUT', objectName: name, expiresIn: 60, metadata: { cachekey: 'key with space' } });
    const body = Buffer.from(`payload ${version}`);
    const r = await fetch(put.url, { method: 'PUT', headers: put.headers, body });
    assert.equal(r.status, 200, await r.text());
    assert.deepEqual(stored(name)?.body, body);
    const get = await a.presign({ method: 'GET', objectName: name, expiresIn: 60, metadata: {} });
    const g = await fetch(get.url);
    assert.equal(g.status, 200);
    assert.deepEqual(Buffer.from(await g.arrayBuffer()), body);
    assert.equal(g.headers.get('x-goog-meta-cachekey'), 'key with space');
    const head = await a.presign({ method: 'HEAD', objectName: name, expiresIn: 60, metadata: {} });
    const h = await fetch(head.url, { method: 'HEAD' });
    assert.equal(h.status, 200);
    assert.equal(h.headers.get('content-length'), String(body.length));
  });

  test(`${version}: the endpoint refuses a PUT above the signed x-goog-content-length-range and stores nothing`, async () => {
    const a = adapters[version];
    const name = `runner/r1/project/1/${version}/too-big`;
    const put = await a.presign({ method: 'PUT', objectName: name, expiresIn: 60, metadata: { cachekey: 'k' } });
    const r = await fetch(put.url, { method: 'PUT', headers: put.headers, body: Buffer.alloc(MAX + 1) });
    assert.equal(r.status, 400);
    assert.match(await r.text(), /EntityTooLarge/);
    // Streamed (chunked, no Content-Length): counted and refused as well.
    const chunked = await fetch(put.url, {
      method: 'PUT',
      headers: put.headers,
      body: Readable.toWeb(Readable.from([Buffer.alloc(MAX), Buffer.alloc(1)])) as ReadableStream,
      duplex: 'half',
    } as RequestInit);
    assert.equal(chunked.status, 400);
    assert.equal(stored(name), undefined);
    // Exactly the maximum is accepted.
    const ok = await fetch(put.url, { method: 'PUT', headers: put.headers, body: Buffer.alloc(MAX) });
    assert.equal(ok.status, 200);
  });

  test(`${version}: dropping the range header or adding an unsigned x-goog-meta-* header is refused`, async () => {
    const a = adapters[version];
    const name = `runner/r1/project/1/${version}/headers`;
    const put = await a.presign({ method: 'PUT', objectName: name, expiresIn: 60, metadata: { cachekey: 'k' } });
    const without: Record<string, string> = { ...put.headers };
    delete without['x-goog-content-length-range'];
    assert.equal((await fetch(put.url, { method: 'PUT', headers: without, body: Buffer.alloc(MAX + 10) })).status, 403);
    const extra = { ...put.headers, 'x-goog-meta-other': 'x' };
    assert.equal((await fetch(put.url, { method: 'PUT', headers: extra, body: 'x' })).status, 403);
    assert.equal(stored(name), undefined);
  });

  test(`${version}: expired URL → 400 ExpiredToken; tampered → 403; missing object → 404`, async () => {
    const a = adapters[version];
    const name = `runner/r1/project/1/${version}/expiry`;
    const old = await a.presign({ method: 'GET', objectName: name, expiresIn: 60, metadata: {}, now: Date.now() - 3_600_000 });
    const r = await fetch(old.url);
    assert.equal(r.status, 400);
    assert.match(await r.text(), /ExpiredToken/);
    const p = await a.presign({ method: 'GET', objectName: name, expiresIn: 60, metadata: {} });
    assert.equal((await fetch(p.url)).status, 404);
    const bad = p.url.replace(/(Signature=)(.)/, (_m, k: string, c: string) => k + (c === 'A' || c === 'a' ? 'b' : 'a'));
    assert.equal((await fetch(bad)).status, 403);
  });

  test(`${version}: proxy put/head/get with Range through signed requests`, async () => {
    const a = adapters[version];
    const name = `runner/r1/project/1/${version}/proxy`;
    const info = await a.put(name, { body: Readable.from([Buffer.from('hello '), Buffer.from('world')]), metadata: { cachekey: 'proxy' }, maxSize: MAX });
    assert.equal(info.size, 11);
    assert.deepEqual(info.metadata, { cachekey: 'proxy' });
    const head = await a.head(name);
    assert.equal(head?.size, 11);
    assert.equal(head?.metadata.cachekey, 'proxy');
    const whole = await a.get(name);
    assert.equal(Buffer.concat(await whole!.body.toArray()).toString(), 'hello world');
    const part = await a.get(name, { start: 6 });
    assert.deepEqual(part?.range, { start: 6, end: 10 });
    assert.equal(part?.info.size, 11);
    assert.equal(Buffer.concat(await part!.body.toArray()).toString(), 'world');
    await assert.rejects(a.get(name, { start: 100 }), (e: unknown) => e instanceof CacheGateError && e.status === 416);
    assert.equal(await a.head(`${name}-missing`), null);
    assert.equal(await a.get(`${name}-missing`), null);
  });

  test(`${version}: proxy put above maxSize → 413 and nothing stored (declared and streamed)`, async () => {
    const a = adapters[version];
    const name = `runner/r1/project/1/${version}/proxy-too-big`;
    const is413 = (e: unknown): boolean => e instanceof CacheGateError && e.code === 'payload_too_large' && e.status === 413;
    await assert.rejects(a.put(name, { body: Readable.from([Buffer.alloc(MAX + 1)]), contentLength: MAX + 1, metadata: {}, maxSize: MAX }), is413);
    await assert.rejects(a.put(name, { body: Readable.from([Buffer.alloc(MAX), Buffer.alloc(1)]), metadata: {}, maxSize: MAX }), is413);
    assert.equal(stored(name), undefined);
    assert.equal(await a.head(name), null);
  });
}

test('ready(): bucket reachable; a missing bucket → 502 naming BucketName; a dead endpoint → 503', async () => {
  await adapters.v4.ready();
  const missing = await make('v4', 'no-such-bucket');
  await assert.rejects(missing.ready(), (e: unknown) => e instanceof CacheGateError && e.status === 502 && /check BucketName \(bucket "no-such-bucket" does not exist\)/.test(e.message));
  const dead = await createGcsAdapter(
    makeContext({
      type: 'gcs', path: '', shared: false, maxUploadedArchiveSize: 0,
      gcs: { credentialsFile: sa.file, accessId: '', privateKey: '', bucketName: 'cache', endpoint: 'http://127.0.0.1:1', signatureVersion: 'v4' },
    }),
  );
  await assert.rejects(dead.ready(), (e: unknown) => e instanceof CacheGateError && e.status === 503);
});

test('every request the endpoint accepted carried a verified signature', () => {
  const accepted = server.verdicts.filter((v) => v.status < 400 || v.status === 404 || v.status === 416);
  assert.ok(accepted.length > 20);
  for (const v of accepted) assert.equal(v.verdict.ok, true);
});
