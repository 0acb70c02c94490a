/** The S3 front door on the embedded local backend (real clients; see test/support/s3api-suite.ts). */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { HeadBucketCommand, S3Client } from '@aws-sdk/client-s3';
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
