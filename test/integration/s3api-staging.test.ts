/**
 * The S3 front door's multipart staging area cannot be used to fill the disk: a resent part replaces
 * the one before it on disk, parts sent at once share the upload's MaxUploadedArchiveSize, and a
 * runner holds a bounded number of unfinished uploads. Real client (@aws-sdk/client-s3), local backend.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { AbortMultipartUploadCommand, CompleteMultipartUploadCommand, CreateMultipartUploadCommand, GetObjectCommand, ListMultipartUploadsCommand, S3Client, UploadPartCommand } from '@aws-sdk/client-s3';
import { MAX_OPEN_UPLOADS, stagingRoot } from '../../src/s3api/multipart.ts';
import { startTestService, type TestService } from '../support/service.ts';

const CAP = 1_000_000;
const BUCKET = 'runner-cache';
const KEY = 'runner/stagingr1/project/1/multi';

async function stagedBytes(dir: string): Promise<number> {
  let sum = 0;
  for (const f of await readdir(dir)) if (f !== 'upload.json') sum += (await stat(join(dir, f))).size;
  return sum;
}

describe('S3 front door: the multipart staging area is bounded', () => {
  let svc: TestService;
  let s3: S3Client;
  let root: string;
  before(async () => {
    svc = await startTestService({
      toml: `
[[runners]]
  name = "r1"
  token = "glrt-stagingr1"
  [runners.cache]
    Type = "local"
    MaxUploadedArchiveSize = ${CAP}
[cachegate.s3_api]
  listen = "127.0.0.1:0"
  [[cachegate.s3_api.keys]]
    access_key = "STAGINGKEY000001"
    secret_key = "staging-secret-0001"
    runner = "r1"
`,
    });
    s3 = new S3Client({ endpoint: svc.s3ApiUrl, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'STAGINGKEY000001', secretAccessKey: 'staging-secret-0001' }, maxAttempts: 1, requestChecksumCalculation: 'WHEN_REQUIRED' });
    root = stagingRoot(svc.state().config.service.dataDir);
  });
  after(async () => {
    s3.destroy();
    await svc.stop();
  });

  it('a part number sent again replaces the earlier part on disk (it does not pile up beside it)', async () => {
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: KEY }));
    for (let i = 0; i < 5; i++) await s3.send(new UploadPartCommand({ Bucket: BUCKET, Key: KEY, UploadId, PartNumber: 1, Body: randomBytes(600_000) }));
    const bytes = await stagedBytes(join(root, UploadId as string));
    assert.ok(bytes <= CAP, `staged ${bytes} bytes for one upload, over its cap ${CAP}`);
    assert.equal(bytes, 600_000);
  });

  it('parts sent at the same time share the cap: the disk never holds more than it for one upload', async () => {
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: KEY }));
    const dir = join(root, UploadId as string);
    const bodies = [1, 2, 3, 4].map(() => new PassThrough());
    let settled = 0;
    const sends = bodies.map((Body, i) => s3.send(new UploadPartCommand({ Bucket: BUCKET, Key: KEY, UploadId, PartNumber: i + 1, Body, ContentLength: 400_000 })).then(() => 'ok', (e: Error) => e.name).finally(() => settled++));
    // Every request is in (writing, or already refused) before any body is complete.
    for (const b of bodies) b.write(randomBytes(100_000));
    for (let t = 0; t < 500 && (await readdir(dir)).filter((f) => f.startsWith('.tmp-')).length + settled < 4; t++) await sleep(10);
    for (const b of bodies) b.end(randomBytes(300_000));
    const outcomes = await Promise.all(sends);
    const bytes = await stagedBytes(dir);
    assert.ok(bytes <= CAP, `staged ${bytes} bytes for one upload, over its cap ${CAP} (outcomes ${outcomes.join(',')})`);
    assert.ok(outcomes.includes('EntityTooLarge'), outcomes.join(','));
    assert.deepEqual(outcomes.filter((o) => o === 'ok').length, 2, outcomes.join(','));
    assert.equal(bytes, 800_000);
  });

  it('a part still arriving when its upload is aborted is NoSuchUpload (not a 500) and leaves no file', async () => {
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: KEY }));
    const dir = join(root, UploadId as string);
    const Body = new PassThrough();
    const send = s3.send(new UploadPartCommand({ Bucket: BUCKET, Key: KEY, UploadId, PartNumber: 1, Body, ContentLength: 200_000 })).then(() => 'ok', (e: Error) => e.name);
    Body.write(randomBytes(100_000));
    for (let t = 0; t < 500 && !(await readdir(dir)).some((f) => f.startsWith('.tmp-')); t++) await sleep(10);
    await s3.send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: KEY, UploadId }));
    Body.end(randomBytes(100_000));
    assert.equal(await send, 'NoSuchUpload');
    assert.equal((await readdir(root)).includes(UploadId as string), false);
  });

  it('CompleteMultipartUpload sent several times at once: one completes, the others are NoSuchUpload, the object intact', async () => {
    const key = `${KEY}-raced`;
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key }));
    const data = randomBytes(700_000);
    const { ETag } = await s3.send(new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId, PartNumber: 1, Body: data }));
    const completeOnce = (): Promise<string> => s3.send(new CompleteMultipartUploadCommand({ Bucket: BUCKET, Key: key, UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag }] } })).then(() => 'ok', (e: Error) => e.name);
    const outcomes = await Promise.all(Array.from({ length: 6 }, completeOnce));
    assert.deepEqual(outcomes.filter((o) => o === 'ok').length, 1, outcomes.join(','));
    assert.deepEqual(outcomes.filter((o) => o !== 'ok'), Array(5).fill('NoSuchUpload'), outcomes.join(','));
    const got = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
    assert.ok(Buffer.from(await (got.Body as NonNullable<typeof got.Body>).transformToByteArray()).equals(data));
    assert.equal((await readdir(root)).includes(UploadId as string), false);
    assert.equal(await completeOnce(), 'NoSuchUpload', 'a Complete after the upload completed');
  });

  it('ListMultipartUploads lists this runner\'s unfinished uploads in its namespace; a prefix outside it is AccessDenied', async () => {
    const keys = [`${KEY}-listed-b`, `${KEY}-listed-a`];
    const ids: string[] = [];
    for (const Key of keys) ids.push((await s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key }))).UploadId as string);
    try {
      const withPrefix = await s3.send(new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: `${KEY}-listed-` }));
      assert.deepEqual(withPrefix.Uploads?.map((u) => [u.Key, u.UploadId]), [[keys[1], ids[1]], [keys[0], ids[0]]]);
      const all = await s3.send(new ListMultipartUploadsCommand({ Bucket: BUCKET }));
      for (const id of ids) assert.ok(all.Uploads?.some((u) => u.UploadId === id), 'listed without a prefix too');
      assert.ok(all.Uploads?.every((u) => u.Key?.startsWith('runner/stagingr1/')));
      await assert.rejects(s3.send(new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: 'runner/other/' })), { name: 'AccessDenied' });
    } finally {
      for (const [i, UploadId] of ids.entries()) await s3.send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: keys[i], UploadId }));
    }
    const after = await s3.send(new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: `${KEY}-listed-` }));
    assert.equal(after.Uploads?.length ?? 0, 0, 'aborted uploads are gone');
  });

  it(`a runner holds at most ${MAX_OPEN_UPLOADS} unfinished uploads`, async () => {
    const open = (await readdir(root)).length;
    for (let i = open; i < MAX_OPEN_UPLOADS; i++) await s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: `${KEY}-${i}` }));
    await assert.rejects(s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: `${KEY}-last` })), { name: 'SlowDown' });
    assert.equal((await readdir(root)).length, MAX_OPEN_UPLOADS);
  });
});
