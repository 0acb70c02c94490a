/** src/transfer against the cachegate service on its embedded local backend (presigned /v1/blob URLs). */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { checkRemote, download, upload } from '../../src/transfer/index.ts';
import { presign, startTestService, type TestService } from '../support/service.ts';

const TOKEN = 'glrt-transfer-local-1';
const LIMITED = 'glrt-transfer-limit-1';

describe('transfer ↔ service (local backend)', () => {
  let svc: TestService;
  let dir: string;

  before(async () => {
    svc = await startTestService({
      toml: `
[[runners]]
  name = "main"
  token = "${TOKEN}"
  [runners.cache]
    Type = "local"
[[runners]]
  name = "limited"
  token = "${LIMITED}"
  [runners.cache]
    Type = "local"
    MaxUploadedArchiveSize = 1000
`,
    });
    dir = await mkdtemp(join(tmpdir(), 'cg-transfer-'));
  });
  after(async () => {
    await svc?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const put = async (key: string, data: Buffer, token = TOKEN): Promise<string> => {
    const file = join(dir, `${key.replace(/\W/g, '_')}-up.zip`);
    await writeFile(file, data);
    const up = await presign(svc, { operation: 'upload', key, projectId: '7', contentLength: data.length }, token);
    assert.equal(up.status, 200, JSON.stringify(up.json));
    const res = await upload({ file, url: up.json.url, headers: up.json.headers, maxUploadedArchiveSize: up.json.maxUploadedArchiveSize });
    assert.deepEqual(res, { status: 'uploaded', size: data.length, mode: 'put', parts: 1 });
    return file;
  };
  const urls = async (key: string): Promise<{ get: string; head: string }> => {
    const d = await presign(svc, { operation: 'download', key, projectId: '7' }, TOKEN);
    const h = await presign(svc, { operation: 'head', key, projectId: '7' }, TOKEN);
    return { get: d.json.url, head: h.json.url };
  };

  it('round trip: upload with the presign headers, download, metadata.json, Last-Modified mtime, then up to date', async () => {
    const data = randomBytes(300_000);
    await put('build/main', data);
    const { get, head } = await urls('build/main');
    const out = join(dir, 'round', 'cache.zip');
    const seen: number[] = [];
    const res = await download({ file: out, url: get, onProgress: (d) => seen.push(d) });
    assert.equal(res.status, 'downloaded');
    assert.ok((await readFile(out)).equals(data));
    assert.equal(await readFile(join(dir, 'round', 'metadata.json'), 'utf8'), '{"cachekey":"build/main"}');
    const lm = (await fetch(head, { method: 'HEAD' })).headers.get('last-modified') as string;
    assert.equal(Math.floor((await stat(out)).mtimeMs / 1000), new Date(lm).getTime() / 1000);
    assert.equal(seen.at(-1), data.length);
    assert.deepEqual((await readdir(join(dir, 'round'))).sort(), ['cache.zip', 'metadata.json'], 'no temporary file left');

    assert.equal((await download({ file: out, url: get })).status, 'up-to-date');
    assert.equal((await download({ file: out, url: get, headUrl: head })).status, 'up-to-date');
    // An older local copy is replaced.
    await utimes(out, new Date(0), new Date(0));
    assert.equal((await download({ file: out, url: get, headUrl: head })).status, 'downloaded');
    assert.ok((await readFile(out)).equals(data));
  });

  it('ranged parallel download of a multi-chunk file (small chunk size)', async () => {
    const data = randomBytes(5 * 1024 * 1024 + 123);
    await put('ranged', data);
    const { get } = await urls('ranged');
    const out = join(dir, 'ranged.zip');
    let last = 0;
    const res = await download({ file: out, url: get, chunkSize: 256 * 1024, concurrency: 4, onProgress: (d, t) => { last = d; assert.equal(t, data.length); } });
    assert.equal(res.status, 'downloaded');
    assert.ok(res.status === 'downloaded' && res.ranged && res.parts === 21);
    assert.equal(last, data.length);
    assert.ok((await readFile(out)).equals(data));
  });

  it('memory: the write buffers of a ranged download stay within 16 parts × 256 KiB', async () => {
    // Counts what download.ts itself allocates (the service in this process allocates too).
    const data = randomBytes(24 * 1024 * 1024);
    await put('budget', data);
    const { get } = await urls('budget');
    const out = join(dir, 'budget.zip');
    const original = Buffer.allocUnsafe;
    let held = 0;
    Buffer.allocUnsafe = (size: number): ReturnType<typeof original> => {
      // download.ts's own calls only: a stream that joins two buffered socket chunks for a slow reader
      // (Readable.read) allocates with download.ts further up the stack, and is not a write buffer
      if (size >= 64 * 1024 && new Error().stack?.split('\n')[2]?.includes('/src/transfer/download.ts')) held += size;
      return original(size);
    };
    try {
      const res = await download({ file: out, url: get, chunkSize: 1024 * 1024, concurrency: 16 });
      assert.ok(res.status === 'downloaded' && res.parts === 24);
    } finally {
      Buffer.allocUnsafe = original;
    }
    assert.ok(held > 0, 'the buffers were counted');
    assert.ok(held <= 16 * 256 * 1024, `download.ts allocated ${held} bytes of buffers`);
    assert.ok((await readFile(out)).equals(data));
  });

  it('a file smaller than one chunk, and an empty file', async () => {
    for (const [key, data] of [['tiny', randomBytes(10)], ['empty', Buffer.alloc(0)]] as const) {
      await put(key, data);
      const out = join(dir, `${key}.out`);
      const res = await download({ file: out, url: (await urls(key)).get, chunkSize: 1024 });
      assert.equal(res.status, 'downloaded', key);
      assert.ok((await readFile(out)).equals(data), key);
    }
  });

  it('non-ASCII cache keys come back decoded in metadata.json', async () => {
    await put('ümlaut key', randomBytes(100));
    const out = join(dir, 'meta', 'cache.zip');
    const res = await download({ file: out, url: (await urls('ümlaut key')).get });
    assert.ok(res.status === 'downloaded');
    assert.equal(await readFile(join(dir, 'meta', 'metadata.json'), 'utf8'), JSON.stringify({ cachekey: 'ümlaut key' }));
  });

  it('404 → not found (with and without a head URL), nothing written', async () => {
    const { get, head } = await urls('absent');
    const out = join(dir, 'absent', 'cache.zip');
    assert.deepEqual(await download({ file: out, url: get }), { status: 'not-found' });
    await writeFile(join(dir, 'present.zip'), 'old');
    assert.deepEqual(await download({ file: join(dir, 'present.zip'), url: get, headUrl: head }), { status: 'not-found' });
    assert.equal(await readFile(join(dir, 'present.zip'), 'utf8'), 'old');
    await assert.rejects(stat(join(dir, 'absent')), { code: 'ENOENT' });
  });

  it('checkRemote: exists / missing', async () => {
    await put('checked', randomBytes(10));
    assert.equal(await checkRemote((await urls('checked')).head), 'exists');
    assert.equal(await checkRemote((await urls('not-there')).head), 'missing');
  });

  it('oversize: skipped with the upstream message, nothing uploaded', async () => {
    const file = join(dir, 'big.zip');
    await writeFile(file, randomBytes(2000));
    const up = await presign(svc, { operation: 'upload', key: 'big', projectId: '7' }, LIMITED);
    assert.equal(up.json.maxUploadedArchiveSize, 1000);
    const res = await upload({ file, url: up.json.url, headers: up.json.headers, maxUploadedArchiveSize: up.json.maxUploadedArchiveSize });
    assert.deepEqual(res, { status: 'too-big', size: 2000, limit: 1000, message: 'Cache archive size (2000) is too big (Limit is set to 1000). Cache will be stored only locally.' });
  });

  it('a refused upload (tampered URL → 403) fails at once with the status', async () => {
    const file = join(dir, 'refused.zip');
    await writeFile(file, randomBytes(100));
    const up = await presign(svc, { operation: 'upload', key: 'refused', projectId: '7' }, TOKEN);
    let retried = 0;
    await assert.rejects(
      upload({ file, url: up.json.url.replace('refused', 'other'), headers: up.json.headers, retryDelayMs: 0, onRetry: () => retried++ }),
      (err: Error & { status?: number }) => err.status === 403 && /^upload failed: 403/.test(err.message),
    );
    assert.equal(retried, 0);
  });
});
