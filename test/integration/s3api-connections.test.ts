/**
 * The S3 front door's connections are bounded like the service's own: `[cachegate] idle_timeout` cuts a
 * stalled upload, and `max_connections` counts both listeners (idle connections are closed to make
 * room), so clients that open connections and send nothing cannot take every descriptor.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { HeadBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { startTestService, type TestService } from '../support/service.ts';

function open(url: string): Promise<Socket> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const s = connect(Number(u.port), u.hostname, () => resolve(s));
    s.once('error', reject);
  });
}

/** Whether the socket is closed by the server within `ms` (a bound for the test, not a timing claim). */
async function closedWithin(s: Socket, ms: number): Promise<boolean> {
  s.on('error', () => undefined);
  s.resume();
  for (let t = 0; t < ms / 20 && !s.closed && !s.readableEnded; t++) await sleep(20);
  return s.closed || s.readableEnded;
}

describe('S3 front door: connection limits', () => {
  let svc: TestService;
  const client = (): S3Client => new S3Client({ endpoint: svc.s3ApiUrl, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'CONNKEY000000001', secretAccessKey: 'conn-secret-0001' }, maxAttempts: 1 });
  before(async () => {
    svc = await startTestService({
      toml: `
[cachegate]
  idle_timeout = 1
  max_connections = 4
  max_uploads = 1
  upload_wait = 0
[[runners]]
  name = "r1"
  token = "glrt-connlimits1"
  [runners.cache]
    Type = "local"
[cachegate.s3_api]
  listen = "127.0.0.1:0"
  [[cachegate.s3_api.keys]]
    access_key = "CONNKEY000000001"
    secret_key = "conn-secret-0001"
    runner = "r1"
`,
    });
  });
  after(async () => {
    await svc.stop();
  });

  it('max_uploads counts front door uploads: with upload_wait = 0 one more is 503 SlowDown before its body is read', async () => {
    const s3 = client();
    try {
      const Body = new PassThrough();
      const first = s3.send(new PutObjectCommand({ Bucket: 'runner-cache', Key: 'runner/connlimit/project/1/first', Body, ContentLength: 20 }));
      Body.write('0123456789');
      let second: string | undefined;
      // Until the first upload holds its slot, a second may still get in: ask until it is refused.
      for (let t = 0; t < 100 && second !== 'SlowDown'; t++) {
        second = await s3.send(new PutObjectCommand({ Bucket: 'runner-cache', Key: 'runner/connlimit/project/1/second', Body: 'x' })).then(() => 'ok', (e: Error) => e.name);
        if (second !== 'SlowDown') await sleep(20);
      }
      assert.equal(second, 'SlowDown');
      Body.end('0123456789');
      assert.equal((await first).$metadata.httpStatusCode, 200);
      const after = await s3.send(new PutObjectCommand({ Bucket: 'runner-cache', Key: 'runner/connlimit/project/1/second', Body: 'x' }));
      assert.equal(after.$metadata.httpStatusCode, 200, 'the slot is given back');
    } finally {
      s3.destroy();
    }
  });

  it('a connection that stops sending is cut after idle_timeout', async () => {
    const s3 = client();
    const url = new URL(await getSignedUrl(s3, new PutObjectCommand({ Bucket: 'runner-cache', Key: 'runner/connlimit/project/1/stalled' }), { expiresIn: 600 }));
    s3.destroy();
    const s = await open(svc.s3ApiUrl as string);
    // A signed upload that stops after 10 of its 100 bytes.
    s.write(`PUT ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\nContent-Length: 100\r\n\r\n0123456789`);
    assert.ok(await closedWithin(s, 15_000), 'the stalled upload is still open');
    const got = await client().send(new HeadBucketCommand({ Bucket: 'runner-cache' }));
    assert.equal(got.$metadata.httpStatusCode, 200);
  });

  it('with Expect: 100-continue, a bad signature gets 403 and never a "100 Continue" (its body is not read); a good one is invited', async () => {
    const s3 = client();
    const url = new URL(await getSignedUrl(s3, new PutObjectCommand({ Bucket: 'runner-cache', Key: 'runner/connlimit/project/1/expect' }), { expiresIn: 600 }));
    s3.destroy();
    const received = (s: Socket): (() => string) => {
      let text = '';
      s.on('data', (d: Buffer) => (text += d.toString('latin1')));
      return () => text;
    };
    // The signature's last character changed (it decides, not the one before: a signature ending in '0' was left as it was, 1 run in 16).
    const tampered = url.search.replace(/(X-Amz-Signature=[0-9a-f]{63})([0-9a-f])/, (_, keep: string, last: string) => `${keep}${last === '0' ? '1' : '0'}`);
    assert.notEqual(tampered, url.search);
    const bad = await open(svc.s3ApiUrl as string);
    const badText = received(bad);
    bad.write(`PUT ${url.pathname}${tampered} HTTP/1.1\r\nHost: ${url.host}\r\nContent-Length: 50000000\r\nExpect: 100-continue\r\n\r\n`);
    assert.ok(await closedWithin(bad, 10_000), 'the refused upload was left open');
    assert.match(badText(), /^HTTP\/1\.1 403 /);
    assert.doesNotMatch(badText(), /100 Continue/);
    assert.match(badText(), /SignatureDoesNotMatch/);
    const good = await open(svc.s3ApiUrl as string);
    const goodText = received(good);
    good.on('error', () => undefined);
    good.write(`PUT ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n`);
    for (let t = 0; t < 500 && goodText() === ''; t++) await sleep(20);
    assert.match(goodText(), /^HTTP\/1\.1 100 Continue/);
    good.write('hello');
    for (let t = 0; t < 500 && !/ 200 /.test(goodText()); t++) await sleep(20);
    assert.match(goodText(), /HTTP\/1\.1 200 /);
    good.destroy();
  });

  it('over max_connections, the longest-idle front door connection is closed and a new client gets in', async () => {
    const idle = [];
    for (let i = 0; i < 4; i++) idle.push(await open(svc.s3ApiUrl as string));
    const s3 = client();
    try {
      await s3.send(new HeadBucketCommand({ Bucket: 'runner-cache' }));
    } finally {
      s3.destroy();
    }
    assert.ok(await closedWithin(idle[0], 2_000), 'the oldest idle connection is still open: the front door has no connection cap');
    for (const s of idle) s.destroy();
  });
});

