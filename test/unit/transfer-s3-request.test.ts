/** goCloud URL → S3 requests, and the Authorization-header signer checked against the SDK's own. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { Hash } from '@smithy/hash-node';
import { goCloudUrl } from '../../adapters/s3/gocloud.ts';
import { parseGoCloudUrl } from '../../src/transfer/gocloud.ts';
import { canonicalQuery, credentialsFromEnv, signHeaders } from '../../src/transfer/s3-sign.ts';
import { s3Settings } from '../support/rgw.ts';
import { namingVectors } from '../support/vectors.ts';

describe('goCloud URL', () => {
  it('every vectors/naming.json case resolves to an object URL, region and SSE headers', () => {
    const expected: Record<string, string> = {
      'role-bucket': 'https://role-bucket.s3.dualstack.us-west-1.amazonaws.com/key',
      'custom-bucket': 'https://custom.s3.endpoint.com/custom-bucket/key',
      'path-style-bucket': 'http://minio.example.com:8080/path-style-bucket/key',
      'dual-stack-bucket': 'https://dual-stack-bucket.s3.eu-central-1.amazonaws.com/key',
      'accelerate-bucket': 'https://accelerate-bucket.s3-accelerate.dualstack.amazonaws.com/key',
      'encrypted-bucket': 'https://encrypted-bucket.s3.dualstack.ap-southeast-1.amazonaws.com/key',
    };
    for (const c of namingVectors.goCloudUrl.cases as unknown as Array<{ bucket: string; location: string; url: string }>) {
      const loc = parseGoCloudUrl(c.url);
      assert.equal(loc.bucket, c.bucket);
      assert.equal(loc.key, 'key');
      assert.equal(loc.region, c.location);
      assert.equal(loc.objectUrl.toString(), expected[c.bucket], c.bucket);
    }
    assert.deepEqual(parseGoCloudUrl(namingVectors.goCloudUrl.cases[5].url).sseHeaders, {
      'x-amz-server-side-encryption': 'aws:kms', 'x-amz-server-side-encryption-aws-kms-key-id': 'my-kms-key-id',
    });
  });

  it('reads what the adapter writes: object names with spaces, unicode and reserved characters', () => {
    const name = 'runner/abc/project/1/key with space/ü+&=#?';
    const url = goCloudUrl(s3Settings({ serverAddress: '127.0.0.1:9000', insecure: true, bucketName: 'b' }), name, 'default');
    const loc = parseGoCloudUrl(url);
    assert.equal(loc.key, name);
    assert.equal(loc.objectUrl.origin, 'http://127.0.0.1:9000');
    assert.equal(loc.objectUrl.pathname, '/b/runner/abc/project/1/key%20with%20space/%C3%BC%2B%26%3D%23%3F');
    assert.equal(loc.region, 'default');
  });

  it('defaults: us-east-1, virtual host; dotted bucket → path style; AES256 without key id', () => {
    const loc = parseGoCloudUrl('s3://my.bucket/a/b?ssetype=S3&kmskeyid=ignored');
    assert.equal(loc.region, 'us-east-1');
    assert.equal(loc.objectUrl.toString(), 'https://s3.us-east-1.amazonaws.com/my.bucket/a/b');
    assert.deepEqual(loc.sseHeaders, { 'x-amz-server-side-encryption': 'AES256' });
    assert.equal(parseGoCloudUrl('s3://b/k?region=cn-north-1').objectUrl.host, 'b.s3.cn-north-1.amazonaws.com.cn');
  });

  it('refuses other schemes, missing parts and unknown SSE types', () => {
    assert.throws(() => parseGoCloudUrl('azblob://c/k'), /only s3:\/\//);
    assert.throws(() => parseGoCloudUrl('s3://bucket/'), /no object name/);
    assert.throws(() => parseGoCloudUrl('s3://b/k?ssetype=rot13'), /unknown ssetype/);
  });
});

describe('SigV4 Authorization header', () => {
  const credentials = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', sessionToken: 'tok/en+=' };

  for (const [name, method, url, extra] of [
    ['UploadPart', 'PUT', 'http://127.0.0.1:8000/bucket/runner/x/key%20sp?partNumber=3&uploadId=2~abc%2Bdef', { 'content-length': '5' }],
    ['CreateMultipartUpload', 'POST', 'https://b.s3.us-west-2.amazonaws.com/k?uploads=', { 'x-amz-meta-cachekey': 'a  b', 'x-amz-server-side-encryption': 'aws:kms', 'content-type': 'application/octet-stream' }],
    ['ranged GetObject', 'GET', 'https://s3.eu-west-1.amazonaws.com/bucket/%C3%BC', { range: 'bytes=0-99' }],
  ] as const) {
    it(`matches @smithy/signature-v4 byte for byte: ${name}`, async () => {
      const u = new URL(url);
      const now = Date.UTC(2026, 10, 22, 8, 30, 5);
      const region = u.hostname.includes('amazonaws') ? u.hostname.split('.').at(-3) as string : 'default';
      const ours = signHeaders({ method, url: u, headers: { ...extra }, credentials, region, now });

      const signer = new SignatureV4({ service: 's3', region, credentials, sha256: Hash.bind(null, 'sha256'), uriEscapePath: false, applyChecksum: false });
      const headers: Record<string, string> = { ...extra, host: u.host, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' };
      const req = new HttpRequest({ method, protocol: u.protocol, hostname: u.hostname, port: u.port ? Number(u.port) : undefined, path: u.pathname, query: Object.fromEntries(u.searchParams), headers });
      const signed = await signer.sign(req, {
        signingDate: new Date(now),
        unsignableHeaders: new Set(['content-length', 'content-type', 'range']),
      });
      assert.equal(ours.authorization, signed.headers.authorization);
      assert.equal(ours['x-amz-date'], signed.headers['x-amz-date']);
      assert.equal(ours['x-amz-security-token'], credentials.sessionToken);
    });
  }

  it('canonical query: sorted, RFC 3986 encoded, empty values kept', () => {
    assert.equal(canonicalQuery(new URLSearchParams('uploads=&b=2&a=x y*')), 'a=x%20y%2A&b=2&uploads=');
  });

  it('credentials come from the env file first, then the process environment', () => {
    assert.deepEqual(credentialsFromEnv({ AWS_ACCESS_KEY_ID: 'a', AWS_SECRET_ACCESS_KEY: 's', AWS_SESSION_TOKEN: '' }), { accessKeyId: 'a', secretAccessKey: 's' });
    assert.deepEqual(credentialsFromEnv({}, { AWS_ACCESS_KEY_ID: 'p', AWS_SECRET_ACCESS_KEY: 'q', AWS_SESSION_TOKEN: 't' }), { accessKeyId: 'p', secretAccessKey: 'q', sessionToken: 't' });
    assert.equal(credentialsFromEnv({ AWS_ACCESS_KEY_ID: 'a' }), undefined);
  });
});
