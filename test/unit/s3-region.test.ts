/** Region detection through the adapter, against an in-process fake GetBucketLocation endpoint. */
import assert from 'node:assert/strict';
import { CacheGateError } from '../../src/errors.ts';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { createS3Adapter } from '../../adapters/s3/index.ts';
import { s3Context, s3Settings } from '../support/rgw.ts';

const answers: Record<string, string> = {
  'eu-bucket': '<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/">EU</LocationConstraint>',
  'empty-bucket': '<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/"/>',
  'ap-bucket': '<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/">ap-south-1</LocationConstraint>',
};
const hits: string[] = [];
let flakyFailures = 0;
const server = createServer((req, res) => {
  const bucket = (req.url ?? '').split('?')[0].split('/')[1];
  hits.push(`${req.method} ${req.url}`);
  if (bucket === 'flaky-bucket' && flakyFailures > 0) {
    flakyFailures--;
    res.writeHead(503, { 'content-type': 'application/xml' }).end('<Error><Code>SlowDown</Code><Message>busy</Message></Error>');
    return;
  }
  if (bucket === 'flaky-bucket') {
    res.writeHead(200, { 'content-type': 'application/xml' }).end('<?xml version="1.0" encoding="UTF-8"?>\n<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/">eu-central-1</LocationConstraint>');
    return;
  }
  if (bucket === 'denied-bucket') {
    res.writeHead(403, { 'content-type': 'application/xml' }).end('<Error><Code>AccessDenied</Code><Message>no</Message></Error>');
    return;
  }
  res.writeHead(200, { 'content-type': 'application/xml' }).end(`<?xml version="1.0" encoding="UTF-8"?>\n${answers[bucket] ?? ''}`);
});
let address = '';
before(async () => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => server.close());

const make = (bucket: string, serverAddress = address) => {
  const { ctx, logs } = s3Context(s3Settings({ bucketName: bucket, serverAddress, insecure: true, authenticationType: 'access-key', accessKey: 'AK', secretKey: 'SK' }));
  return { a: createS3Adapter(ctx), logs };
};

describe('region detection', () => {
  test('GetBucketLocation once: EU → eu-west-1, empty → us-east-1, others as given', async () => {
    hits.length = 0;
    const { a } = make('eu-bucket');
    const urls = await Promise.all(Array.from({ length: 5 }, () => a.presign({ method: 'GET', objectName: 'o', expiresIn: 60, metadata: {} })));
    assert.ok(urls.every((u) => u.url.includes('%2Feu-west-1%2Fs3%2F')));
    assert.equal(hits.filter((h) => h.includes('location')).length, 1, 'detected once for concurrent callers');
    await a.presign({ method: 'GET', objectName: 'o2', expiresIn: 60, metadata: {} });
    assert.equal(hits.filter((h) => h.includes('location')).length, 1, 'and cached');
    assert.equal(await make('empty-bucket').a.region(), 'us-east-1');
    assert.equal(await make('ap-bucket').a.region(), 'ap-south-1');
  });
  test('a refusal falls back to us-east-1 with a warning', async () => {
    const { a, logs } = make('denied-bucket');
    assert.equal(await a.region(), 'us-east-1');
    assert.ok(logs.some((l) => l.level === 'warn' && /GetBucketLocation failed.*AccessDenied/.test(l.msg)));
  });
  test('an unreachable server: 503 (no URL signed for a guessed region), detected again by the next request', async () => {
    const { a } = make('any-bucket', '127.0.0.1:1');
    for (let i = 0; i < 2; i++) {
      await assert.rejects(a.presign({ method: 'GET', objectName: 'o', expiresIn: 60, metadata: {} }), (err: CacheGateError) =>
        err.status === 503 && /region unknown: GetBucketLocation failed/.test(err.message) && !/using us-east-1/.test(err.message));
    }
    await a.close?.();
  });
  test('a 5xx answer: 503 for that request, and the next one detects again', async () => {
    const { a } = make('flaky-bucket');
    flakyFailures = 100; // more than the SDK's own retries
    await assert.rejects(a.presign({ method: 'GET', objectName: 'o', expiresIn: 60, metadata: {} }), (err: CacheGateError) => err.status === 503);
    flakyFailures = 0;
    const r = await a.presign({ method: 'GET', objectName: 'o', expiresIn: 60, metadata: {} });
    assert.match(r.url, /%2Feu-central-1%2Fs3%2F/);
    await a.close?.();
  });
  test('BucketLocation set: no request at all', async () => {
    hits.length = 0;
    const { ctx } = s3Context(s3Settings({ bucketName: 'eu-bucket', serverAddress: address, insecure: true, bucketLocation: 'sa-east-1', authenticationType: 'access-key', accessKey: 'AK', secretKey: 'SK' }));
    const a = createS3Adapter(ctx);
    const r = await a.presign({ method: 'GET', objectName: 'o', expiresIn: 60, metadata: {} });
    assert.match(r.url, /%2Fsa-east-1%2Fs3%2F/);
    assert.equal(hits.length, 0);
  });
});
