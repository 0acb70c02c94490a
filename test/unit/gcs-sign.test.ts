import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Storage } from '@google-cloud/storage';
import { createGcsAdapter } from '../../adapters/gcs/index.ts';
import type { CacheAdapter } from '../../src/adapter.ts';
import type { GcsSettings } from '../../src/config/types.ts';
import { CacheGateError } from '../../src/errors.ts';
import { makeContext } from '../contract/context.ts';
import { makeServiceAccount } from '../support/gcs-iam.ts';
import { verifyUrl } from '../support/gcs-verifier.ts';

const sa = makeServiceAccount('signer');
const other = makeServiceAccount('other');
const keys = new Map([[sa.email, sa.publicKey]]);
// A whole minute of the real clock: @google-cloud/storage refuses an expiry in the past (a fixed date
// here made the cross-check fail once that date had passed).
const NOW = Math.floor(Date.now() / 60_000) * 60_000;
const OBJECT = 'runner/abcdefghi/project/42/my key+with spaces/ü*(x)';

function gcs(overrides: Partial<GcsSettings> = {}, maxSize = 1000): Promise<CacheAdapter> {
  return createGcsAdapter(
    makeContext({
      type: 'gcs',
      path: '',
      shared: false,
      maxUploadedArchiveSize: maxSize,
      gcs: { credentialsFile: sa.file, accessId: '', privateKey: '', bucketName: 'cache-bucket', endpoint: '', signatureVersion: 'v4', ...overrides },
    }),
  );
}

function tamper(url: string, param: string, fn: (v: string) => string): string {
  const u = new URL(url);
  u.searchParams.set(param, fn(u.searchParams.get(param) ?? ''));
  return u.toString();
}

for (const version of ['v4', 'v2'] as const) {
  test(`${version}: GET, HEAD and PUT URLs pass the independent verifier`, async () => {
    const a = await gcs({ signatureVersion: version });
    for (const method of ['GET', 'HEAD', 'PUT'] as const) {
      const p = await a.presign({ method, objectName: OBJECT, expiresIn: 3600, metadata: { cachekey: 'my key' }, now: NOW });
      const v = verifyUrl(method, p.url, p.headers, keys, NOW + 1000);
      assert.equal(v.ok, true, `${method}: ${JSON.stringify(v)}`);
      assert.ok(v.ok && v.version === version);
      assert.equal(p.expiresAt.getTime(), NOW + 3600_000);
      assert.ok(p.url.startsWith('https://storage.googleapis.com/cache-bucket/runner/abcdefghi/project/42/'));
      // The verifier refuses the same request once expired, and with another method.
      const expired = verifyUrl(method, p.url, p.headers, keys, NOW + 3600_000);
      assert.equal(expired.ok, false);
      assert.ok(!expired.ok && expired.code === 'ExpiredToken');
      assert.equal(verifyUrl(method === 'PUT' ? 'GET' : 'PUT', p.url, p.headers, keys, NOW).ok, false);
    }
  });

  test(`${version}: PUT signs Content-Type, x-goog-meta-* and x-goog-content-length-range and returns them`, async () => {
    const a = await gcs({ signatureVersion: version });
    const p = await a.presign({ method: 'PUT', objectName: OBJECT, expiresIn: 60, metadata: { cachekey: 'human key' }, now: NOW });
    const headers: Record<string, string> = { ...p.headers };
    assert.deepEqual(headers, {
      'Content-Type': 'application/octet-stream',
      'x-goog-meta-cachekey': 'human key',
      'x-goog-content-length-range': '0,1000',
    });
    const v = verifyUrl('PUT', p.url, p.headers, keys, NOW);
    assert.ok(v.ok);
    for (const h of ['content-type', 'x-goog-meta-cachekey', 'x-goog-content-length-range']) assert.ok(v.signedHeaders.includes(h), h);
    // Each signed header matters: change or drop it and the signature no longer matches.
    for (const name of Object.keys(p.headers)) {
      const changed: Record<string, string> = { ...p.headers, [name]: p.headers[name] + 'x' };
      assert.equal(verifyUrl('PUT', p.url, changed, keys, NOW).ok, false, `changed ${name}`);
      const dropped: Record<string, string> = { ...p.headers };
      delete dropped[name];
      assert.equal(verifyUrl('PUT', p.url, dropped, keys, NOW).ok, false, `dropped ${name}`);
    }
    // An extra, unsigned metadata header is refused too.
    assert.equal(verifyUrl('PUT', p.url, { ...p.headers, 'x-goog-meta-evil': '1' }, keys, NOW).ok, false);
  });

  test(`${version}: tampered signature, expiry, object or signer is refused`, async () => {
    const a = await gcs({ signatureVersion: version });
    const p = await a.presign({ method: 'GET', objectName: OBJECT, expiresIn: 60, metadata: {}, now: NOW });
    const sigParam = version === 'v4' ? 'X-Goog-Signature' : 'Signature';
    const flip = (s: string): string => (s[5] === 'a' ? s.slice(0, 5) + 'b' + s.slice(6) : s.slice(0, 5) + 'a' + s.slice(6));
    assert.equal(verifyUrl('GET', tamper(p.url, sigParam, flip), {}, keys, NOW).ok, false);
    const expParam = version === 'v4' ? 'X-Goog-Expires' : 'Expires';
    assert.equal(verifyUrl('GET', tamper(p.url, expParam, (v) => String(Number(v) + 1)), {}, keys, NOW).ok, false);
    assert.equal(verifyUrl('GET', p.url.replace('/project/42/', '/project/43/'), {}, keys, NOW).ok, false);
    const bOther = await gcs({ signatureVersion: version, credentialsFile: other.file });
    const q = await bOther.presign({ method: 'GET', objectName: OBJECT, expiresIn: 60, metadata: {}, now: NOW });
    const forged = version === 'v4'
      ? tamper(q.url, 'X-Goog-Credential', (c) => c.replace(other.email, sa.email))
      : tamper(q.url, 'GoogleAccessId', () => sa.email);
    assert.equal(verifyUrl('GET', forged, {}, keys, NOW).ok, false);
  });

  test(`${version}: @google-cloud/storage produces the identical URL (cross-check of signer and verifier)`, async () => {
    const a = await gcs({ signatureVersion: version });
    const storage = new Storage({ credentials: { client_email: sa.email, private_key: sa.privateKeyPem }, projectId: 'test-project' });
    const file = storage.bucket('cache-bucket').file(OBJECT);
    for (const method of ['GET', 'PUT'] as const) {
      const p = await a.presign({ method, objectName: OBJECT, expiresIn: 600, metadata: { cachekey: 'k' }, now: NOW });
      const extensionHeaders: Record<string, string> = {};
      for (const [k, v] of Object.entries(p.headers)) if (k !== 'Content-Type') extensionHeaders[k] = v;
      const [lib] = await file.getSignedUrl({
        version,
        action: method === 'GET' ? 'read' : 'write',
        expires: NOW + 600_000,
        accessibleAt: new Date(NOW),
        ...(method === 'PUT' ? { contentType: 'application/octet-stream', extensionHeaders } : {}),
      });
      assert.equal(p.url, lib);
      assert.ok(verifyUrl(method, lib, p.headers, keys, NOW).ok);
    }
  });
}

