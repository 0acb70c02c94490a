/**
 * S3's wrong-region answers in proxy mode's direct GET and PUT (adapters/s3/region-redirect.ts):
 * followed once, re-signed for the region named in `x-amz-bucket-region`, and kept for later
 * requests. A small local HTTP server plays S3 here because Ceph RGW cannot produce these answers
 * (it has one zonegroup and accepts any region in a signature).
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { createS3Adapter } from '../../adapters/s3/index.ts';
import { s3Context, s3Settings } from '../support/rgw.ts';

const RIGHT = 'eu-central-1';
const hits: string[] = [];

function regionOf(req: IncomingMessage): string {
  return new URL(req.url ?? '/', 'http://x').searchParams.get('X-Amz-Credential')?.split('/')[2] ?? '';
}

/** S3's answer to a request signed for the wrong region: bucket "moved" answers 301, "moved400" 400; "pingpong" always names the other region. */
function wrongRegion(req: IncomingMessage, res: ServerResponse): boolean {
  const bucket = (req.url ?? '').split('?')[0].split('/')[1];
  const region = regionOf(req);
  const named = bucket === 'pingpong' ? (region === RIGHT ? 'ap-south-1' : RIGHT) : RIGHT;
  if (bucket !== 'pingpong' && region === RIGHT) return false;
  const [status, code] = bucket === 'moved400' ? [400, 'AuthorizationQueryParametersError'] : [301, 'PermanentRedirect'];
  res.writeHead(status, { 'content-type': 'application/xml', 'x-amz-bucket-region': named, connection: 'close' });
  res.end(`<Error><Code>${code}</Code><Message>The bucket is in this region: ${named}.</Message></Error>`);
  return true;
}

const server = createServer((req, res) => {
  let bytes = 0;
  req.on('data', (c: Buffer) => (bytes += c.length));
  req.on('end', () => {
    hits.push(`${req.method} ${regionOf(req)} ${bytes}`);
    if (wrongRegion(req, res)) return;
    if (req.method === 'PUT') res.writeHead(200, { etag: '"e"' }).end();
    else res.writeHead(200, { 'content-length': '5', 'last-modified': new Date().toUTCString() }).end('hello');
  });
});
// A PUT waiting for 100 Continue is answered from its headers when they are signed for the wrong region, as S3 does.
server.on('checkContinue', (req, res) => {
  if (wrongRegion(req, res)) {
    hits.push(`${req.method} ${regionOf(req)} (no body)`);
    return;
  }
  res.writeContinue();
  server.emit('request', req, res);
});

let address = '';
before(async () => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => server.close());

const make = (bucket: string) =>
  createS3Adapter(s3Context(s3Settings({ bucketName: bucket, bucketLocation: 'us-east-1', serverAddress: address, insecure: true, authenticationType: 'access-key', accessKey: 'AK', secretKey: 'SK' })).ctx);
const text = async (r: Readable): Promise<string> => {
  let s = '';
  for await (const c of r) s += String(c);
  return s;
};

describe('S3 region redirects in the direct GET and PUT', () => {
  test('GET: a 301 naming the region is followed once, and later requests are signed for it', async () => {
    hits.length = 0;
    const a = make('moved');
    const got = await a.get('o');
    assert.equal(await text(got?.body as Readable), 'hello');
    assert.deepEqual(hits, ['GET us-east-1 0', `GET ${RIGHT} 0`]);
    await text((await a.get('o'))?.body as Readable);
    assert.deepEqual(hits.slice(2), [`GET ${RIGHT} 0`]);
    assert.match((await a.presign({ method: 'GET', objectName: 'o', expiresIn: 60, metadata: {} })).url, /%2Feu-central-1%2Fs3%2F/);
  });

  test('GET: a 400 naming the region (a presigned URL signed for the wrong one) is followed too', async () => {
    hits.length = 0;
    const a = make('moved400');
    assert.equal(await text((await a.get('o'))?.body as Readable), 'hello');
    assert.deepEqual(hits, ['GET us-east-1 0', `GET ${RIGHT} 0`]);
  });

  test('PUT: the first one waits for 100 Continue, so the wrong-region answer comes before the body, which goes to the right region', async () => {
    hits.length = 0;
    const a = make('moved');
    const body = Buffer.alloc(1000, 1);
    const info = await a.put('o', { body: Readable.from([body]), contentLength: body.length, metadata: {}, maxSize: 0 });
    assert.equal(info.size, 1000);
    assert.deepEqual(hits, ['PUT us-east-1 (no body)', `PUT ${RIGHT} 1000`]);
  });

  test('a second wrong-region answer is not followed: the error names BucketLocation', async () => {
    hits.length = 0;
    const a = make('pingpong');
    await assert.rejects(a.get('o'), (err: Error) => /BucketLocation/.test(err.message));
    assert.equal(hits.length, 2);
  });
});
