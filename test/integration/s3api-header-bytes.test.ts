/**
 * Non-ASCII header values and the front door's signature check (src/s3api/canonical.ts asReceived):
 * curl's --aws-sigv4 (like Go's net/http clients) sends UTF-8 bytes as they are and signs those
 * bytes, as S3 hashes what it received; so does the JS SDK. Both were refused (the door hashed each
 * byte's Latin-1 character as UTF-8); the metadata comes back RFC 2047-encoded, as S3 returns it
 * (docs/s3-api.md, "Non-ASCII x-amz-meta-* values").
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { startTestService, type TestService } from '../support/service.ts';

const run = promisify(execFile);
const AK = 'BYTESKEY00000001';
const SK = 'bytes-front-door-secret';

/** curl's own SigV4 (it signs the header bytes it sends); the answer's status and headers. */
async function curl(url: string, method: string, headers: string[], user = `${AK}:${SK}`): Promise<{ status: number; head: Buffer }> {
  const args = ['-sS', '-m', '20', '-D', '-', '-o', '/dev/null', '--aws-sigv4', 'aws:amz:us-east-1:s3', '--user', user, '-X', method, '-H', 'x-amz-content-sha256: UNSIGNED-PAYLOAD'];
  for (const h of headers) args.push('-H', h);
  if (method === 'PUT') args.push('--data-binary', 'x');
  if (method === 'HEAD') args.push('-I');
  const { stdout } = await run('curl', [...args, url], { encoding: 'buffer' });
  return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(stdout.toString('latin1'))?.[1]), head: stdout };
}

describe('S3 front door: non-ASCII header values are verified as the bytes that arrived', () => {
  let svc: TestService;
  let base: string;
  before(async () => {
    svc = await startTestService({
      toml: `
[[runners]]
  name = "bytes"
  token = "glrt-bytestest-1"
  [runners.cache]
    Type = "local"
[cachegate.s3_api]
  listen = "127.0.0.1:0"
  [[cachegate.s3_api.keys]]
    access_key = "${AK}"
    secret_key = "${SK}"
    runner = "bytes"
`,
    });
    base = `${svc.s3ApiUrl}/runner-cache/runner/bytestest/project/1`;
  });
  after(async () => svc?.stop());

  it('curl: UTF-8 x-amz-meta-* values (é, €, CJK) are accepted and come back RFC 2047-encoded; a wrong secret is still refused', async () => {
    for (const [i, v] of ['café', '€uro', '日本語', 'plain'].entries()) {
      const put = await curl(`${base}/curl-${i}`, 'PUT', [`x-amz-meta-note: ${v}`]);
      assert.equal(put.status, 200, `PUT with ${v}`);
      const head = await curl(`${base}/curl-${i}`, 'HEAD', []);
      assert.equal(head.status, 200);
      const back = v === 'plain' ? v : `=?UTF-8?B?${Buffer.from(v, 'utf8').toString('base64')}?=`;
      assert.ok(head.head.includes(Buffer.from(`x-amz-meta-note: ${back}\r\n`)), `${v} comes back as ${back}`);
    }
    assert.equal((await curl(`${base}/curl-bad`, 'PUT', ['x-amz-meta-note: café'], `${AK}:not-the-secret`)).status, 403);
  });

  it('the JS SDK: a non-ASCII metadata value is accepted, and HEAD gives it back RFC 2047-encoded (as S3 does)', async () => {
    const s3 = new S3Client({ endpoint: svc.s3ApiUrl, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: AK, secretAccessKey: SK }, maxAttempts: 1 });
    await s3.send(new PutObjectCommand({ Bucket: 'runner-cache', Key: 'runner/bytestest/project/1/sdk', Body: 'x', Metadata: { note: 'café' } }));
    const head = await s3.send(new HeadObjectCommand({ Bucket: 'runner-cache', Key: 'runner/bytestest/project/1/sdk' }));
    // The SDK sends the value's UTF-8 bytes; it does not decode the encoded word it gets back.
    assert.equal(head.Metadata?.note, `=?UTF-8?B?${Buffer.from('café', 'utf8').toString('base64')}?=`);
  });
});