test('AccessID + PrivateKey (PEM with escaped newlines) signs like the credentials file', async () => {
  const a = await gcs({ credentialsFile: '', accessId: sa.email, privateKey: sa.privateKeyPem.replace(/\n/g, '\\n') });
  const b = await gcs();
  const pa = await a.presign({ method: 'GET', objectName: OBJECT, expiresIn: 60, metadata: {}, now: NOW });
  const pb = await b.presign({ method: 'GET', objectName: OBJECT, expiresIn: 60, metadata: {}, now: NOW });
  assert.equal(pa.url, pb.url);
  assert.ok(verifyUrl('GET', pa.url, {}, keys, NOW).ok);
});

test('CredentialsFile wins over AccessID + PrivateKey', async () => {
  const a = await gcs({ accessId: other.email, privateKey: other.privateKeyPem });
  const p = await a.presign({ method: 'GET', objectName: OBJECT, expiresIn: 60, metadata: {}, now: NOW });
  const v = verifyUrl('GET', p.url, {}, keys, NOW);
  assert.ok(v.ok && v.email === sa.email);
});

test('Endpoint replaces storage.googleapis.com and its port is signed in host', async () => {
  const a = await gcs({ endpoint: 'http://127.0.0.1:4443' });
  const p = await a.presign({ method: 'GET', objectName: 'a/b', expiresIn: 60, metadata: {}, now: NOW });
  assert.ok(p.url.startsWith('http://127.0.0.1:4443/cache-bucket/a/b?'));
  assert.ok(verifyUrl('GET', p.url, {}, keys, NOW).ok);
  // A server seeing another Host (the port dropped) computes another signature.
  const u = new URL(p.url);
  const v = verifyUrl('GET', `http://127.0.0.1${u.pathname}${u.search}`, {}, keys, NOW);
  assert.equal(v.ok, false);
});

test('a stated contentLength above MaxUploadedArchiveSize is refused with 413; no cap → no range header', async () => {
  const a = await gcs({}, 1000);
  await assert.rejects(
    a.presign({ method: 'PUT', objectName: 'a/b', expiresIn: 60, metadata: {}, contentLength: 1001, now: NOW }),
    (e: unknown) => e instanceof CacheGateError && e.code === 'payload_too_large' && e.status === 413,
  );
  const ok = await a.presign({ method: 'PUT', objectName: 'a/b', expiresIn: 60, metadata: {}, contentLength: 1000, now: NOW });
  assert.equal(ok.headers['x-goog-content-length-range'], '0,1000');
  const unlimited = await gcs({}, 0);
  const p = await unlimited.presign({ method: 'PUT', objectName: 'a/b', expiresIn: 60, metadata: {}, contentLength: 10 ** 12, now: NOW });
  assert.equal(p.headers['x-goog-content-length-range'], undefined);
  assert.ok(verifyUrl('PUT', p.url, p.headers, keys, NOW).ok);
});

test('V4 lifetimes are capped at 7 days', async () => {
  const a = await gcs();
  const p = await a.presign({ method: 'GET', objectName: 'a/b', expiresIn: 30 * 86400, metadata: {}, now: NOW });
  assert.equal(new URL(p.url).searchParams.get('X-Goog-Expires'), '604800');
  assert.equal(p.expiresAt.getTime(), NOW + 604800_000);
  assert.ok(verifyUrl('GET', p.url, {}, keys, NOW).ok);
});

test('configuration errors are reported as invalid_config', async () => {
  const isConfig = (e: unknown): boolean => e instanceof CacheGateError && e.code === 'invalid_config';
  await assert.rejects(gcs({ bucketName: '' }), isConfig);
  await assert.rejects(gcs({ endpoint: 'ftp://x' }), isConfig);
  await assert.rejects(gcs({ endpoint: 'http://127.0.0.1:1/prefix' }), isConfig);
  await assert.rejects(gcs({ credentialsFile: '/nonexistent/sa.json' }), isConfig);
  await assert.rejects(gcs({ credentialsFile: '', accessId: sa.email, privateKey: 'not a key' }), isConfig);
  await assert.rejects(gcs({ credentialsFile: '', accessId: sa.email, privateKey: '' }), isConfig);
});
