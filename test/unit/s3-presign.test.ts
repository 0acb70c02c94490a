/**
 * Presigning without a server: every URL is checked by an independent SigV4 verifier written here from
 * AWS's documented algorithm (canonical request → string to sign → HMAC chain), which also shows that
 * a changed method, object, header or expiry no longer verifies.
 */
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { describe, test } from 'node:test';
import { createS3Adapter } from '../../adapters/s3/index.ts';
import { cachedProvider } from '../../adapters/s3/credentials.ts';
import type { Credentials } from '../../adapters/s3/credentials.ts';
import type { S3Settings } from '../../src/config/types.ts';
import { CacheGateError } from '../../src/errors.ts';
import { s3Context, s3Settings } from '../support/rgw.ts';

const ACCESS = 'AKIDEXAMPLE';
const SECRET = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY';
const NOW = Date.UTC(2026, 0, 2, 3, 4, 5);

function enc(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** Independent SigV4 query-signature check. Returns '' when valid, else why not. */
function verify(method: string, url: string, headers: Record<string, string>, secret: string, now: number): string {
  const u = new URL(url);
  const q = new Map<string, string>();
  for (const [k, v] of u.searchParams) q.set(k, v);
  if (q.get('X-Amz-Algorithm') !== 'AWS4-HMAC-SHA256') return 'algorithm';
  const date = q.get('X-Amz-Date')!;
  const expires = Number(q.get('X-Amz-Expires'));
  const t = Date.UTC(+date.slice(0, 4), +date.slice(4, 6) - 1, +date.slice(6, 8), +date.slice(9, 11), +date.slice(11, 13), +date.slice(13, 15));
  if (now > t + expires * 1000) return 'expired';
  const [, ...scopeParts] = q.get('X-Amz-Credential')!.split('/');
  const scope = scopeParts.join('/');
  const [shortDate, region, service] = scopeParts;
  const signed = q.get('X-Amz-SignedHeaders')!.split(';');
  const all: Record<string, string> = { host: u.host };
  for (const [k, v] of Object.entries(headers)) all[k.toLowerCase()] = v;
  for (const h of signed) if (all[h] === undefined) return `signed header ${h} missing`;
  const canonicalQuery = [...q.entries()].filter(([k]) => k !== 'X-Amz-Signature').map(([k, v]) => [enc(k), enc(v)]).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, v]) => `${k}=${v}`).join('&');
  const canonical = [method, u.pathname, canonicalQuery, ...signed.map((h) => `${h}:${all[h].trim()}`), '', signed.join(';'), 'UNSIGNED-PAYLOAD'].join('\n');
  const sts = ['AWS4-HMAC-SHA256', date, scope, createHash('sha256').update(canonical).digest('hex')].join('\n');
  let key: Buffer = createHmac('sha256', `AWS4${secret}`).update(shortDate).digest();
  for (const part of [region, service, 'aws4_request']) key = createHmac('sha256', key).update(part).digest();
  const sig = createHmac('sha256', key).update(sts).digest('hex');
  return sig === q.get('X-Amz-Signature') ? '' : 'signature mismatch';
}

function adapterFor(extra: Partial<S3Settings>, max = 0, credentials?: () => Promise<Credentials>) {
  const s = s3Settings({ accessKey: ACCESS, secretKey: SECRET, authenticationType: 'access-key', bucketLocation: 'eu-west-1', bucketName: 'cache', ...extra });
  return createS3Adapter(s3Context(s, max).ctx, credentials === undefined ? {} : { credentials });
}

