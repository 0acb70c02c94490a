/**
 * The S3 front door, end to end with real clients, against whatever backend `backend()` configures:
 * the stock GitLab Runner flow (AWS SDK presigner, WHEN_REQUIRED, x-amz-meta-cachekey signed as a
 * header, x-id, path style), the project's helper on those URLs, /v1/presign meeting the same
 * objects, @aws-sdk/client-s3 with its default checksums, and every refusal.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import {
  DeleteObjectCommand, GetBucketLocationCommand, GetObjectCommand, HeadBucketCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client, UploadPartCommand, CompleteMultipartUploadCommand,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { stagingRoot, sweepAbandoned } from '../../src/s3api/multipart.ts';
import { download, upload } from '../../src/transfer/index.ts';
import { presign, startTestService, type TestService } from './service.ts';

const BIN = resolve(import.meta.dirname, '../../bin/cachegate.js');
export const TOKEN = 'glrt-frontdoor-runner1';
export const OTHER_TOKEN = 'glrt-otherrunner-2';
const AK = 'FRONTDOORKEY0001';
const SK = 'front-door-secret-0001';
const RO_AK = 'FRONTDOORREADONLY';
const RO_SK = 'front-door-secret-ro01';
const OTHER_AK = 'FRONTDOORKEY0002';
const OTHER_SK = 'front-door-secret-0002';
const SHORT = 'frontdoor'; // short token of TOKEN: glrt- stripped, 9 characters
const OTHER_SHORT = 'otherrunn';
export const MAX = 3_000_000;

export interface BackendConfig {
  /** The [runners.cache] body (Type and backend table) for a runner. */
  cache: string;
}

function client(endpoint: string, accessKeyId = AK, secretAccessKey = SK, extra: Partial<ConstructorParameters<typeof S3Client>[0]> = {}): S3Client {
  return new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId, secretAccessKey }, maxAttempts: 1, ...extra });
}

