/**
 * The S3 adapter's client keeps BACKEND_SOCKETS connections to the backend, not the SDK's 50: proxy
 * transfers and the S3 front door hold a backend connection while their client's body streams, and
 * the service admits max_uploads (128) uploads at once (adapters/s3/sdk.ts).
 */
import assert from 'node:assert/strict';
import { createServer, type Agent } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { HeadBucketCommand } from '@aws-sdk/client-s3';
import { BACKEND_SOCKETS, createS3Client } from '../../adapters/s3/sdk.ts';
import type { S3Settings } from '../../src/config/types.ts';

test('the S3 client keeps up to BACKEND_SOCKETS (128) keep-alive connections to its backend', async () => {
  const server = createServer((_req, res) => res.end());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const s3: S3Settings = {
    serverAddress: `127.0.0.1:${port}`, accessKey: 'AK', secretKey: 'SK', sessionToken: '', bucketName: 'b', bucketLocation: 'us-east-1',
    insecure: true, authenticationType: 'access-key', serverSideEncryption: '', serverSideEncryptionKeyId: '', dualStack: false, accelerate: false,
    pathStyle: true, roleArn: '', uploadRoleArn: '', assumeRoleMaxConcurrency: 5, disableAssumeRoleCredentialsCaching: false,
  };
  const client = await createS3Client(s3, 'us-east-1', async () => ({ accessKeyId: 'AK', secretAccessKey: 'SK' }));
  try {
    await client.send(new HeadBucketCommand({ Bucket: 'b' }));
    const handler = client.config.requestHandler as unknown as { config: { httpAgent: Agent } };
    assert.equal(BACKEND_SOCKETS, 128);
    assert.equal(handler.config.httpAgent.maxSockets, BACKEND_SOCKETS);
    assert.equal((handler.config.httpAgent as unknown as { keepAlive: boolean }).keepAlive, true);
  } finally {
    client.destroy();
    server.close();
  }
});

test('proxy-mode GET and PUT sent without the SDK (direct-get.ts, direct-put.ts) keep the same BACKEND_SOCKETS keep-alive connections', async () => {
  const { agents } = await import('../../adapters/s3/direct-get.ts');
  for (const agent of Object.values(agents)) {
    assert.equal(agent.maxSockets, BACKEND_SOCKETS);
    assert.equal((agent as unknown as { keepAlive: boolean }).keepAlive, true);
  }
});