describe('S3 presign', () => {
  test('GET on AWS: virtual-hosted DualStack URL that verifies; any change breaks it', async () => {
    const a = adapterFor({});
    const r = await a.presign({ method: 'GET', objectName: 'runner/x/project/1/my key', expiresIn: 3600, metadata: {}, now: NOW });
    assert.equal(r.method, 'GET');
    assert.deepEqual(r.headers, {});
    assert.equal(r.expiresAt.getTime(), NOW + 3600_000);
    const u = new URL(r.url);
    assert.equal(u.host, 'cache.s3.dualstack.eu-west-1.amazonaws.com');
    assert.equal(u.pathname, '/runner/x/project/1/my%20key');
    assert.equal(u.searchParams.get('X-Amz-Credential'), `${ACCESS}/20260102/eu-west-1/s3/aws4_request`);
    assert.equal(u.searchParams.get('X-Amz-SignedHeaders'), 'host');
    assert.equal(u.searchParams.get('X-Amz-Expires'), '3600');
    assert.equal(u.searchParams.get('X-Amz-Security-Token'), null);
    assert.equal(verify('GET', r.url, {}, SECRET, NOW), '');

    assert.equal(verify('HEAD', r.url, {}, SECRET, NOW), 'signature mismatch');
    assert.equal(verify('GET', r.url.replace('my%20key', 'my%20kez'), {}, SECRET, NOW), 'signature mismatch');
    assert.equal(verify('GET', r.url.replace('X-Amz-Expires=3600', 'X-Amz-Expires=7200'), {}, SECRET, NOW), 'signature mismatch');
    assert.equal(verify('GET', r.url, {}, 'other-secret', NOW), 'signature mismatch');
    assert.equal(verify('GET', r.url, {}, SECRET, NOW + 3601_000), 'expired');
  });

  test('PUT signs and returns x-amz-meta-*, SSE (KMS + key id) and content-length; Content-Type is not signed', async () => {
    const a = adapterFor({ serverSideEncryption: 'aws:kms', serverSideEncryptionKeyId: 'arn:aws:kms:eu-west-1:1:key/k' });
    const r = await a.presign({ method: 'PUT', objectName: 'o', expiresIn: 60, metadata: { cachekey: 'human key', Other: 'v' }, contentLength: 1234, now: NOW });
    assert.deepEqual(r.headers, {
      'x-amz-meta-cachekey': 'human key',
      'x-amz-meta-other': 'v',
      'x-amz-server-side-encryption': 'aws:kms',
      'x-amz-server-side-encryption-aws-kms-key-id': 'arn:aws:kms:eu-west-1:1:key/k',
      'content-length': '1234',
    });
    const u = new URL(r.url);
    assert.equal(
      u.searchParams.get('X-Amz-SignedHeaders'),
      'content-length;host;x-amz-meta-cachekey;x-amz-meta-other;x-amz-server-side-encryption;x-amz-server-side-encryption-aws-kms-key-id',
    );
    // The headers stay headers (not hoisted into the query).
    assert.equal(u.searchParams.get('x-amz-meta-cachekey'), null);
    assert.equal(verify('PUT', r.url, { ...r.headers, 'content-type': 'application/zip' }, SECRET, NOW), '');
    assert.equal(verify('PUT', r.url, { ...r.headers, 'content-length': '1235' }, SECRET, NOW), 'signature mismatch');
    assert.equal(verify('PUT', r.url, { ...r.headers, 'x-amz-server-side-encryption': 'AES256' }, SECRET, NOW), 'signature mismatch');
    const { 'x-amz-meta-cachekey': _, ...withoutMeta } = r.headers;
    assert.equal(verify('PUT', r.url, withoutMeta, SECRET, NOW), 'signed header x-amz-meta-cachekey missing');
  });

  test('PUT without a stated size does not sign content-length; AES256 has no key id header', async () => {
    const a = adapterFor({ serverSideEncryption: 'AES256', serverSideEncryptionKeyId: 'ignored' });
    const r = await a.presign({ method: 'PUT', objectName: 'o', expiresIn: 60, metadata: { cachekey: 'k' }, now: NOW });
    assert.deepEqual(r.headers, { 'x-amz-meta-cachekey': 'k', 'x-amz-server-side-encryption': 'AES256' });
    assert.equal(verify('PUT', r.url, r.headers, SECRET, NOW), '');
  });

  test('GET and HEAD never carry PUT headers', async () => {
    const a = adapterFor({ serverSideEncryption: 'AES256' });
    for (const method of ['GET', 'HEAD'] as const) {
      const r = await a.presign({ method, objectName: 'o', expiresIn: 60, metadata: { cachekey: 'k' }, now: NOW });
      assert.deepEqual(r.headers, {});
      assert.equal(verify(method, r.url, {}, SECRET, NOW), '');
    }
  });

  test('stated size above MaxUploadedArchiveSize: 413 before signing; equal is fine', async () => {
    const a = adapterFor({}, 100);
    await assert.rejects(
      a.presign({ method: 'PUT', objectName: 'o', expiresIn: 60, metadata: {}, contentLength: 101 }),
      (e: unknown) => e instanceof CacheGateError && e.status === 413 && e.code === 'payload_too_large' && /101/.test(e.message),
    );
    assert.equal((await a.presign({ method: 'PUT', objectName: 'o', expiresIn: 60, metadata: {}, contentLength: 100 })).headers['content-length'], '100');
    await assert.rejects(a.presign({ method: 'PUT', objectName: 'o', expiresIn: 60, metadata: {}, contentLength: -1 }), (e: unknown) => e instanceof CacheGateError && e.status === 400);
    await assert.rejects(a.presign({ method: 'PUT', objectName: 'o', expiresIn: 60, metadata: {}, contentLength: 1.5 }), (e: unknown) => e instanceof CacheGateError && e.status === 400);
  });

  test('bad input: 400, never a 500', async () => {
    const a = adapterFor({});
    await assert.rejects(a.presign({ method: 'DELETE' as 'GET', objectName: 'o', expiresIn: 60, metadata: {} }), (e: unknown) => e instanceof CacheGateError && e.status === 400);
    await assert.rejects(a.presign({ method: 'GET', objectName: '', expiresIn: 60, metadata: {} }), (e: unknown) => e instanceof CacheGateError && e.status === 400);
    await assert.rejects(a.presign({ method: 'GET', objectName: 'o', expiresIn: 0, metadata: {} }), (e: unknown) => e instanceof CacheGateError && e.status === 400);
  });

  test('lifetimes above SigV4 7 days are capped', async () => {
    const r = await adapterFor({}).presign({ method: 'GET', objectName: 'o', expiresIn: 30 * 86400, metadata: {}, now: NOW });
    assert.equal(new URL(r.url).searchParams.get('X-Amz-Expires'), '604800');
    assert.equal(r.expiresAt.getTime(), NOW + 604800_000);
  });

  test('SessionToken: X-Amz-Security-Token is signed into the URL', async () => {
    const r = await adapterFor({ sessionToken: 'TOKEN/with+chars=' }).presign({ method: 'GET', objectName: 'o', expiresIn: 60, metadata: {}, now: NOW });
    assert.equal(new URL(r.url).searchParams.get('X-Amz-Security-Token'), 'TOKEN/with+chars=');
    assert.equal(verify('GET', r.url, {}, SECRET, NOW), '');
    assert.equal(verify('GET', r.url.replace(/X-Amz-Security-Token=[^&]+/, 'X-Amz-Security-Token=OTHER'), {}, SECRET, NOW), 'signature mismatch');
  });

  test('temporary (iam) credentials: URL expiry is capped at the credentials expiry', async () => {
    const expiration = new Date(NOW + 600_000);
    const r = await adapterFor({ authenticationType: 'iam', accessKey: '', secretKey: '' }, 0, async () => ({ accessKeyId: 'ASIA', secretAccessKey: SECRET, sessionToken: 'T', expiration })).presign({
      method: 'GET', objectName: 'o', expiresIn: 3600, metadata: {}, now: NOW,
    });
    assert.equal(r.expiresAt.getTime(), expiration.getTime());
    assert.equal(verify('GET', r.url, {}, SECRET, NOW), '');
  });

  test('custom endpoint: path style, http, port kept in host; S3 Express signs for s3express', async () => {
    const r = await adapterFor({ serverAddress: 'minio.local:9000', insecure: true }).presign({ method: 'GET', objectName: 'a/b', expiresIn: 60, metadata: {}, now: NOW });
    assert.ok(r.url.startsWith('http://minio.local:9000/cache/a/b?'), r.url);
    assert.equal(verify('GET', r.url, {}, SECRET, NOW), '');
    const x = await adapterFor({ bucketName: 'c--use1-az4--x-s3', bucketLocation: '', dualStack: false }).presign({ method: 'GET', objectName: 'o', expiresIn: 60, metadata: {}, now: NOW });
    assert.ok(x.url.startsWith('https://c--use1-az4--x-s3.s3express-use1-az4.us-east-1.amazonaws.com/o?'), x.url);
    assert.match(x.url, /%2Fus-east-1%2Fs3express%2Faws4_request/);
    assert.equal(verify('GET', x.url, {}, SECRET, NOW), '');
  });

  test('SSE-C and unknown encryption values are refused with a clear error', () => {
    for (const v of ['SSE-C', 'sse-c', 'bogus']) {
      assert.throws(
        () => adapterFor({ serverSideEncryption: v as S3Settings['serverSideEncryption'] }),
        (e: unknown) => e instanceof CacheGateError && e.code === 'invalid_config' && /ServerSideEncryption/.test(e.message),
      );
    }
    assert.throws(() => adapterFor({ serverSideEncryption: 'SSE-C' as S3Settings['serverSideEncryption'] }), /SSE-C.*not supported/);
  });

  test('missing bucket name is a config error', () => {
    assert.throws(() => adapterFor({ bucketName: '' }), (e: unknown) => e instanceof CacheGateError && e.code === 'invalid_config');
  });
});

