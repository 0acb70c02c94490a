/**
 * The S3 front door refuses what it does not implement (src/s3api/request-allowlist.ts) instead of
 * serving it as a plain GET or PUT, and applies GET/HEAD preconditions (src/s3api/preconditions.ts).
 * Real client: @aws-sdk/client-s3 (its ACL, tagging, SSE-C, object-lock, VersionId, PartNumber,
 * ResponseContentType, IfMatch, IfNoneMatch parameters), plus raw SigV4-signed requests for the
 * headers and parameters the SDK does not let one send on that operation. On the local backend and
 * on Ceph RGW (where the stored object's ACL is read back from RGW itself).
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import {
  GetObjectAclCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client, type PutObjectCommandInput,
} from '@aws-sdk/client-s3';
import { signHeaders } from '../../src/transfer/s3-sign.ts';
import { rgw, type Rgw } from '../support/rgw.ts';
import { startTestService, type TestService } from '../support/service.ts';

const AK = 'SHAPEKEY00000001';
const SK = 'shape-front-door-secret';
const NS = 'runner/shapetest/project/1';

function signed(base: string, method: string, path: string, query: Record<string, string>, headers: Record<string, string>, body?: Buffer): Promise<{ status: number; code?: string; headers: Record<string, unknown>; body: string }> {
  const url = new URL(base + path);
  for (const [k, v] of Object.entries(query)) url.searchParams.append(k, v);
  const h = signHeaders({ method, url, headers, credentials: { accessKeyId: AK, secretAccessKey: SK }, region: 'us-east-1' });
  if (body) h['content-length'] = String(body.length);
  return new Promise((res, rej) => {
    const req = request(url, { method, headers: h }, (r) => {
      let text = '';
      r.on('data', (c: Buffer) => (text += c.toString()));
      r.on('end', () => res({ status: r.statusCode ?? 0, code: /<Code>([^<]+)<\/Code>/.exec(text)?.[1], headers: r.headers, body: text }));
    });
    req.on('error', rej);
    req.end(body);
  });
}

const status = (e: unknown): number | undefined => (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;

function suite(name: string, cache: () => Promise<{ toml: string; backend?: S3Client; bucket?: string }>): void {
  describe(`S3 front door on ${name}: what it does not implement is refused, not served plain`, () => {
    let svc: TestService;
    let s3: S3Client;
    let backend: S3Client | undefined;
    let bucket: string | undefined;
    const key = (k: string): string => `${NS}/${k}`;
    before(async () => {
      const c = await cache();
      backend = c.backend;
      bucket = c.bucket;
      svc = await startTestService({
        toml: `
[[runners]]
  name = "shape"
  token = "glrt-shapetest-1"
  [runners.cache]
${c.toml}
[cachegate.s3_api]
  listen = "127.0.0.1:0"
  [[cachegate.s3_api.keys]]
    access_key = "${AK}"
    secret_key = "${SK}"
    runner = "shape"
`,
      });
      s3 = new S3Client({ endpoint: svc.s3ApiUrl, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: AK, secretAccessKey: SK }, maxAttempts: 1 });
    });
    after(async () => svc?.stop());

    it('PutObject with an ACL, grants, tags, SSE-C, object lock, storage class, a website redirect or a precondition: NotImplemented, nothing stored', async () => {
      const refused: Array<[string, Partial<PutObjectCommandInput>]> = [
        ['acl', { ACL: 'public-read' }],
        ['grant', { GrantRead: 'uri="http://acs.amazonaws.com/groups/global/AllUsers"' }],
        ['tagging', { Tagging: 'a=b' }],
        ['ssec', { SSECustomerAlgorithm: 'AES256', SSECustomerKey: 'k'.repeat(32) }],
        ['lock', { ObjectLockMode: 'COMPLIANCE', ObjectLockRetainUntilDate: new Date(Date.now() + 86_400_000) }],
        ['storage', { StorageClass: 'GLACIER' }],
        ['website', { WebsiteRedirectLocation: 'http://example.invalid/' }],
        ['payer', { RequestPayer: 'requester' }],
        ['owner', { ExpectedBucketOwner: '123456789012' }],
        ['ifnonematch', { IfNoneMatch: '*' }],
      ];
      for (const [k, extra] of refused) {
        await assert.rejects(s3.send(new PutObjectCommand({ Bucket: 'runner-cache', Key: key(`put/${k}`), Body: 'x', ...extra })), (e: Error) => {
          assert.equal(e.name, 'NotImplemented', `${k}: ${e.name} ${e.message}`);
          assert.equal(status(e), 501);
          return true;
        });
        await assert.rejects(s3.send(new HeadObjectCommand({ Bucket: 'runner-cache', Key: key(`put/${k}`) })), (e: Error) => status(e) === 404, `${k}: nothing stored`);
      }
      // What runners configured for SSE send is still accepted (the profile's encryption applies).
      await s3.send(new PutObjectCommand({ Bucket: 'runner-cache', Key: key('put/sse'), Body: 'x', ServerSideEncryption: 'AES256' }));
      if (backend && bucket) {
        // The object reached RGW private: no grant beyond its owner's.
        const acl = await backend.send(new GetObjectAclCommand({ Bucket: bucket, Key: key('put/sse') }));
        assert.deepEqual((acl.Grants ?? []).map((g) => g.Permission), ['FULL_CONTROL']);
      }
    });

    it('CopyObject, UploadPartCopy, ?versionId, ?partNumber, response-* overrides and hoisted x-amz-acl: NotImplemented', async () => {
      await s3.send(new PutObjectCommand({ Bucket: 'runner-cache', Key: key('src'), Body: 'hello' }));
      const cases: Array<[string, string, Record<string, string>, Record<string, string>]> = [
        ['PUT', key('copy'), {}, { 'x-amz-copy-source': `runner-cache/${key('src')}` }],
        ['PUT', key('copy'), { partNumber: '1', uploadId: '0'.repeat(32) }, { 'x-amz-copy-source': `runner-cache/${key('src')}`, 'x-amz-copy-source-range': 'bytes=0-1' }],
        ['PUT', key('plain-part'), { partNumber: '1' }, {}],
        ['PUT', key('hoisted'), { 'x-amz-acl': 'public-read' }, {}],
        ['PUT', key('ver'), { versionId: 'v1' }, {}],
        ['GET', key('src'), { versionId: 'v1' }, {}],
        ['GET', key('src'), { partNumber: '1' }, {}],
        ['HEAD', key('src'), { partNumber: '1' }, {}],
        ['GET', key('src'), { 'response-content-type': 'text/html' }, {}],
        ['GET', key('src'), { 'response-content-disposition': 'inline' }, {}],
        ['GET', key('src'), { uploads: '' }, {}],
        ['GET', key('src'), { acl: '' }, {}],
        ['GET', key('src'), {}, { 'x-amz-server-side-encryption-customer-algorithm': 'AES256' }],
        ['DELETE', key('src'), { versionId: 'v1' }, {}],
        ['GET', '', { versions: '' }, {}],
        ['GET', '', { policy: '' }, {}],
      ];
      for (const [method, k, query, headers] of cases) {
        const r = await signed(svc.s3ApiUrl as string, method, `/runner-cache${k ? `/${k}` : ''}`, query, headers, method === 'PUT' ? Buffer.from('x') : undefined);
        assert.equal(r.status, 501, `${method} ${JSON.stringify(query)} ${JSON.stringify(headers)}: ${r.status} ${r.body.slice(0, 200)}`);
        if (method !== 'HEAD') assert.equal(r.code, 'NotImplemented');
      }
      for (const k of ['copy', 'plain-part', 'hoisted', 'ver']) {
        await assert.rejects(s3.send(new HeadObjectCommand({ Bucket: 'runner-cache', Key: key(k) })), (e: Error) => status(e) === 404, `${k}: nothing stored`);
      }
      // The SDK's own parameters for the same things.
      await assert.rejects(s3.send(new GetObjectCommand({ Bucket: 'runner-cache', Key: key('src'), VersionId: 'v1' })), { name: 'NotImplemented' });
      await assert.rejects(s3.send(new GetObjectCommand({ Bucket: 'runner-cache', Key: key('src'), PartNumber: 1 })), { name: 'NotImplemented' });
      await assert.rejects(s3.send(new GetObjectCommand({ Bucket: 'runner-cache', Key: key('src'), ResponseContentType: 'text/html' })), { name: 'NotImplemented' });
      const got = await s3.send(new GetObjectCommand({ Bucket: 'runner-cache', Key: key('src') }));
      assert.equal(await got.Body?.transformToString(), 'hello', 'a plain GET still works');
    });

    it('GetObject/HeadObject preconditions: If-Match 412, If-None-Match 304, dates as S3 applies them', async () => {
      const put = await s3.send(new PutObjectCommand({ Bucket: 'runner-cache', Key: key('cond'), Body: 'conditional' }));
      const head = await s3.send(new HeadObjectCommand({ Bucket: 'runner-cache', Key: key('cond') }));
      const etag = head.ETag as string;
      assert.ok(etag && (put.ETag === undefined || put.ETag === etag));
      const ok = await s3.send(new GetObjectCommand({ Bucket: 'runner-cache', Key: key('cond'), IfMatch: etag, Range: 'bytes=0-3' }));
      assert.equal(await ok.Body?.transformToString(), 'cond');
      await assert.rejects(s3.send(new GetObjectCommand({ Bucket: 'runner-cache', Key: key('cond'), IfMatch: '"0123"' })), (e: Error) => e.name === 'PreconditionFailed' && status(e) === 412);
      await assert.rejects(s3.send(new HeadObjectCommand({ Bucket: 'runner-cache', Key: key('cond'), IfMatch: '"0123"' })), (e: Error) => status(e) === 412);
      await assert.rejects(s3.send(new GetObjectCommand({ Bucket: 'runner-cache', Key: key('cond'), IfNoneMatch: etag })), (e: Error) => status(e) === 304);
      await assert.rejects(s3.send(new GetObjectCommand({ Bucket: 'runner-cache', Key: key('cond'), IfModifiedSince: head.LastModified })), (e: Error) => status(e) === 304);
      await assert.rejects(s3.send(new GetObjectCommand({ Bucket: 'runner-cache', Key: key('cond'), IfUnmodifiedSince: new Date(0) })), (e: Error) => status(e) === 412);
      const fresh = await s3.send(new GetObjectCommand({ Bucket: 'runner-cache', Key: key('cond'), IfModifiedSince: new Date(0), IfNoneMatch: '"other"' }));
      assert.equal(await fresh.Body?.transformToString(), 'conditional');
    });
  });
}

suite('the local backend', async () => ({ toml: '    Type = "local"' }));

let server: Rgw | undefined;
suite('Ceph RGW', async () => {
  server ??= await rgw();
  const bucket = await server.bucket('s3apishape');
  const backend = new S3Client({ endpoint: server.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: server.accessKey, secretAccessKey: server.secretKey } });
  return { toml: `    Type = "s3"\n${server.toml(bucket)}`, backend, bucket };
});
