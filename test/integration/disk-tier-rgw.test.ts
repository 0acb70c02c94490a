/**
 * [cachegate.disk_cache] in front of a real S3 (Ceph RGW), through the service's proxy mode, with a
 * TCP fault proxy to cut RGW off; and at the adapter level, counting the backend GETs of concurrent
 * misses.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import type { CacheAdapter } from '../../src/adapter.ts';
import { createS3Adapter } from '../../adapters/s3/index.ts';
import { withDiskTier } from '../../adapters/tier/index.ts';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.ts';
import { rgw, s3Context, type Rgw } from '../support/rgw.ts';
import { adapterNamed, startTestService, type TestService } from '../support/service.ts';

const TOKEN = 'glrt-tiertiertier';
const sha = (b: Buffer | Uint8Array): string => createHash('sha256').update(b).digest('hex');

describe('disk tier in front of RGW (service, proxy mode)', () => {
  let s3: Rgw;
  let bucket: string;
  let proxy: FaultProxy;
  let svc: TestService;
  let tierDir: string;
  const url = (key: string): string => `${svc.url}/v1/cache/7/${key}`;
  const auth = { authorization: `Bearer ${TOKEN}` };
  const tierStats = () => adapterNamed(svc.state(), 'cloud')?.retained?.stats();

  before(async () => {
    s3 = await rgw();
    bucket = await s3.bucket('tier');
    const u = new URL(s3.endpoint);
    proxy = await startFaultProxy({ target: { host: u.hostname, port: Number(u.port) } });
    tierDir = await mkdtemp(join(tmpdir(), 'cachegate-tier-'));
    svc = await startTestService({
      toml: `[cachegate]\nbackend_timeout = 20\n[cachegate.disk_cache]\ndir = "${tierDir}"\nmax_size = 50000000\n` +
        `[[runners]]\nname = "cloud"\ntoken = "${TOKEN}"\n[runners.cache]\nType = "s3"\n${s3.toml(bucket).replace(s3.serverAddress, proxy.address)}`,
    });
  });
  after(async () => {
    await svc?.stop();
    await proxy?.close();
    await rm(tierDir, { recursive: true, force: true });
  });

  it('uploads write through: in RGW and in the tier', async () => {
    const body = randomBytes(300_000);
    const r = await fetch(url('wt'), { method: 'PUT', headers: auth, body });
    assert.equal(r.status, 200);
    const inRgw = await s3.client.send(new GetObjectCommand({ Bucket: bucket, Key: 'runner/tiertiert/project/7/wt' }));
    assert.equal(sha(await inRgw.Body!.transformToByteArray()), sha(body));
    assert.equal(tierStats()?.objects, 1);
    const got = await fetch(url('wt'), { headers: auth });
    assert.equal(sha(Buffer.from(await got.arrayBuffer())), sha(body));
    assert.equal(got.headers.get('etag'), inRgw.ETag, 'the backend\'s ETag, served from the tier');
    assert.equal(tierStats()?.tier?.hit, 1);
  });

  it('a miss fills the tier; ranged GETs are served from it', async () => {
    const body = randomBytes(200_000);
    await s3.client.send(new PutObjectCommand({ Bucket: bucket, Key: 'runner/tiertiert/project/7/direct', Body: body }));
    const first = await fetch(url('direct'), { headers: auth });
    assert.equal(sha(Buffer.from(await first.arrayBuffer())), sha(body));
    for (let i = 0; i < 100 && tierStats()?.objects !== 2; i++) await new Promise((r) => setTimeout(r, 20)); // the fill's rename
    assert.equal(tierStats()?.objects, 2);
    const before = tierStats()?.tier?.hit ?? 0;
    const ranged = await fetch(url('direct'), { headers: { ...auth, range: 'bytes=1000-1999' } });
    assert.equal(ranged.status, 206);
    assert.equal(ranged.headers.get('content-range'), 'bytes 1000-1999/200000');
    assert.equal(sha(Buffer.from(await ranged.arrayBuffer())), sha(body.subarray(1000, 2000)));
    assert.equal(tierStats()?.tier?.hit, before + 1);
  });

  it('RGW cut off: held objects are served from disk as they are (GET, ranges, HEAD); others answer 503', async () => {
    const body = randomBytes(100_000);
    assert.equal((await fetch(url('offline'), { method: 'PUT', headers: auth, body })).status, 200);
    await proxy.setMode('refuse');
    try {
      const got = await fetch(url('offline'), { headers: auth });
      assert.equal(got.status, 200);
      assert.equal(sha(Buffer.from(await got.arrayBuffer())), sha(body));
      assert.ok((tierStats()?.tier?.stale ?? 0) >= 1);
      const ranged = await fetch(url('offline'), { headers: { ...auth, range: 'bytes=0-9' } });
      assert.equal(ranged.status, 206);
      assert.equal(sha(Buffer.from(await ranged.arrayBuffer())), sha(body.subarray(0, 10)));
      assert.equal((await fetch(url('never-held'), { headers: auth })).status, 503);
      const head = await fetch(url('offline'), { method: 'HEAD', headers: auth });
      assert.equal(head.status, 200, 'HEAD answered by the held copy');
      assert.equal(head.headers.get('content-length'), String(body.length));
      assert.equal((await fetch(url('never-held'), { method: 'HEAD', headers: auth })).status, 503);
    } finally {
      await proxy.setMode('pass');
    }
  });

  it('an ETag change on the backend invalidates the copy; an object deleted there is dropped', async () => {
    const v1 = randomBytes(50_000);
    const v2 = randomBytes(60_000);
    assert.equal((await fetch(url('changing'), { method: 'PUT', headers: auth, body: v1 })).status, 200);
    assert.equal(sha(Buffer.from(await (await fetch(url('changing'), { headers: auth })).arrayBuffer())), sha(v1));
    await s3.client.send(new PutObjectCommand({ Bucket: bucket, Key: 'runner/tiertiert/project/7/changing', Body: v2 }));
    const got = await fetch(url('changing'), { headers: auth });
    assert.equal(sha(Buffer.from(await got.arrayBuffer())), sha(v2));
    await proxy.setMode('refuse');
    try {
      // The new version is what the tier holds now.
      assert.equal(sha(Buffer.from(await (await fetch(url('changing'), { headers: auth })).arrayBuffer())), sha(v2));
    } finally {
      await proxy.setMode('pass');
    }
    await s3.client.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'runner/tiertiert/project/7/changing' }));
    const objects = tierStats()?.objects ?? 0;
    assert.equal((await fetch(url('changing'), { headers: auth })).status, 404);
    assert.equal(tierStats()?.objects, objects - 1);
    const metrics = await (await fetch(`${svc.url}/metrics`)).text();
    assert.match(metrics, /^cachegate_disk_cache_requests_total\{result="hit"\} [1-9]\d*$/m);
    assert.match(metrics, /^cachegate_disk_cache_requests_total\{result="stale"\} [1-9]\d*$/m);
    assert.match(metrics, /^cachegate_disk_cache_requests_total\{result="miss"\} [1-9]\d*$/m);
    assert.match(metrics, /^cachegate_disk_cache_bytes_total [1-9]\d*$/m);
    assert.match(metrics, /^cachegate_store_objects\{store="disk_cache"\} \d+$/m);
  });
});

describe('disk tier: concurrent misses fetch once', () => {
  let dir: string;
  let tier: CacheAdapter;
  let gets = 0;
  let s3: Rgw;
  let bucket: string;
  before(async () => {
    s3 = await rgw();
    bucket = await s3.bucket('tierc');
    dir = await mkdtemp(join(tmpdir(), 'cachegate-tier-'));
    const { ctx } = s3Context(s3.settings(bucket));
    const inner = createS3Adapter(ctx);
    const counting: CacheAdapter = new Proxy(inner, {
      get(t, p, r) {
        if (p === 'get') return (...a: Parameters<CacheAdapter['get']>) => (gets++, t.get(...a));
        return Reflect.get(t, p, r);
      },
    });
    tier = await withDiskTier(counting, ctx.profile.cache, { dir, maxSize: 50_000_000 }, ctx.log);
  });
  after(async () => {
    await tier?.close?.();
    await rm(dir, { recursive: true, force: true });
  });

  it('two GETs of an object not held: one backend GET, both bodies whole', async () => {
    const body = randomBytes(2_000_000);
    await tier.put('obj', { body: Readable.from([body]), contentLength: body.length, metadata: {}, maxSize: 0 });
    await s3.client.send(new PutObjectCommand({ Bucket: bucket, Key: 'obj2', Body: body }));
    gets = 0;
    const [a, b] = await Promise.all([tier.get('obj2'), tier.get('obj2')]);
    const read = async (r: typeof a): Promise<string> => {
      const chunks: Buffer[] = [];
      for await (const c of r!.body) chunks.push(c as Buffer);
      return sha(Buffer.concat(chunks));
    };
    assert.deepEqual(await Promise.all([read(a), read(b)]), [sha(body), sha(body)]);
    assert.equal(gets, 1, 'one GET to the backend');
    assert.equal(tier.retained?.stats().objects, 2);
  });

  it('optional members pass through (presign, kind, onAssumeRole)', async () => {
    assert.equal(tier.kind, 's3');
    const p = await tier.presign({ method: 'GET', objectName: 'x', expiresIn: 60, metadata: {} });
    assert.match(p.url, /X-Amz-Signature=/);
    const hook = (): void => undefined;
    tier.onAssumeRole = hook;
    assert.equal(tier.onAssumeRole, hook);
  });
});

describe('disk tier on a full disk (tmpfs)', () => {
  let mnt: string;
  let mounted = false;
  let s3: Rgw;
  let bucket: string;
  let svc: TestService | undefined;
  before(async () => {
    s3 = await rgw();
    bucket = await s3.bucket('tierfull');
    mnt = await mkdtemp(join(tmpdir(), 'cachegate-tierfull-'));
    mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt]).status === 0;
  });
  after(async () => {
    await svc?.stop();
    if (mounted) spawnSync('umount', [mnt]);
    await rm(mnt, { recursive: true, force: true });
  });

  it('a tier that cannot write never fails an upload or a download', async (t) => {
    if (!mounted) {
      t.skip('cannot mount a tmpfs here (needs root / CAP_SYS_ADMIN)');
      return;
    }
    svc = await startTestService({
      toml: `[cachegate.disk_cache]\ndir = "${mnt}"\nmax_size = 50000000\n[[runners]]\nname = "cloud"\ntoken = "${TOKEN}"\n[runners.cache]\nType = "s3"\n${s3.toml(bucket)}`,
    });
    const auth = { authorization: `Bearer ${TOKEN}` };
    const body = randomBytes(2_000_000); // twice the tmpfs
    assert.equal((await fetch(`${svc.url}/v1/cache/7/big`, { method: 'PUT', headers: auth, body })).status, 200);
    const inRgw = await s3.client.send(new GetObjectCommand({ Bucket: bucket, Key: 'runner/tiertiert/project/7/big' }));
    assert.equal(sha(await inRgw.Body!.transformToByteArray()), sha(body));
    const got = await fetch(`${svc.url}/v1/cache/7/big`, { headers: auth });
    assert.equal(got.status, 200);
    assert.equal(sha(Buffer.from(await got.arrayBuffer())), sha(body));
    // The GET's fill into the tier fails after the client has its bytes: its cleanup follows shortly.
    const files = async () => (await readdir(mnt, { recursive: true, withFileTypes: true })).filter((d) => d.isFile()).map((d) => d.name);
    for (let i = 0; i < 100 && (await files()).length > 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(await files(), [], 'no partial copy left in the tier');
  });
});