describe('iam: the SDK default credential chain', () => {
  test('environment credentials (first in the chain) sign the URL, with their session token', async () => {
    const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY, token: process.env.AWS_SESSION_TOKEN };
    process.env.AWS_ACCESS_KEY_ID = 'ASIAENVEXAMPLE';
    process.env.AWS_SECRET_ACCESS_KEY = SECRET;
    process.env.AWS_SESSION_TOKEN = 'env-token';
    try {
      const a = createS3Adapter(s3Context(s3Settings({ bucketName: 'cache', bucketLocation: 'eu-west-1', authenticationType: 'iam' })).ctx);
      const r = await a.presign({ method: 'GET', objectName: 'o', expiresIn: 60, metadata: {}, now: NOW });
      const u = new URL(r.url);
      assert.equal(u.searchParams.get('X-Amz-Credential'), 'ASIAENVEXAMPLE/20260102/eu-west-1/s3/aws4_request');
      assert.equal(u.searchParams.get('X-Amz-Security-Token'), 'env-token');
      assert.equal(verify('GET', r.url, {}, SECRET, NOW), '');
    } finally {
      for (const [k, v] of [['AWS_ACCESS_KEY_ID', saved.id], ['AWS_SECRET_ACCESS_KEY', saved.secret], ['AWS_SESSION_TOKEN', saved.token]] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });
});

describe('credential cache', () => {
  test('resolved once, refreshed only near expiry, single flight', async () => {
    let now = 0;
    let calls = 0;
    const p = cachedProvider(async () => {
      calls++;
      return { accessKeyId: `k${calls}`, secretAccessKey: 's', expiration: new Date(now + 3600_000) };
    }, () => now);
    const first = await Promise.all([p(), p(), p()]);
    assert.equal(calls, 1);
    assert.ok(first.every((c) => c.accessKeyId === 'k1'));
    now = 3600_000 - 6 * 60_000; // 6 minutes left: still fresh
    assert.equal((await p()).accessKeyId, 'k1');
    now = 3600_000 - 4 * 60_000; // 4 minutes left: refresh
    assert.equal((await p()).accessKeyId, 'k2');
    assert.equal(calls, 2);
  });
  test('a failed resolution is not cached', async () => {
    let calls = 0;
    const p = cachedProvider(async () => {
      calls++;
      if (calls === 1) throw new Error('metadata service down');
      return { accessKeyId: 'k', secretAccessKey: 's' };
    });
    await assert.rejects(p(), /metadata service down/);
    assert.equal((await p()).accessKeyId, 'k');
  });
});