describe('S3 front door: keep-alive', () => {
  const toml = (s3KeepAlive: string): string => `
[cachegate]
  keep_alive_timeout = 1
[[runners]]
  name = "r1"
  token = "glrt-keepalive01"
  [runners.cache]
    Type = "local"
[cachegate.s3_api]
  listen = "127.0.0.1:0"
  ${s3KeepAlive}
  [[cachegate.s3_api.keys]]
    access_key = "KEEPALIVEKEY0001"
    secret_key = "keep-alive-secret"
    runner = "r1"
`;
  /** One presigned HEAD over a raw keep-alive connection, answered; then whether the door closes the idle connection within `ms`. */
  async function idleClosedWithin(svc: TestService, ms: number): Promise<boolean> {
    const s3 = new S3Client({ endpoint: svc.s3ApiUrl, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'KEEPALIVEKEY0001', secretAccessKey: 'keep-alive-secret' } });
    const url = new URL(await getSignedUrl(s3, new HeadBucketCommand({ Bucket: 'runner-cache' }), { expiresIn: 600 }));
    s3.destroy();
    const sock = await open(svc.s3ApiUrl!);
    let answer = '';
    sock.setEncoding('latin1');
    sock.on('data', (d: string) => (answer += d));
    sock.write(`HEAD ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\nConnection: keep-alive\r\n\r\n`);
    for (let t = 0; t < 250 && !answer.includes('\r\n\r\n'); t++) await sleep(20);
    assert.match(answer, /^HTTP\/1\.1 200 /, answer);
    const closed = await closedWithin(sock, ms);
    sock.destroy();
    return closed;
  }

  it('keeps idle client connections longer than the service does (60 s by default: S3 clients reuse pooled connections without warning)', async () => {
    const svc = await startTestService({ toml: toml('') });
    try {
      assert.equal(await idleClosedWithin(svc, 2500), false, 'the door closed an idle connection after the service\'s keep_alive_timeout of 1 s');
    } finally {
      await svc.stop();
    }
  });

  it('[cachegate.s3_api] keep_alive_timeout sets it', async () => {
    const svc = await startTestService({ toml: toml('keep_alive_timeout = 1') });
    try {
      assert.equal(await idleClosedWithin(svc, 5000), true, 'the idle connection is closed after about 1 s');
    } finally {
      await svc.stop();
    }
  });
});
