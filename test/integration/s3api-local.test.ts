/** The S3 front door on the embedded local backend (real clients; see test/support/s3api-suite.ts). */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { request as httpRequest } from 'node:http';
import { GetObjectCommand, HeadBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { frontDoorSuite } from '../support/s3api-suite.ts';
import { startTestService } from '../support/service.ts';

frontDoorSuite('the local backend', async () => ({ cache: '    Type = "local"' }));

describe('S3 front door: keys follow a configuration reload', () => {
  it('a key added by a reload works at once; a removed key is InvalidAccessKeyId; the listener stays', async () => {
    const toml = (ak: string): string => `
[[runners]]
  name = "r"
  token = "glrt-reloadkeys-1"
  [runners.cache]
    Type = "local"
[cachegate.s3_api]
  listen = "127.0.0.1:0"
  [[cachegate.s3_api.keys]]
    access_key = "${ak}"
    secret_key = "reload-secret-0001"
    runner = "r"
`;
    const svc = await startTestService({ toml: toml('RELOADKEY0000001') });
    try {
      const head = (ak: string) => new S3Client({ endpoint: svc.s3ApiUrl, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: ak, secretAccessKey: 'reload-secret-0001' }, maxAttempts: 1 }).send(new HeadBucketCommand({ Bucket: 'runner-cache' }));
      await head('RELOADKEY0000001');
      await writeFile(svc.configFile as string, toml('RELOADKEY0000002'));
      assert.equal(await svc.reload(), true);
      await head('RELOADKEY0000002');
      await assert.rejects(head('RELOADKEY0000001'), (e: Error & { $metadata?: { httpStatusCode?: number } }) => e.$metadata?.httpStatusCode === 403);
    } finally {
      await svc.stop();
    }
  });
});

describe('S3 front door: failed authentications per client address', () => {
  it('after the burst of wrong signatures an address gets 503 SlowDown before its signature is checked; a right one waits too; other addresses do not', async () => {
    const svc = await startTestService({
      toml: `
[cachegate]
auth_failure_limit = 0.2
auth_failure_burst = 3
[[runners]]
  name = "r"
  token = "glrt-authfail-s3-1"
  [runners.cache]
    Type = "local"
[cachegate.s3_api]
  listen = "127.0.0.1:0"
  [[cachegate.s3_api.keys]]
    access_key = "AUTHFAILKEY00001"
    secret_key = "authfail-secret-0001"
    runner = "r"
`,
    });
    try {
      const url = async (secret: string, accessKey = 'AUTHFAILKEY00001'): Promise<URL> => {
        const client = new S3Client({ endpoint: svc.s3ApiUrl, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: accessKey, secretAccessKey: secret } });
        return new URL(await getSignedUrl(client, new GetObjectCommand({ Bucket: 'runner-cache', Key: 'runner/authfail-/project/1/k' }), { expiresIn: 600 }));
      };
      const get = (u: URL, from: string): Promise<{ status: number; body: string; retryAfter?: string }> =>
        new Promise((resolve, reject) => {
          const req = httpRequest({ host: u.hostname, port: u.port, path: u.pathname + u.search, localAddress: from }, (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (d: string) => (body += d));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body, retryAfter: res.headers['retry-after'] }));
          });
          req.on('error', reject);
          req.end();
        });
      const good = await url('authfail-secret-0001');
      assert.equal((await get(await url('wrong-secret'), '127.0.0.7')).status, 403);
      assert.equal((await get(await url('authfail-secret-0001', 'UNKNOWNKEY000001'), '127.0.0.7')).status, 403);
      assert.equal((await get(await url('wrong-secret-2'), '127.0.0.7')).status, 403);
      const locked = await get(await url('wrong-secret-3'), '127.0.0.7');
      assert.equal(locked.status, 503, locked.body);
      assert.match(locked.body, /<Code>SlowDown<\/Code>/);
      assert.match(locked.retryAfter ?? '', /^[1-9][0-9]*$/);
      assert.equal((await get(good, '127.0.0.7')).status, 503, 'a right signature from the locked address waits too');
      const other = await get(good, '127.0.0.8');
      assert.equal(other.status, 404, `another address is not affected: ${other.body}`);
    } finally {
      await svc.stop();
    }
  });
});