/** What a stock runner (s3v2 adapter) hands its helper: presigned path-style URLs, checksums only when required. */
export function runnerPresigner(endpoint: string, accessKeyId = AK, secretAccessKey = SK): S3Client {
  return client(endpoint, accessKeyId, secretAccessKey, { requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
}

function runHelper(args: string[], cwd: string): Promise<{ status: number | null; out: string }> {
  return new Promise((res) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' } });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('close', (status) => res({ status, out }));
  });
}

/** A raw HTTP request (fetch would add or reorder what we want to send byte for byte). */
export function raw(url: string, opts: { method: string; headers?: Record<string, string>; body?: Buffer }): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((res, rej) => {
    const req = httpRequest(url, { method: opts.method, headers: opts.headers }, (r) => {
      const chunks: Buffer[] = [];
      r.on('data', (c: Buffer) => chunks.push(c));
      r.on('end', () => res({ status: r.statusCode ?? 0, headers: r.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', rej);
    req.end(opts.body);
  });
}

const code = (xml: string): string | undefined => /<Code>([^<]+)<\/Code>/.exec(xml)?.[1];

export function frontDoorSuite(name: string, backend: () => Promise<BackendConfig>, after2: () => Promise<void> = async () => undefined): void {
  describe(`S3 front door on ${name}`, () => {
    let svc: TestService;
    let s3: string;
    let dir: string;
    const objectName = (key: string, project = '42'): string => `runner/${SHORT}/project/${project}/${key}`;

    before(async () => {
      const b = await backend();
      svc = await startTestService({
        toml: `
[[runners]]
  name = "r1"
  token = "${TOKEN}"
  [runners.cache]
    MaxUploadedArchiveSize = ${MAX}
${b.cache}
[[runners]]
  name = "r2"
  token = "${OTHER_TOKEN}"
  [runners.cache]
${b.cache}
[cachegate.s3_api]
  listen = "127.0.0.1:0"
  [[cachegate.s3_api.keys]]
    access_key = "${AK}"
    secret_key = "${SK}"
    runner = "r1"
  [[cachegate.s3_api.keys]]
    access_key = "${RO_AK}"
    secret_key = "${RO_SK}"
    runner = "r1"
    read_only = true
  [[cachegate.s3_api.keys]]
    access_key = "${OTHER_AK}"
    secret_key = "${OTHER_SK}"
    runner = "r2"
`,
      });
      assert.ok(svc.s3ApiUrl, 'the front door listens');
      s3 = svc.s3ApiUrl as string;
      dir = await mkdtemp(join(tmpdir(), 'cg-s3api-'));
    });
    after(async () => {
      await svc?.stop();
      await rm(dir, { recursive: true, force: true });
      await after2();
    });

    it('stock runner flow: presigned PUT (cachekey signed as a header, x-id), HEAD with Last-Modified, GET, Range 0-0 → 206', async () => {
      const c = runnerPresigner(s3);
      const key = objectName('runner-flow/main');
      const put = await getSignedUrl(c, new PutObjectCommand({ Bucket: 'runner-cache', Key: key, Metadata: { cachekey: 'runner-flow/main' } }), { expiresIn: 3600, unhoistableHeaders: new Set(['x-amz-meta-cachekey']) });
      const u = new URL(put);
      assert.equal(u.pathname, `/runner-cache/${key}`, 'path style');
      assert.equal(u.searchParams.get('x-id'), 'PutObject');
      assert.equal(u.searchParams.get('X-Amz-SignedHeaders'), 'host;x-amz-meta-cachekey');
      const data = randomBytes(200_000);
      const r = await raw(put, { method: 'PUT', headers: { 'x-amz-meta-cachekey': 'runner-flow/main', 'Content-Type': 'application/octet-stream', 'Last-Modified': new Date().toUTCString(), 'Content-Length': String(data.length) }, body: data });
      assert.equal(r.status, 200, r.body);
      assert.match(String(r.headers.etag), /^".+"$/);
      const head = await getSignedUrl(c, new HeadObjectCommand({ Bucket: 'runner-cache', Key: key }), { expiresIn: 3600 });
      const h = await fetch(head, { method: 'HEAD' });
      assert.equal(h.status, 200);
      assert.ok(!Number.isNaN(Date.parse(h.headers.get('last-modified') as string)), 'parseable Last-Modified');
      assert.equal(h.headers.get('content-length'), String(data.length));
      assert.equal(h.headers.get('x-amz-meta-cachekey'), 'runner-flow/main');
      assert.ok(h.headers.get('etag'));
      const get = await getSignedUrl(c, new GetObjectCommand({ Bucket: 'runner-cache', Key: key }), { expiresIn: 3600 });
      const g = await fetch(get);
      assert.equal(g.status, 200);
      assert.ok(Buffer.from(await g.arrayBuffer()).equals(data));
      assert.ok(g.headers.get('last-modified'));
      const p = await fetch(get, { headers: { Range: 'bytes=0-0' } });
      assert.equal(p.status, 206);
      assert.equal(p.headers.get('content-range'), `bytes 0-0/${data.length}`);
      assert.equal(Buffer.from(await p.arrayBuffer())[0], data[0]);
    });

    it('cache-archiver uploads to the runner presigned PUT, cache-extractor restores from the runner presigned GET; /v1/presign finds the same object', async () => {
      const c = runnerPresigner(s3);
      const key = objectName('helper/one');
      const tree = join(dir, 'tree');
      await mkdir(join(tree, 'build/deep'), { recursive: true });
      for (let i = 0; i < 20; i++) await writeFile(join(tree, 'build', `f${i}.txt`), `file ${i}\n`.repeat(i + 1));
      await writeFile(join(tree, 'build/deep/blob.bin'), randomBytes(400_000));
      const put = await getSignedUrl(c, new PutObjectCommand({ Bucket: 'runner-cache', Key: key, Metadata: { cachekey: 'helper/one' } }), { expiresIn: 600, unhoistableHeaders: new Set(['x-amz-meta-cachekey']) });
      const archived = await runHelper(['cache-archiver', '--file', join(dir, 'archive', 'cache.zip'), '--path', 'build', '--url', put, '--header', 'x-amz-meta-cachekey: helper/one'], tree);
      assert.equal(archived.status, 0, archived.out);
      const get = await getSignedUrl(c, new GetObjectCommand({ Bucket: 'runner-cache', Key: key }), { expiresIn: 600 });
      const head = await getSignedUrl(c, new HeadObjectCommand({ Bucket: 'runner-cache', Key: key }), { expiresIn: 600 });
      const work = join(dir, 'extract');
      await mkdir(work, { recursive: true });
      const out = await runHelper(['cache-extractor', '--file', join(work, 'cache.zip'), '--url', get, '--head-url', head], work);
      assert.equal(out.status, 0, out.out);
      assert.ok((await readFile(join(work, 'build/deep/blob.bin'))).equals(await readFile(join(tree, 'build/deep/blob.bin'))));
      assert.equal(await readFile(join(work, 'build/f7.txt'), 'utf8'), 'file 7\n'.repeat(8));
      assert.equal(await readFile(join(work, 'metadata.json'), 'utf8'), '{"cachekey":"helper/one"}');
      // the same token, project and key through /v1/presign
      const d = await presign(svc, { operation: 'download', key: 'helper/one', projectId: '42' }, TOKEN);
      assert.equal(d.status, 200, JSON.stringify(d.json));
      assert.equal(d.json.objectName, key);
      const viaService = join(dir, 'via-service', 'cache.zip');
      assert.equal((await download({ file: viaService, url: d.json.url })).status, 'downloaded');
      assert.ok((await readFile(viaService)).equals(await readFile(join(dir, 'archive', 'cache.zip'))));
    });

    it('the reverse: uploaded through /v1/presign, read by the runner presigned GET and by client-s3', async () => {
      const data = randomBytes(120_000);
      const file = join(dir, 'rev.zip');
      await writeFile(file, data);
      const u = await presign(svc, { operation: 'upload', key: 'reverse/k', projectId: '42', contentLength: data.length }, TOKEN);
      assert.equal(u.status, 200, JSON.stringify(u.json));
      assert.equal((await upload({ file, url: u.json.url, headers: u.json.headers })).status, 'uploaded');
      const get = await getSignedUrl(runnerPresigner(s3), new GetObjectCommand({ Bucket: 'runner-cache', Key: objectName('reverse/k') }), { expiresIn: 600 });
      const out = join(dir, 'rev-out', 'cache.zip');
      assert.equal((await download({ file: out, url: get })).status, 'downloaded');
      assert.ok((await readFile(out)).equals(data));
      const got = await client(s3).send(new GetObjectCommand({ Bucket: 'runner-cache', Key: objectName('reverse/k') }));
      assert.equal(got.Metadata?.cachekey, 'reverse/k');
      assert.ok(Buffer.from(await (got.Body as { transformToByteArray: () => Promise<Uint8Array> }).transformToByteArray()).equals(data));
    });

    it('@aws-sdk/client-s3 with default checksums: buffer and streamed bodies (aws-chunked trailers), every checksum algorithm, list, delete', async () => {
      const c = client(s3);
      for (const algo of [undefined, 'CRC32', 'CRC32C', 'CRC64NVME', 'SHA256', 'SHA1'] as const) {
        const key = objectName(`sdk/${algo ?? 'default'}`);
        const data = randomBytes(700_000);
        await c.send(new PutObjectCommand({ Bucket: 'runner-cache', Key: key, Body: data, Metadata: { cachekey: 'x' }, ...(algo ? { ChecksumAlgorithm: algo } : {}) }));
        // a stream of unknown length: the SDK sends STREAMING-UNSIGNED-PAYLOAD-TRAILER with a trailer checksum
        await c.send(new PutObjectCommand({ Bucket: 'runner-cache', Key: `${key}-stream`, Body: Readable.from([data.subarray(0, 300_000), data.subarray(300_000)]), ContentLength: data.length, ...(algo ? { ChecksumAlgorithm: algo } : {}) }));
        for (const k of [key, `${key}-stream`]) {
          const got = await c.send(new GetObjectCommand({ Bucket: 'runner-cache', Key: k }));
          const body = Buffer.from(await (got.Body as { transformToByteArray: () => Promise<Uint8Array> }).transformToByteArray());
          assert.equal(createHash('sha256').update(body).digest('hex'), createHash('sha256').update(data).digest('hex'), `${k} stored as sent`);
        }
      }
      const head = await c.send(new HeadObjectCommand({ Bucket: 'runner-cache', Key: objectName('sdk/default') }));
      assert.equal(head.ContentLength, 700_000);
      assert.equal(head.Metadata?.cachekey, 'x');
      const listed = await c.send(new ListObjectsV2Command({ Bucket: 'runner-cache', Prefix: objectName('sdk/') }));
      assert.equal(listed.KeyCount, 12);
      const paged = await c.send(new ListObjectsV2Command({ Bucket: 'runner-cache', Prefix: objectName('sdk/'), MaxKeys: 5 }));
      assert.equal(paged.Contents?.length, 5);
      assert.equal(paged.IsTruncated, true);
      const rest = await c.send(new ListObjectsV2Command({ Bucket: 'runner-cache', Prefix: objectName('sdk/'), ContinuationToken: paged.NextContinuationToken }));
      assert.equal(rest.Contents?.length, 7);
      const folders = await c.send(new ListObjectsV2Command({ Bucket: 'runner-cache', Prefix: `runner/${SHORT}/project/`, Delimiter: '/' }));
      assert.ok((folders.CommonPrefixes ?? []).some((p) => p.Prefix === `runner/${SHORT}/project/42/`), JSON.stringify(folders.CommonPrefixes));
      await c.send(new DeleteObjectCommand({ Bucket: 'runner-cache', Key: objectName('sdk/CRC32') }));
      await assert.rejects(c.send(new HeadObjectCommand({ Bucket: 'runner-cache', Key: objectName('sdk/CRC32') })), (e: Error & { $metadata?: { httpStatusCode?: number } }) => e.$metadata?.httpStatusCode === 404);
      await assert.rejects(c.send(new GetObjectCommand({ Bucket: 'runner-cache', Key: objectName('sdk/CRC32') })), { name: 'NoSuchKey' });
      await c.send(new HeadBucketCommand({ Bucket: 'runner-cache' }));
      const loc = await c.send(new GetBucketLocationCommand({ Bucket: 'runner-cache' }));
      assert.equal(loc.LocationConstraint ?? '', '');
    });

    it('refusals: tampered, expired, other namespace, other key, unknown key, read-only, oversize, bad checksum, other bucket — nothing stored', async () => {
      const c = runnerPresigner(s3);
      const key = objectName('refuse/k');
      const data = randomBytes(1000);
      const put = await getSignedUrl(c, new PutObjectCommand({ Bucket: 'runner-cache', Key: key }), { expiresIn: 600 });
      const tampered = put.replace(/X-Amz-Signature=([0-9a-f])/, (_m, d: string) => `X-Amz-Signature=${d === '0' ? '1' : '0'}`);
      let r = await raw(tampered, { method: 'PUT', body: data });
      assert.equal(r.status, 403);
      assert.equal(code(r.body), 'SignatureDoesNotMatch');
      assert.match(r.body, /<RequestId>[^<]+<\/RequestId>/);
      assert.ok(!r.body.includes(SK), 'no secret in the answer');
      r = await raw(put.replace(/X-Amz-Expires=\d+/, 'X-Amz-Expires=700'), { method: 'PUT', body: data });
      assert.equal(code(r.body), 'SignatureDoesNotMatch', 'edited expiry');
      const old = await getSignedUrl(c, new PutObjectCommand({ Bucket: 'runner-cache', Key: key }), { expiresIn: 60, signingDate: new Date(Date.now() - 120_000) });
      r = await raw(old, { method: 'PUT', body: data });
      assert.equal(r.status, 403);
      assert.equal(code(r.body), 'AccessDenied');
      assert.match(r.body, /expired/);
      const other = await getSignedUrl(c, new PutObjectCommand({ Bucket: 'runner-cache', Key: 'runner/someoneel/project/42/refuse/k' }), { expiresIn: 600 });
      r = await raw(other, { method: 'PUT', body: data });
      assert.equal(r.status, 403);
      assert.equal(code(r.body), 'AccessDenied');
      const sharedName = await getSignedUrl(c, new GetObjectCommand({ Bucket: 'runner-cache', Key: 'project/42/refuse/k' }), { expiresIn: 600 });
      assert.equal(code((await raw(sharedName, { method: 'GET' })).body), 'AccessDenied');
      const dotdot = await raw(`${s3}/runner-cache/runner/${SHORT}/project/../../x`, { method: 'GET' });
      assert.notEqual(dotdot.status, 200);
      const wrongSecret = await getSignedUrl(runnerPresigner(s3, AK, 'not-the-secret'), new PutObjectCommand({ Bucket: 'runner-cache', Key: key }), { expiresIn: 600 });
      assert.equal(code((await raw(wrongSecret, { method: 'PUT', body: data })).body), 'SignatureDoesNotMatch');
      const otherKey = await getSignedUrl(runnerPresigner(s3, OTHER_AK, OTHER_SK), new PutObjectCommand({ Bucket: 'runner-cache', Key: key }), { expiresIn: 600 });
      assert.equal(code((await raw(otherKey, { method: 'PUT', body: data })).body), 'AccessDenied', 'r2 may not write in r1\'s namespace');
      const unknown = await getSignedUrl(runnerPresigner(s3, 'NOSUCHKEY', 'x'), new GetObjectCommand({ Bucket: 'runner-cache', Key: key }), { expiresIn: 600 });
      assert.equal(code((await raw(unknown, { method: 'GET' })).body), 'InvalidAccessKeyId');
      const ro = runnerPresigner(s3, RO_AK, RO_SK);
      const roPut = await getSignedUrl(ro, new PutObjectCommand({ Bucket: 'runner-cache', Key: key }), { expiresIn: 600 });
      r = await raw(roPut, { method: 'PUT', body: data });
      assert.equal(r.status, 403);
      assert.equal(code(r.body), 'AccessDenied');
      await assert.rejects(client(s3, RO_AK, RO_SK).send(new DeleteObjectCommand({ Bucket: 'runner-cache', Key: objectName('refuse/none') })), { name: 'AccessDenied' });
      await assert.rejects(client(s3).send(new ListObjectsV2Command({ Bucket: 'runner-cache' })), { name: 'AccessDenied' });
      await assert.rejects(client(s3).send(new GetObjectCommand({ Bucket: 'other-bucket', Key: key })), { name: 'NoSuchBucket' });
      const skewed = client(s3, AK, SK, { systemClockOffset: -20 * 60 * 1000 });
      await assert.rejects(skewed.send(new HeadBucketCommand({ Bucket: 'runner-cache' })), (e: Error & { $metadata?: { httpStatusCode?: number } }) => e.$metadata?.httpStatusCode === 403);
      // oversize: declared, and streamed past the cap without a length
      const big = randomBytes(MAX + 1);
      const bigPut = await getSignedUrl(c, new PutObjectCommand({ Bucket: 'runner-cache', Key: key }), { expiresIn: 600 });
      r = await raw(bigPut, { method: 'PUT', body: big });
      assert.equal(code(r.body), 'EntityTooLarge');
      await assert.rejects(client(s3).send(new PutObjectCommand({ Bucket: 'runner-cache', Key: key, Body: Readable.from([big.subarray(0, 2_000_000), big.subarray(2_000_000)]), ContentLength: big.length })), { name: 'EntityTooLarge' });
      r = await raw(await getSignedUrl(c, new PutObjectCommand({ Bucket: 'runner-cache', Key: key }), { expiresIn: 600 }), { method: 'PUT', headers: { 'Transfer-Encoding': 'chunked' }, body: big });
      assert.equal(code(r.body), 'EntityTooLarge', 'a chunked body is counted and cut at the cap');
      // bad checksum: a header that does not match the body
      r = await raw(await getSignedUrl(c, new PutObjectCommand({ Bucket: 'runner-cache', Key: key }), { expiresIn: 600 }), { method: 'PUT', headers: { 'x-amz-checksum-crc32': 'AAAAAA==' }, body: data });
      assert.equal(code(r.body), 'BadDigest');
      r = await raw(await getSignedUrl(c, new PutObjectCommand({ Bucket: 'runner-cache', Key: key }), { expiresIn: 600 }), { method: 'PUT', headers: { 'content-md5': createHash('md5').update('other').digest('base64') }, body: data });
      assert.equal(code(r.body), 'BadDigest');
      await assert.rejects(client(s3).send(new HeadObjectCommand({ Bucket: 'runner-cache', Key: key })), (e: Error & { $metadata?: { httpStatusCode?: number } }) => e.$metadata?.httpStatusCode === 404, 'nothing was stored by any refused PUT');
    });

    it('non-ASCII x-amz-meta-* as S3 treats it: raw UTF-8 (curl) or an RFC 2047 word (boto3) is stored as its Unicode and read back RFC 2047-encoded; multipart too; no 5xx', async () => {
      const word = 'café €5 日本語 ✓';
      const encoded = `=?UTF-8?B?${Buffer.from(word, 'utf8').toString('base64')}?=`;
      const curl = (args: string[]): Promise<{ status: number | null; out: string }> => new Promise((res) => {
        const child = spawn('curl', ['-sS', '--aws-sigv4', 'aws:amz:us-east-1:s3', '--user', `${AK}:${SK}`, '-H', 'x-amz-content-sha256: UNSIGNED-PAYLOAD', ...args]);
        let out = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString('latin1')));
        child.stderr.on('data', (d: Buffer) => (out += d.toString('latin1')));
        child.on('close', (status) => res({ status, out }));
      });
      const key = objectName('meta/utf8');
      const url = `${s3}/runner-cache/${key}`;
      // curl sends the header's UTF-8 bytes as they are (what the Go SDK and the JS SDK's signer do too)
      const put = await curl(['-X', 'PUT', '-o', '/dev/null', '-w', '%{http_code}', '-H', `x-amz-meta-word: ${word}`, '-H', 'x-amz-meta-plain: ascii value', '--data-binary', 'meta body', url]);
      assert.equal(put.out, '200', put.out);
      for (const method of ['HEAD', 'GET']) {
        const r = await curl([method === 'HEAD' ? '-I' : '-i', url]);
        assert.match(r.out, /^HTTP\/1\.1 200/, r.out);
        assert.ok(r.out.includes(`\r\nx-amz-meta-word: ${encoded}\r\n`), `${method}: ${r.out}`);
        assert.ok(r.out.includes('\r\nx-amz-meta-plain: ascii value\r\n'), `${method}: ${r.out}`);
      }
      // boto3 refuses non-ASCII metadata itself (botocore's validate_ascii_metadata): its users send the encoded word
      const py = `
import boto3, sys
from botocore.config import Config
s3 = boto3.client('s3', endpoint_url=sys.argv[1], aws_access_key_id=sys.argv[2], aws_secret_access_key=sys.argv[3], region_name='us-east-1', config=Config(s3={'addressing_style': 'path'}, retries={'max_attempts': 1}))
s3.put_object(Bucket='runner-cache', Key=sys.argv[4], Body=b'boto3 meta', Metadata={'word': sys.argv[5], 'hello': '=?UTF-8?B?aGVsbG8=?='})
h = s3.head_object(Bucket='runner-cache', Key=sys.argv[4])['Metadata']
g = s3.get_object(Bucket='runner-cache', Key=sys.argv[4])['Metadata']
print(h['word'] == sys.argv[5] and g['word'] == sys.argv[5], h['hello'], g['hello'])
try:
    s3.put_object(Bucket='runner-cache', Key=sys.argv[4] + '-raw', Body=b'x', Metadata={'word': 'caf\u00e9'})
except Exception as e:
    print(type(e).__name__)
`;
      const pyFile = join(dir, 'meta.py');
      await writeFile(pyFile, py);
      const boto = await new Promise<string>((res) => {
        const child = spawn('/usr/bin/python3', [pyFile, s3, AK, SK, objectName('meta/boto3'), encoded]);
        let out = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.stderr.on('data', (d: Buffer) => (out += d.toString()));
        child.on('close', () => res(out));
      });
      assert.equal(boto.trim(), 'True hello hello\nParamValidationError', boto);
      // multipart: the metadata of CreateMultipartUpload, the same way
      const c = client(s3);
      const mkey = objectName('meta/multipart');
      const init = await curl(['-X', 'POST', '-H', `x-amz-meta-word: ${word}`, `${s3}/runner-cache/${mkey}?uploads=`]);
      const uploadId = /<UploadId>([^<]+)<\/UploadId>/.exec(init.out)?.[1];
      assert.ok(uploadId, init.out);
      const part = await c.send(new UploadPartCommand({ Bucket: 'runner-cache', Key: mkey, UploadId: uploadId, PartNumber: 1, Body: 'one part' }));
      await c.send(new CompleteMultipartUploadCommand({ Bucket: 'runner-cache', Key: mkey, UploadId: uploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag }] } }));
      const head = await c.send(new HeadObjectCommand({ Bucket: 'runner-cache', Key: mkey }));
      assert.equal(head.Metadata?.word, encoded);
      // control characters: a raw CR/LF cannot split the header (Node refuses it), a tab is encoded like any non-printable value
      const tab = await curl(['-X', 'PUT', '-o', '/dev/null', '-w', '%{http_code}', '-H', 'x-amz-meta-tab: a\tb', '--data-binary', 'x', `${s3}/runner-cache/${objectName('meta/tab')}`]);
      assert.equal(tab.out, '200');
      const tabHead = await c.send(new HeadObjectCommand({ Bucket: 'runner-cache', Key: objectName('meta/tab') }));
      assert.equal(tabHead.Metadata?.tab, `=?UTF-8?B?${Buffer.from('a\tb').toString('base64')}?=`);
      c.destroy();
    });

    it('virtual-host style (<bucket>.<host>): presigned PUT and GET, and another bucket in the host is NoSuchBucket', async () => {
      const port = new URL(s3).port;
      const vhost = client(`http://s3.test:${port}`, AK, SK, { forcePathStyle: false, requestChecksumCalculation: 'WHEN_REQUIRED' });
      const key = objectName('vhost/k');
      const put = new URL(await getSignedUrl(vhost, new PutObjectCommand({ Bucket: 'runner-cache', Key: key }), { expiresIn: 600 }));
      assert.equal(put.host, `runner-cache.s3.test:${port}`);
      assert.equal(put.pathname, `/${key}`);
      const data = randomBytes(5000);
      // sent to the front door's address with the virtual host's name, as DNS would route it
      let r = await raw(`${s3}${put.pathname}${put.search}`, { method: 'PUT', headers: { host: put.host }, body: data });
      assert.equal(r.status, 200, r.body);
      const get = new URL(await getSignedUrl(vhost, new GetObjectCommand({ Bucket: 'runner-cache', Key: key }), { expiresIn: 600 }));
      r = await raw(`${s3}${get.pathname}${get.search}`, { method: 'GET', headers: { host: get.host } });
      assert.equal(r.status, 200);
      assert.equal(r.body, data.toString('utf8'));
      const other = new URL(await getSignedUrl(vhost, new GetObjectCommand({ Bucket: 'other-bucket', Key: key }), { expiresIn: 600 }));
      r = await raw(`${s3}${other.pathname}${other.search}`, { method: 'GET', headers: { host: other.host } });
      assert.equal(code(r.body), 'NoSuchBucket');
    });

    it('a bad trailer checksum (aws-chunked, unsigned trailer) is BadDigest and stores nothing', async () => {
      const key = objectName('refuse/trailer');
      const data = Buffer.from('hello trailer world');
      const body = Buffer.concat([Buffer.from(`${data.length.toString(16)}\r\n`), data, Buffer.from('\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n')]);
      // signed as client-s3 signs a trailer upload: the payload hash is the STREAMING marker
      const { SignatureV4 } = await import('@smithy/signature-v4');
      const { Hash } = await import('@smithy/hash-node');
      const signer = new SignatureV4({ credentials: { accessKeyId: AK, secretAccessKey: SK }, region: 'us-east-1', service: 's3', sha256: Hash.bind(null, 'sha256'), uriEscapePath: false });
      const u = new URL(`${s3}/runner-cache/${key}`);
      const signed = await signer.sign({
        method: 'PUT', protocol: 'http:', hostname: u.hostname, port: Number(u.port), path: u.pathname, query: {},
        headers: { host: u.host, 'x-amz-content-sha256': 'STREAMING-UNSIGNED-PAYLOAD-TRAILER', 'content-encoding': 'aws-chunked', 'x-amz-trailer': 'x-amz-checksum-crc32', 'x-amz-decoded-content-length': String(data.length), 'content-length': String(body.length) },
      });
      const r = await raw(u.href, { method: 'PUT', headers: signed.headers as Record<string, string>, body });
      assert.equal(r.status, 400, r.body);
      assert.equal(code(r.body), 'BadDigest');
      await assert.rejects(client(s3).send(new HeadObjectCommand({ Bucket: 'runner-cache', Key: key })), (e: Error & { $metadata?: { httpStatusCode?: number } }) => e.$metadata?.httpStatusCode === 404);
    });

    it('multipart: 21 MB in 5 MiB parts with lib-storage (default checksums), then by hand: ListParts, Complete, Abort, part and total caps, order and ETag checks', async () => {
      const big = client(s3, OTHER_AK, OTHER_SK);
      const key = `runner/${OTHER_SHORT}/project/9/multi/lib-storage`;
      const data = randomBytes(21 * 1024 * 1024);
      const { Upload } = await import('@aws-sdk/lib-storage');
      const up = new Upload({ client: big, params: { Bucket: 'runner-cache', Key: key, Body: Readable.from([data.subarray(0, 7_000_000), data.subarray(7_000_000)]), Metadata: { cachekey: 'multi' } }, partSize: 5 * 1024 * 1024, queueSize: 2 });
      await up.done();
      const got = await big.send(new GetObjectCommand({ Bucket: 'runner-cache', Key: key }));
      assert.equal(got.Metadata?.cachekey, 'multi');
      const body = Buffer.from(await (got.Body as { transformToByteArray: () => Promise<Uint8Array> }).transformToByteArray());
      assert.ok(body.equals(data), 'the object is the parts in order');

      const { CreateMultipartUploadCommand, UploadPartCommand, CompleteMultipartUploadCommand, AbortMultipartUploadCommand, ListPartsCommand } = await import('@aws-sdk/client-s3');
      const k2 = `runner/${OTHER_SHORT}/project/9/multi/by-hand`;
      const { UploadId } = await big.send(new CreateMultipartUploadCommand({ Bucket: 'runner-cache', Key: k2 }));
      const p1 = data.subarray(0, 5 * 1024 * 1024);
      const p2 = data.subarray(5 * 1024 * 1024, 6 * 1024 * 1024);
      const e1 = (await big.send(new UploadPartCommand({ Bucket: 'runner-cache', Key: k2, UploadId, PartNumber: 1, Body: p1 }))).ETag as string;
      const e2 = (await big.send(new UploadPartCommand({ Bucket: 'runner-cache', Key: k2, UploadId, PartNumber: 2, Body: p2 }))).ETag as string;
      assert.equal(e1, `"${createHash('md5').update(p1).digest('hex')}"`);
      const listed = await big.send(new ListPartsCommand({ Bucket: 'runner-cache', Key: k2, UploadId }));
      assert.deepEqual(listed.Parts?.map((p) => [p.PartNumber, p.Size]), [[1, p1.length], [2, p2.length]]);
      await assert.rejects(big.send(new HeadObjectCommand({ Bucket: 'runner-cache', Key: k2 })), (e: Error & { $metadata?: { httpStatusCode?: number } }) => e.$metadata?.httpStatusCode === 404, 'nothing in the backend before Complete');
      await assert.rejects(big.send(new CompleteMultipartUploadCommand({ Bucket: 'runner-cache', Key: k2, UploadId, MultipartUpload: { Parts: [{ PartNumber: 2, ETag: e2 }, { PartNumber: 1, ETag: e1 }] } })), { name: 'InvalidPartOrder' });
      await assert.rejects(big.send(new CompleteMultipartUploadCommand({ Bucket: 'runner-cache', Key: k2, UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: e2 }] } })), { name: 'InvalidPart' });
      await assert.rejects(big.send(new CompleteMultipartUploadCommand({ Bucket: 'runner-cache', Key: k2, UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: e1 }, { PartNumber: 3, ETag: e2 }] } })), { name: 'InvalidPart' });
      await big.send(new CompleteMultipartUploadCommand({ Bucket: 'runner-cache', Key: k2, UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: e1 }, { PartNumber: 2, ETag: e2 }] } }));
      const whole = await big.send(new GetObjectCommand({ Bucket: 'runner-cache', Key: k2 }));
      assert.ok(Buffer.from(await (whole.Body as { transformToByteArray: () => Promise<Uint8Array> }).transformToByteArray()).equals(data.subarray(0, 6 * 1024 * 1024)));
      await assert.rejects(big.send(new ListPartsCommand({ Bucket: 'runner-cache', Key: k2, UploadId })), { name: 'NoSuchUpload' }, 'completed uploads are gone');

      const { UploadId: aborted } = await big.send(new CreateMultipartUploadCommand({ Bucket: 'runner-cache', Key: k2 }));
      await big.send(new UploadPartCommand({ Bucket: 'runner-cache', Key: k2, UploadId: aborted, PartNumber: 1, Body: p2 }));
      await big.send(new AbortMultipartUploadCommand({ Bucket: 'runner-cache', Key: k2, UploadId: aborted }));
      await assert.rejects(big.send(new UploadPartCommand({ Bucket: 'runner-cache', Key: k2, UploadId: aborted, PartNumber: 2, Body: p2 })), { name: 'NoSuchUpload' });
      // another runner's key cannot continue (or even see) this runner's upload
      const { UploadId: mine } = await big.send(new CreateMultipartUploadCommand({ Bucket: 'runner-cache', Key: k2 }));
      await assert.rejects(client(s3).send(new ListPartsCommand({ Bucket: 'runner-cache', Key: k2, UploadId: mine })), { name: 'AccessDenied' });

      // r1's MaxUploadedArchiveSize (3 MB) holds for each part and for the total
      const capped = client(s3);
      const k3 = objectName('multi/capped');
      const { UploadId: cappedId } = await capped.send(new CreateMultipartUploadCommand({ Bucket: 'runner-cache', Key: k3 }));
      await assert.rejects(capped.send(new UploadPartCommand({ Bucket: 'runner-cache', Key: k3, UploadId: cappedId, PartNumber: 1, Body: data.subarray(0, MAX + 1) })), { name: 'EntityTooLarge' });
      await capped.send(new UploadPartCommand({ Bucket: 'runner-cache', Key: k3, UploadId: cappedId, PartNumber: 1, Body: data.subarray(0, 2_000_000) }));
      await assert.rejects(capped.send(new UploadPartCommand({ Bucket: 'runner-cache', Key: k3, UploadId: cappedId, PartNumber: 2, Body: data.subarray(0, 1_500_000) })), { name: 'EntityTooLarge' }, 'the staged total counts');
      await assert.rejects(capped.send(new HeadObjectCommand({ Bucket: 'runner-cache', Key: k3 })), (e: Error & { $metadata?: { httpStatusCode?: number } }) => e.$metadata?.httpStatusCode === 404);
      await assert.rejects(client(s3, RO_AK, RO_SK).send(new CreateMultipartUploadCommand({ Bucket: 'runner-cache', Key: k3 })), { name: 'AccessDenied' });
    });

    it('abandoned multipart uploads are removed after multipart_max_age', async () => {
      const { CreateMultipartUploadCommand, ListPartsCommand } = await import('@aws-sdk/client-s3');
      const c = client(s3);
      const key = objectName('multi/abandoned');
      const { UploadId } = await c.send(new CreateMultipartUploadCommand({ Bucket: 'runner-cache', Key: key }));
      const dataDir = svc.state().config.service.dataDir;
      assert.equal(await sweepAbandoned(dataDir, 3600), 0, 'a fresh upload stays');
      const old = new Date(Date.now() - 2 * 3600_000);
      await utimes(join(stagingRoot(dataDir), UploadId as string, 'upload.json'), old, old);
      assert.equal(await sweepAbandoned(dataDir, 3600), 1);
      await assert.rejects(c.send(new ListPartsCommand({ Bucket: 'runner-cache', Key: key, UploadId })), { name: 'NoSuchUpload' });
    });

    it('clients that hang up before their answer (GET, HEAD, PUT) do not take the service down', async () => {
      const c = runnerPresigner(s3);
      const key = objectName('hangup/k');
      await client(s3).send(new PutObjectCommand({ Bucket: 'runner-cache', Key: key, Body: randomBytes(1024 * 1024) }));
      const get = new URL(await getSignedUrl(c, new GetObjectCommand({ Bucket: 'runner-cache', Key: key }), { expiresIn: 600 }));
      const head = new URL(await getSignedUrl(c, new HeadObjectCommand({ Bucket: 'runner-cache', Key: key }), { expiresIn: 600 }));
      const put = new URL(await getSignedUrl(c, new PutObjectCommand({ Bucket: 'runner-cache', Key: key }), { expiresIn: 600 }));
      const { connect } = await import('node:net');
      const hangUp = (u: URL, method: string, extra = ''): Promise<void> => new Promise((res) => {
        const sock = connect(Number(u.port), u.hostname, () => {
          sock.write(`${method} ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\n${extra}\r\n`);
          setImmediate(() => sock.destroy());
        });
        sock.on('close', () => res());
        sock.on('error', () => undefined);
      });
      // In `cachegate serve` such an error ends the process; here (the service runs in the test
      // process) it surfaces as an unhandled rejection: collect them.
      const escaped: unknown[] = [];
      const collect = (err: unknown): void => void escaped.push(err);
      process.on('unhandledRejection', collect);
      try {
        for (let i = 0; i < 30; i++) {
          await Promise.all([hangUp(get, 'GET'), hangUp(get, 'GET', 'Range: bytes=0-0\r\n'), hangUp(head, 'HEAD'), hangUp(put, 'PUT', 'Content-Length: 1000000\r\n')]);
        }
        await new Promise((r) => setTimeout(r, 300));
      } finally {
        process.off('unhandledRejection', collect);
      }
      assert.deepEqual(escaped.map(String), [], 'no error escaped the front door');
      const after = await fetch(get);
      assert.equal(after.status, 200, 'the front door still answers');
      assert.equal((await after.arrayBuffer()).byteLength, 1024 * 1024, 'and the object is intact');
    });

    it('access log and metrics: S3 requests are counted by operation and outcome; no signature in the log', async () => {
      const m = await (await fetch(`${svc.url}/metrics`)).text();
      assert.match(m, /cachegate_s3api_requests_total\{operation="PutObject",outcome="ok"\} \d+/);
      assert.match(m, /cachegate_s3api_signature_failures_total\{code="SignatureDoesNotMatch"\} \d+/);
      assert.match(m, /cachegate_http_requests_total\{route="s3api"/);
      const all = svc.logs.join('\n');
      assert.ok(!all.includes('X-Amz-Signature'), 'no presigned query in the log');
      assert.ok(!all.includes(SK));
      assert.ok(svc.logs.some((l) => l.includes('"path":"/runner-cache/runner/')), 'access log lines for the front door');
    });
  });
}
