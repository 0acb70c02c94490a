/**
 * [cachegate] max_uploads on the S3 front door (local backend, real sockets): uploads over the cap
 * wait in line for a slot instead of being refused at once, so normal concurrency gets no error; a
 * flood far beyond the cap and its line is refused 503 SlowDown with Retry-After at once, before any
 * body is read, with its connections closed and the process's memory bounded.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Agent, request as httpRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { WAITING_PER_SLOT } from '../../src/service/upload-slots.ts';
import { startTestService, type TestService } from '../support/service.ts';

const MAX_UPLOADS = 4;
const AK = 'SLOTSKEY00000001';
const SK = 'slots-secret-0001';

describe('S3 front door: uploads over max_uploads', () => {
  let svc: TestService;
  let presigner: S3Client;
  before(async () => {
    svc = await startTestService({
      toml: `
[cachegate]
max_uploads = ${MAX_UPLOADS}
upload_wait = 30
[[runners]]
  name = "r1"
  token = "glrt-slotsrun1"
  [runners.cache]
    Type = "local"
[cachegate.s3_api]
  listen = "127.0.0.1:0"
  [[cachegate.s3_api.keys]]
    access_key = "${AK}"
    secret_key = "${SK}"
    runner = "r1"
`,
    });
    presigner = new S3Client({ endpoint: svc.s3ApiUrl, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: AK, secretAccessKey: SK }, requestChecksumCalculation: 'WHEN_REQUIRED' });
  });
  after(async () => {
    presigner.destroy();
    await svc.stop();
  });
  const putUrl = async (key: string): Promise<URL> => new URL(await getSignedUrl(presigner, new PutObjectCommand({ Bucket: 'runner-cache', Key: `runner/slotsrun1/project/1/${key}` }), { expiresIn: 600 }));

  it('(1 + WAITING_PER_SLOT) × max_uploads concurrent presigned PUTs all succeed: the ones over the cap wait for a slot', async () => {
    const n = (1 + WAITING_PER_SLOT) * MAX_UPLOADS;
    const agent = new Agent({ keepAlive: true, maxSockets: n });
    const body = randomBytes(512 * 1024);
    const statuses = await Promise.all(
      Array.from({ length: n }, async (_, i) => {
        const u = await putUrl(`wait/${i}`);
        return new Promise<number>((resolve, reject) => {
          const req = httpRequest(u, { method: 'PUT', agent, headers: { 'content-length': body.length } }, (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          });
          req.on('error', reject);
          req.end(body);
        });
      }),
    );
    agent.destroy();
    assert.deepEqual(statuses.filter((s) => s !== 200), [], 'no upload was refused');
  });

  it('a flood of 2,000 PUTs: max_uploads stream, a bounded line waits, the rest get 503 SlowDown + Retry-After at once with their connections closed; memory bounded', async () => {
    const FLOOD = 2000;
    const line = WAITING_PER_SLOT * MAX_UPLOADS;
    const u = await putUrl('flood');
    const head = `PUT ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nContent-Length: 1048576\r\nExpect: 100-continue\r\n\r\n`;
    const rssBefore = process.memoryUsage().rss;
    let invited = 0;
    let refused = 0;
    let refusedClosed = 0;
    let otherAnswers = 0;
    let allRefused: () => void;
    const done = new Promise<void>((r) => (allRefused = r));
    const sockets: Socket[] = [];
    for (let i = 0; i < FLOOD; i++) {
      const s = connect(Number(u.port), u.hostname);
      sockets.push(s);
      let got = '';
      let counted = false;
      s.on('error', () => undefined);
      s.on('data', (d: Buffer) => {
        got += d.toString('latin1');
        if (counted || !got.includes('\r\n\r\n')) return;
        counted = true;
        if (got.startsWith('HTTP/1.1 100')) invited++;
        else if (got.startsWith('HTTP/1.1 503') && /\r\nRetry-After: \d+\r\n/i.test(got) && /\r\nConnection: close\r\n/i.test(got)) {
          // the XML body follows the head, possibly in a later packet
          s.once('close', () => {
            refusedClosed++;
            if (got.includes('<Code>SlowDown</Code>')) refused++;
            if (refusedClosed === FLOOD - MAX_UPLOADS - line) allRefused();
          });
        } else {
          otherAnswers++;
          allRefused(); // fail below rather than wait forever
        }
      });
      s.write(head);
    }
    await done;
    const rssGrowth = (process.memoryUsage().rss - rssBefore) / 2 ** 20;
    // while the refusals came, the holders of the slots sent no byte of their bodies and nobody in line had an answer
    assert.equal(refused, FLOOD - MAX_UPLOADS - line, 'every upload beyond the slots and the line: 503 SlowDown, its connection closed');
    assert.equal(invited, MAX_UPLOADS, 'only max_uploads were invited to send their bodies');
    assert.equal(otherAnswers, 0);
    // client and server sockets of this process together: far less than a body each would be
    assert.ok(rssGrowth < 200, `RSS grew ${rssGrowth.toFixed(0)} MiB during the flood`);
    // one holder goes away: the first in line gets its slot (100 Continue)
    const before100 = invited;
    sockets.find((s) => !s.destroyed)?.destroy();
    for (let i = 0; i < 100 && invited === before100; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(invited, before100 + 1, 'a freed slot goes to an upload in line');
    for (const s of sockets) s.destroy();
  });
});
