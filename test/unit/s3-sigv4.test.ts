/** src/sign/sigv4.ts is byte-identical to the AWS SDK's own signer (@smithy/signature-v4) on S3 presigns. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Hash } from '@smithy/hash-node';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { amzDate, presignQuery, uriEncode } from '../../src/sign/sigv4.ts';
import type { QueryPresignInput, SigningCredentials } from '../../src/sign/sigv4.ts';

async function reference(p: { method: string; path: string; headers: Record<string, string>; credentials: SigningCredentials; region: string; service: string; now: number; expiresIn: number }): Promise<string> {
  const signer = new SignatureV4({ credentials: p.credentials, region: p.region, service: p.service, sha256: Hash.bind(null, 'sha256'), uriEscapePath: false, applyChecksum: false });
  const host = p.headers.host;
  const req = new HttpRequest({ method: p.method, protocol: 'https:', hostname: host, path: p.path, headers: { ...p.headers, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' }, query: {} });
  const signed = await signer.presign(req, {
    expiresIn: p.expiresIn,
    signingDate: new Date(p.now),
    unsignableHeaders: new Set(['x-amz-content-sha256']),
    unhoistableHeaders: new Set([...Object.keys(p.headers), 'x-amz-content-sha256']),
  });
  const q = signed.query as Record<string, string>;
  return Object.keys(q).sort().map((k) => `${uriEncode(k)}=${uriEncode(q[k])}`).join('&');
}

const base = {
  credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' },
  region: 'eu-west-1', service: 's3', now: Date.UTC(2026, 4, 6, 7, 8, 9), expiresIn: 3600,
};

describe('sigv4 presignQuery', () => {
  const cases: Array<Pick<QueryPresignInput, 'method' | 'path' | 'headers'> & Partial<QueryPresignInput> & { name: string }> = [
    { name: 'GET, virtual host', method: 'GET', path: '/runner/x/project/1/key', headers: { host: 'b.s3.dualstack.eu-west-1.amazonaws.com' } },
    { name: 'HEAD, path style with port, encoded key', method: 'HEAD', path: '/b/a%20b/c%2Bd/%C3%A9', headers: { host: '127.0.0.1:9000' } },
    {
      name: 'PUT with meta, SSE, content-length (value with spaces)', method: 'PUT', path: '/k',
      headers: { host: 'h', 'x-amz-meta-cachekey': '  a   human  key ', 'x-amz-server-side-encryption': 'aws:kms', 'x-amz-server-side-encryption-aws-kms-key-id': 'arn:aws:kms:eu-west-1:1:key/x', 'content-length': '123' },
    },
    { name: 'session token', method: 'GET', path: '/k', headers: { host: 'h' }, credentials: { ...base.credentials, sessionToken: 'FwoG+token/with=chars' } },
    { name: 's3express, other region', method: 'GET', path: '/o', headers: { host: 'c--use1-az4--x-s3.s3express-use1-az4.us-east-1.amazonaws.com' }, region: 'us-east-1', service: 's3express' },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const p: QueryPresignInput = { ...base, ...c };
      assert.equal(presignQuery(p), await reference(p));
    });
  }
  test('different days, regions and secrets use their own signing keys (cache keyed correctly)', async () => {
    for (const p of [
      { ...base, method: 'GET', path: '/k', headers: { host: 'h' } },
      { ...base, method: 'GET', path: '/k', headers: { host: 'h' }, now: base.now + 86400_000 },
      { ...base, method: 'GET', path: '/k', headers: { host: 'h' }, region: 'us-east-2' },
      { ...base, method: 'GET', path: '/k', headers: { host: 'h' }, credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'other' } },
    ]) {
      assert.equal(presignQuery(p), await reference(p));
    }
  });
  test('amzDate and uriEncode', () => {
    assert.equal(amzDate(Date.UTC(2026, 0, 2, 3, 4, 5, 678)), '20260102T030405Z');
    assert.equal(uriEncode("a b+c/d!'()*~"), 'a%20b%2Bc%2Fd%21%27%28%29%2A~');
  });
});
