/**
 * The S3 front door's SigV4 verification and aws-chunked decoding, against AWS's published streaming
 * example (docs "Signature Calculations for the Authorization Header: Transferring Payload in Multiple
 * Chunks") and against @smithy/signature-v4, the AWS SDK's own signer.
 */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { pipeline } from 'node:stream/promises';
import { describe, it } from 'node:test';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { AwsChunkedDecoder } from '../../src/s3api/aws-chunked.ts';
import { canonicalQuery, parseQuery, readQuery } from '../../src/s3api/canonical.ts';
import { BodyVerifier, expectationsOf } from '../../src/s3api/checksums.ts';
import { S3Error } from '../../src/s3api/errors.ts';
import { verifySigV4, type SigV4Request } from '../../src/s3api/sigv4-verify.ts';

const AWS_AK = 'AKIAIOSFODNN7EXAMPLE';
const AWS_SK = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
const EXAMPLE_NOW = Date.UTC(2013, 4, 24, 0, 0, 5);

function request(method: string, url: string, headers: Record<string, string>): SigV4Request {
  const u = new URL(url);
  const lower = new Map(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  return { method, path: decodeURIComponent(u.pathname), query: readQuery(u.search.slice(1)) ?? { pairs: [], canonical: undefined, canonicalUnsigned: undefined }, header: (n) => (lower.has(n) ? [lower.get(n) as string] : undefined) };
}

const secrets = (ak: string): string | undefined => (ak === AWS_AK ? AWS_SK : undefined);

/** AWS's example: PUT /examplebucket/chunkObject.txt, 66560 bytes of 'a' in chunks of 64 KiB and 1 KiB. */
function awsExample(): { req: SigV4Request; body: Buffer } {
  const req = request('PUT', 'http://s3.amazonaws.com/examplebucket/chunkObject.txt', {
    host: 's3.amazonaws.com',
    'x-amz-date': '20130524T000000Z',
    'x-amz-storage-class': 'REDUCED_REDUNDANCY',
    authorization: `AWS4-HMAC-SHA256 Credential=${AWS_AK}/20130524/us-east-1/s3/aws4_request,SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class,Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9`,
    'x-amz-content-sha256': 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD',
    'content-encoding': 'aws-chunked',
    'x-amz-decoded-content-length': '66560',
    'content-length': '66824',
  });
  const body = Buffer.concat([
    Buffer.from('10000;chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648\r\n'), Buffer.alloc(65536, 'a'), Buffer.from('\r\n'),
    Buffer.from('400;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497\r\n'), Buffer.alloc(1024, 'a'), Buffer.from('\r\n'),
    Buffer.from('0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9\r\n\r\n'),
  ]);
  return { req, body };
}

async function decode(body: Buffer, decoder: AwsChunkedDecoder, pieces = 7): Promise<string> {
  const parts: Buffer[] = [];
  const step = Math.ceil(body.length / pieces);
  for (let i = 0; i < body.length; i += step) parts.push(body.subarray(i, i + step));
  const verifier = new BodyVerifier(expectationsOf(() => undefined, 'UNSIGNED-PAYLOAD', undefined), () => decoder.trailers);
  const [out] = await Promise.all([text(verifier), pipeline(Readable.from(parts), decoder, verifier)]);
  return out;
}

describe('SigV4 verification', () => {
  it('AWS streaming example: the seed signature verifies, every chunk signature is checked', async () => {
    const { req, body } = awsExample();
    const sig = verifySigV4(req, secrets, EXAMPLE_NOW);
    assert.equal(sig.payloadHash, 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD');
    const out = await decode(body, new AwsChunkedDecoder(sig.seed, false));
    assert.equal(out, 'a'.repeat(66560));
  });

  it('a tampered chunk, a missing chunk signature or a truncated body is refused', async () => {
    const { req, body } = awsExample();
    const sig = verifySigV4(req, secrets, EXAMPLE_NOW);
    const tampered = Buffer.from(body);
    tampered[200] = 0x62; // 'b' inside the first chunk
    await assert.rejects(decode(tampered, new AwsChunkedDecoder(sig.seed, false)), (e: S3Error) => e.s3Code === 'SignatureDoesNotMatch');
    const unsigned = Buffer.from(body.toString('latin1').replace(';chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497', ''), 'latin1');
    await assert.rejects(decode(unsigned, new AwsChunkedDecoder(sig.seed, false)), (e: S3Error) => e.s3Code === 'SignatureDoesNotMatch');
    await assert.rejects(decode(body.subarray(0, 66_000), new AwsChunkedDecoder(sig.seed, false)), (e: S3Error) => e.s3Code === 'IncompleteBody');
  });

  it('AWS streaming example with a wrong secret or a changed header: SignatureDoesNotMatch; unknown key: InvalidAccessKeyId', () => {
    const { req } = awsExample();
    assert.throws(() => verifySigV4(req, () => 'other', EXAMPLE_NOW), (e: S3Error) => e.s3Code === 'SignatureDoesNotMatch');
    assert.throws(() => verifySigV4(req, () => undefined, EXAMPLE_NOW), (e: S3Error) => e.s3Code === 'InvalidAccessKeyId');
    const changed: SigV4Request = { ...req, header: (n) => (n === 'x-amz-storage-class' ? ['STANDARD'] : req.header(n)) };
    assert.throws(() => verifySigV4(changed, secrets, EXAMPLE_NOW), (e: S3Error) => e.s3Code === 'SignatureDoesNotMatch');
  });

  it('header form: more than 15 minutes of clock skew either way is RequestTimeTooSkewed', () => {
    const { req } = awsExample();
    const at = Date.UTC(2013, 4, 24);
    verifySigV4(req, secrets, at + 14 * 60_000);
    verifySigV4(req, secrets, at - 14 * 60_000);
    assert.throws(() => verifySigV4(req, secrets, at + 16 * 60_000), (e: S3Error) => e.s3Code === 'RequestTimeTooSkewed');
    assert.throws(() => verifySigV4(req, secrets, at - 16 * 60_000), (e: S3Error) => e.s3Code === 'RequestTimeTooSkewed');
  });

  const signer = new SignatureV4({ credentials: { accessKeyId: AWS_AK, secretAccessKey: AWS_SK }, region: 'eu-central-1', service: 's3', sha256: Hash.bind(null, 'sha256'), uriEscapePath: false });
  const base = { protocol: 'http:', hostname: '127.0.0.1', port: 9000 };

  it('presigned URLs from the AWS SDK presigner verify (odd characters, x-id, signed meta header); expiry and not-yet-valid as AWS', async () => {
    const signingDate = new Date(Date.UTC(2026, 0, 2, 3, 4, 5));
    const path = "/runner-cache/runner/abc/project/1/k ey+(1)!*'~ü";
    const encoded = path.split('/').map((s) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)).join('/');
    // What runners do: the AWS SDK's presigner, the metadata header kept as a signed header (offline, no request is sent)
    const c = new S3Client({ endpoint: 'http://127.0.0.1:9000', region: 'eu-central-1', forcePathStyle: true, credentials: { accessKeyId: AWS_AK, secretAccessKey: AWS_SK }, requestChecksumCalculation: 'WHEN_REQUIRED' });
    const url = await getSignedUrl(c, new PutObjectCommand({ Bucket: 'runner-cache', Key: path.slice('/runner-cache/'.length), Metadata: { cachekey: 'k  ey' } }), { expiresIn: 3600, signingDate, unhoistableHeaders: new Set(['x-amz-meta-cachekey']) });
    const qs = url.slice(url.indexOf('?') + 1);
    assert.equal(new URL(url).pathname, encoded);
    const req = request('PUT', `http://127.0.0.1:9000${encoded}?${qs}`, { host: '127.0.0.1:9000', 'x-amz-meta-cachekey': 'k  ey' });
    const t = signingDate.getTime();
    const v = verifySigV4(req, secrets, t + 1000);
    assert.deepEqual(v.signedHeaders, ['host', 'x-amz-meta-cachekey']);
    assert.equal(v.payloadHash, 'UNSIGNED-PAYLOAD');
    verifySigV4(req, secrets, t + 3600_000);
    assert.throws(() => verifySigV4(req, secrets, t + 3601_000), (e: S3Error) => e.s3Code === 'AccessDenied' && /expired/.test(e.message));
    assert.throws(() => verifySigV4(req, secrets, t - 16 * 60_000), (e: S3Error) => e.s3Code === 'AccessDenied' && /not valid yet/.test(e.message));
    const other = request('PUT', `http://127.0.0.1:9000${encoded}?${qs}`, { host: '127.0.0.1:9000', 'x-amz-meta-cachekey': 'other' });
    assert.throws(() => verifySigV4(other, secrets, t), (e: S3Error) => e.s3Code === 'SignatureDoesNotMatch');
    const noMeta = request('PUT', `http://127.0.0.1:9000${encoded}?${qs}`, { host: '127.0.0.1:9000' });
    assert.throws(() => verifySigV4(noMeta, secrets, t), (e: S3Error) => e.s3Code === 'AccessDenied');
    const longer = request('PUT', `http://127.0.0.1:9000${encoded}?${qs.replace('X-Amz-Expires=3600', 'X-Amz-Expires=7200')}`, { host: '127.0.0.1:9000', 'x-amz-meta-cachekey': 'k  ey' });
    assert.throws(() => verifySigV4(longer, secrets, t), (e: S3Error) => e.s3Code === 'SignatureDoesNotMatch');
    // 64 characters that are not lower-case hex never equal a signature: SignatureDoesNotMatch, as AWS answers; other lengths are malformed
    const sigAt = qs.indexOf('X-Amz-Signature=') + 'X-Amz-Signature='.length;
    for (const bad of ['Z'.repeat(64), qs.slice(sigAt, sigAt + 64).toUpperCase()]) {
      const q = qs.slice(0, sigAt) + bad + qs.slice(sigAt + 64);
      assert.throws(() => verifySigV4(request('PUT', `http://127.0.0.1:9000${encoded}?${q}`, { host: '127.0.0.1:9000', 'x-amz-meta-cachekey': 'k  ey' }), secrets, t), (e: S3Error) => e.s3Code === 'SignatureDoesNotMatch');
    }
    const short = qs.slice(0, sigAt) + qs.slice(sigAt + 1);
    assert.throws(() => verifySigV4(request('PUT', `http://127.0.0.1:9000${encoded}?${short}`, { host: '127.0.0.1:9000', 'x-amz-meta-cachekey': 'k  ey' }), secrets, t), (e: S3Error) => e.s3Code === 'AuthorizationQueryParametersError');
    const week = request('GET', `http://127.0.0.1:9000${encoded}?${qs.replace('X-Amz-Expires=3600', 'X-Amz-Expires=604801')}`, { host: '127.0.0.1:9000' });
    assert.throws(() => verifySigV4(week, secrets, t), (e: S3Error) => e.s3Code === 'AuthorizationQueryParametersError');
  });

  it('header-signed requests from @smithy/signature-v4 verify, with a query and a hex payload hash', async () => {
    const signingDate = new Date();
    const signed = await signer.sign({ ...base, method: 'GET', path: '/runner-cache', query: { 'list-type': '2', prefix: 'runner/a b/', 'max-keys': '5' }, headers: { host: '127.0.0.1:9000', 'x-amz-content-sha256': 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' } }, { signingDate });
    const qs = new URLSearchParams(signed.query as Record<string, string>).toString().replace(/\+/g, '%20');
    const req = request('GET', `http://127.0.0.1:9000/runner-cache?${qs}`, signed.headers as Record<string, string>);
    const v = verifySigV4(req, secrets);
    assert.equal(v.form, 'header');
    const moved = request('GET', `http://127.0.0.1:9000/runner-cache?${qs.replace('max-keys=5', 'max-keys=6')}`, signed.headers as Record<string, string>);
    assert.throws(() => verifySigV4(moved, secrets), (e: S3Error) => e.s3Code === 'SignatureDoesNotMatch');
    assert.throws(() => verifySigV4(request('GET', 'http://127.0.0.1:9000/runner-cache', { host: 'x' }), secrets), (e: S3Error) => e.s3Code === 'AccessDenied');
  });
});

describe('canonical query from the raw query string', () => {
  it('is the string canonicalQuery() builds whenever it gives one, and gives one for canonical input', () => {
    // Parts that are canonical, parts that are not (lower-case hex, an encoded unreserved character,
    // '+', a raw reserved character, a second '=', no '='), in and out of order, the skipped name twice.
    const parts = ['a=1', 'a=2', 'b=', 'X-Amz-Signature=ff', 'X-Amz-Credential=AK%2F20260102%2Fus-east-1%2Fs3%2Faws4_request', 'x-id=PutObject',
      'k=%2f', 'k=%41', 'k=a+b', 'k=a b', 'k=a=b', 'k', '=v', 'k=%C3%BC', 'k=%E2%82%AC', 'K=%7E', 'k=~', 'a-b=1', 'a.b=%20', 'Z=%3D', '',
      '%41b=1', 'k%3D=%25', '%7E', 'k=%zz'];
    // The pairs, read the plain way: split, then decode each name and value.
    const reference = (raw: string): Array<[string, string]> | undefined => {
      try {
        return raw.split('&').filter((p) => p !== '').map((p) => {
          const eq = p.indexOf('=');
          return eq === -1 ? [decodeURIComponent(p), ''] : [decodeURIComponent(p.slice(0, eq)), decodeURIComponent(p.slice(eq + 1))];
        });
      } catch {
        return undefined;
      }
    };
    let defined = 0;
    let seed = 7;
    const next = (n: number): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
    for (let i = 0; i < 5000; i++) {
      const picked = Array.from({ length: 1 + next(5) }, () => parts[next(parts.length)]);
      if (next(2) === 0) picked.sort();
      const raw = picked.join('&');
      const pairs = parseQuery(raw);
      assert.deepEqual(pairs, reference(raw), raw);
      if (pairs === undefined) continue;
      const read = readQuery(raw);
      assert.deepEqual(read?.pairs, pairs);
      if (read?.canonical !== undefined) assert.equal(read.canonical, canonicalQuery(pairs), raw);
      const fast = read?.canonicalUnsigned;
      if (fast === undefined) continue;
      defined++;
      assert.equal(fast, canonicalQuery(pairs, 'X-Amz-Signature'), raw);
    }
    assert.ok(defined > 500, `the fast path was taken ${defined} times`);
    const sdk = 'X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Content-Sha256=UNSIGNED-PAYLOAD&X-Amz-Credential=AK%2F20261204%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20261204T162935Z&X-Amz-Expires=3600&X-Amz-Signature=ed1e&X-Amz-SignedHeaders=host%3Bx-amz-meta-cachekey&x-id=PutObject';
    assert.equal(readQuery(sdk)?.canonicalUnsigned, sdk.replace('&X-Amz-Signature=ed1e', ''));
    assert.equal(readQuery(sdk)?.canonical, sdk);
    // minio-go appends the signature last: out of order, but not part of what is signed
    const minio = sdk.replace('&X-Amz-Signature=ed1e', '') + '&X-Amz-Signature=ed1e';
    assert.equal(readQuery(minio)?.canonicalUnsigned, sdk.replace('&X-Amz-Signature=ed1e', ''));
    assert.equal(readQuery(minio)?.canonical, undefined);
    assert.equal(readQuery('b=1&a=1')?.canonicalUnsigned, undefined);
    assert.equal(readQuery('a=%2f')?.canonicalUnsigned, undefined);
    assert.equal(readQuery('')?.canonical, '');
    assert.equal(readQuery('a=%zz'), undefined);
  });

  it('a presigned URL whose query is not in canonical form (lower-case hex, unsorted) still verifies, through the re-encoding', async () => {
    const signingDate = new Date(Date.UTC(2026, 0, 2, 3, 4, 5));
    const c = new S3Client({ endpoint: 'http://127.0.0.1:9000', region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: AWS_AK, secretAccessKey: AWS_SK }, requestChecksumCalculation: 'WHEN_REQUIRED' });
    const url = await getSignedUrl(c, new PutObjectCommand({ Bucket: 'runner-cache', Key: 'runner/abc/project/1/k' }), { expiresIn: 3600, signingDate });
    const qs = url.slice(url.indexOf('?') + 1);
    const odd = qs.split('&').reverse().join('&').replace(/%2F/g, '%2f');
    assert.equal(readQuery(odd)?.canonicalUnsigned, undefined);
    for (const q of [qs, odd]) verifySigV4(request('PUT', `http://127.0.0.1:9000/runner-cache/runner/abc/project/1/k?${q}`, { host: '127.0.0.1:9000' }), secrets, signingDate.getTime());
    const swapped = qs.replace('x-id=PutObject', 'x-id=GetObject');
    assert.throws(() => verifySigV4(request('PUT', `http://127.0.0.1:9000/runner-cache/runner/abc/project/1/k?${swapped}`, { host: '127.0.0.1:9000' }), secrets, signingDate.getTime()), (e: S3Error) => e.s3Code === 'SignatureDoesNotMatch');
  });
});

describe('body checksums', () => {
  const verify = async (headers: Record<string, string>, data: Buffer, payloadHash = 'UNSIGNED-PAYLOAD'): Promise<Buffer> => {
    const v = new BodyVerifier(expectationsOf((n) => headers[n], payloadHash, data.length));
    const chunks: Buffer[] = [];
    v.on('data', (c: Buffer) => chunks.push(c));
    await pipeline(Readable.from([data.subarray(0, 3), data.subarray(3)]), v);
    return Buffer.concat(chunks);
  };
  const data = Buffer.from('123456789');
  // The check value of each algorithm for "123456789" (CRC catalogue), as base64 of the big-endian digest.
  const check = {
    crc32: Buffer.from('cbf43926', 'hex').toString('base64'),
    crc32c: Buffer.from('e3069283', 'hex').toString('base64'),
    crc64nvme: Buffer.from('ae8b14860a799888', 'hex').toString('base64'),
    sha256: Buffer.from('15e2b0d3c33891ebb0f1ef609ec419420c20e320ce94c65fbc8c3312448eb225', 'hex').toString('base64'),
  };
  for (const [algo, value] of Object.entries(check)) {
    it(`x-amz-checksum-${algo}: the catalogue check value passes, another is BadDigest and the last bytes are held back`, async () => {
      assert.ok((await verify({ [`x-amz-checksum-${algo}`]: value }, data)).equals(data));
      const bad = new BodyVerifier(expectationsOf((n) => (n === `x-amz-checksum-${algo}` ? 'AAAAAA==' : undefined), 'UNSIGNED-PAYLOAD', data.length));
      const seen: Buffer[] = [];
      bad.on('data', (c: Buffer) => seen.push(c));
      await assert.rejects(pipeline(Readable.from([data.subarray(0, 3), data.subarray(3)]), bad), (e: S3Error) => e.s3Code === 'BadDigest');
      assert.ok(Buffer.concat(seen).length < data.length, 'the whole body never went through');
    });
  }
  it('a hex x-amz-content-sha256 that does not match is XAmzContentSHA256Mismatch; a short body is IncompleteBody', async () => {
    await verify({}, data, '15e2b0d3c33891ebb0f1ef609ec419420c20e320ce94c65fbc8c3312448eb225');
    await assert.rejects(verify({}, data, '0'.repeat(64)), (e: S3Error) => e.s3Code === 'XAmzContentSHA256Mismatch');
    const short = new BodyVerifier(expectationsOf(() => undefined, 'UNSIGNED-PAYLOAD', 20));
    short.resume();
    await assert.rejects(pipeline(Readable.from([data]), short), (e: S3Error) => e.s3Code === 'IncompleteBody');
  });
  it('unsigned trailer body: the crc32 trailer is checked', async () => {
    const body = Buffer.concat([Buffer.from('9\r\n123456789\r\n0\r\n'), Buffer.from(`x-amz-checksum-crc32:${check.crc32}\r\n\r\n`)]);
    const mk = (): { d: AwsChunkedDecoder; v: BodyVerifier } => {
      const d = new AwsChunkedDecoder(undefined, true);
      return { d, v: new BodyVerifier(expectationsOf((n) => (n === 'x-amz-trailer' ? 'x-amz-checksum-crc32' : undefined), 'STREAMING-UNSIGNED-PAYLOAD-TRAILER', 9), () => d.trailers) };
    };
    let { d, v } = mk();
    const out = text(v);
    await pipeline(Readable.from([body.subarray(0, 5), body.subarray(5)]), d, v);
    assert.equal(await out, '123456789');
    ({ d, v } = mk());
    v.resume();
    await assert.rejects(pipeline(Readable.from([Buffer.from(body.toString().replace(check.crc32, check.crc32c))]), d, v), (e: S3Error) => e.s3Code === 'BadDigest');
  });
});

describe('aws-chunked trailer', () => {
  it('a trailer block over 16 KiB is IncompleteBody (its lines are kept until the body ends: an endless trailer would grow memory)', async () => {
    const lines = Array.from({ length: 2000 }, (_, i) => `x-amz-junk-${i}:${'v'.repeat(20)}\r\n`).join('');
    const body = Buffer.from(`5\r\nhello\r\n0\r\n${lines}\r\n`);
    await assert.rejects(decode(body, new AwsChunkedDecoder(undefined, true)), (e: S3Error) => e.s3Code === 'IncompleteBody' && /trailer is over/.test(e.message));
    const small = Buffer.from('5\r\nhello\r\n0\r\nx-amz-checksum-crc32:NhCmhg==\r\n\r\n');
    assert.equal(await decode(small, new AwsChunkedDecoder(undefined, true)), 'hello');
  });
});
