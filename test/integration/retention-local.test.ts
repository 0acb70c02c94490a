/**
 * [cachegate.retention] on the embedded local backend: real disk, the real service over HTTP, a
 * real `cachegate serve` process for kill -9, a real tmpfs for a full disk.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { RetainedStore, scanStore } from '../../adapters/local/retention.ts';
import { parseConfigText } from '../../src/config/load.ts';
import { silentLogger } from '../../src/log.ts';
import { startService } from '../../src/service/server.ts';
import { adapterNamed, presign, startTestService, type TestService } from '../support/service.ts';

const BIN = resolve(import.meta.dirname, '../../bin/cachegate.js');
const KB = 1024;

function toml(maxSize: number, maxAge?: number): string {
  return `
[cachegate.retention]
  max_size = ${maxSize}
${maxAge ? `  max_age = ${maxAge}` : ''}

[[runners]]
  name = "main"
  [runners.cache]
    Type = "local"
`;
}

async function objectFiles(root: string): Promise<Array<{ name: string; size: number }>> {
  const out: Array<{ name: string; size: number }> = [];
  for (const d of await readdir(root, { recursive: true, withFileTypes: true }).catch(() => [])) {
    const st = d.isFile() ? await stat(join(d.parentPath, d.name)).catch(() => undefined) : undefined; // unlinked meanwhile: gone
    if (st) out.push({ name: d.name, size: st.size });
  }
  return out;
}

const put = (svc: { url: string }, key: string, body: Buffer): Promise<Response> =>
  fetch(`${svc.url}/v1/cache/42/${key}`, { method: 'PUT', body, headers: { 'content-length': String(body.length) } });
const get = (svc: { url: string }, key: string): Promise<Response> => fetch(`${svc.url}/v1/cache/42/${key}`);
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
/** Waits (up to 2 s) for what follows an answer asynchronously: an eviction's unlink, a failed upload's cleanup. */
async function until(cond: () => Promise<boolean> | boolean): Promise<void> {
  for (let i = 0; i < 100 && !(await cond()); i++) await sleep(20);
}

describe('retention: the local store under max_size, LRU by last use', () => {
  let svc: TestService;
  const root = (): string => join(svc.dataDir, 'data', 'objects');
  // Objects of 100 KiB (plus a small header): five fit in 520 KiB, six do not.
  const body = (i: number): Buffer => Buffer.alloc(100 * KB, i);
  before(async () => {
    svc = await startTestService({ toml: toml(520 * KB) });
  });
  after(async () => svc.stop());

  it('a downloaded object survives, an untouched one goes (proxy GET and presigned /v1/blob GET are uses)', async () => {
    for (const k of ['a', 'b', 'c', 'd', 'e']) assert.equal((await put(svc, k, body(1))).status, 200);
    assert.equal((await (await get(svc, 'a')).arrayBuffer()).byteLength, 100 * KB); // proxy use of a
    const pre = await presign(svc, { operation: 'download', key: 'b', projectId: '42' });
    assert.equal((await (await fetch(pre.json.url)).arrayBuffer()).byteLength, 100 * KB); // presigned use of b
    assert.equal((await put(svc, 'f', body(2))).status, 200); // over: c, the least recently used, goes
    assert.equal((await get(svc, 'c')).status, 404);
    const head = (k: string) => fetch(`${svc.url}/v1/cache/42/${k}`, { method: 'HEAD' }).then((r) => r.status);
    for (const k of ['a', 'b', 'd', 'e', 'f']) assert.equal(await head(k), 200, k); // HEAD is not a use
    assert.equal((await put(svc, 'g', body(3))).status, 200); // d is now the oldest use
    assert.equal((await get(svc, 'd')).status, 404);
    await until(async () => (await objectFiles(root())).length === 5);
    const files = await objectFiles(root());
    assert.equal(files.length, 5);
    assert.ok(files.reduce((n, f) => n + f.size, 0) <= 520 * KB);
  });

  it('many concurrent writers: the bound holds and the index matches the disk', async () => {
    const uploads = Array.from({ length: 24 }, (_, i) => put(svc, `w${i}`, body(i)));
    // 2.4 MB at once against 520 KiB: an upload whose bytes find no room (the others' bytes in
    // progress take it) is refused with 507 rather than pushing the disk over the bound.
    const statuses = (await Promise.all(uploads)).map((r) => r.status);
    assert.ok(statuses.every((s) => s === 200 || s === 507), statuses.join());
    assert.ok(statuses.includes(200), statuses.join());
    const stats0 = () => adapterNamed(svc.state(), 'main')?.retained?.stats();
    await until(async () => (await objectFiles(root())).length === stats0()?.objects); // unlinks of the last evictions
    const files = await objectFiles(root());
    const onDisk = files.reduce((n, f) => n + f.size, 0);
    assert.ok(onDisk <= 520 * KB, `${onDisk} bytes on disk`);
    const stats = adapterNamed(svc.state(), 'main')?.retained?.stats();
    assert.equal(stats?.objects, files.length);
    assert.equal(stats?.storedBytes, onDisk);
    assert.ok(files.every((f) => /^[0-9a-f]{64}$/.test(f.name)), 'no temporary file left');
    const metrics = await (await fetch(`${svc.url}/metrics`)).text();
    assert.match(metrics, new RegExp(`^cachegate_store_objects\\{store="local"\\} ${files.length}$`, 'm'));
    assert.match(metrics, new RegExp(`^cachegate_store_bytes\\{store="local"\\} ${onDisk}$`, 'm'));
    assert.match(metrics, /^cachegate_store_max_bytes\{store="local"\} 532480$/m);
    const evicted = /^cachegate_store_evictions_total\{store="local",reason="size"\} (\d+)$/m.exec(metrics);
    assert.ok(evicted && Number(evicted[1]) >= statuses.filter((s) => s === 200).length - 5, metrics);
  });

  it('an upload larger than max_size is refused with 413 and stores nothing', async () => {
    const before = await objectFiles(root());
    const r = await put(svc, 'huge', Buffer.alloc(600 * KB));
    assert.equal(r.status, 413);
    assert.equal(((await r.json()) as any).error.code, 'payload_too_large');
    assert.deepEqual((await objectFiles(root())).map((f) => f.name).sort(), before.map((f) => f.name).sort());
  });

  it('a half-written upload is neither served nor counted', async () => {
    const statsBefore = adapterNamed(svc.state(), 'main')?.retained?.stats();
    const req = request(`${svc.url}/v1/cache/42/half`, { method: 'PUT', headers: { 'transfer-encoding': 'chunked' } });
    req.on('error', () => undefined);
    req.write(Buffer.alloc(50 * KB, 1));
    await sleep(100);
    assert.equal((await get(svc, 'half')).status, 404);
    assert.equal(adapterNamed(svc.state(), 'main')?.retained?.stats().storedBytes, statsBefore?.storedBytes);
    req.destroy();
    await until(async () => (await objectFiles(root())).every((f) => !f.name.startsWith('.tmp-')));
    assert.equal((await get(svc, 'half')).status, 404);
    assert.ok((await objectFiles(root())).every((f) => !f.name.startsWith('.tmp-')), 'the cut upload left no temporary file');
  });
});

describe('retention: a reload with a smaller max_size', () => {
  it('evicts down to the new bound at once, keeping the most recently used', async () => {
    const svc = await startTestService({ toml: toml(1024 * KB) });
    try {
      for (const k of ['r1', 'r2', 'r3', 'r4']) assert.equal((await put(svc, k, Buffer.alloc(100 * KB))).status, 200);
      await (await get(svc, 'r1')).arrayBuffer();
      await (await import('node:fs/promises')).writeFile(svc.configFile as string, toml(210 * KB));
      assert.equal(await svc.reload(), true);
      await until(async () => (await objectFiles(join(svc.dataDir, 'data', 'objects'))).length === 2);
      const files = await objectFiles(join(svc.dataDir, 'data', 'objects'));
      assert.equal(files.length, 2);
      assert.equal((await fetch(`${svc.url}/v1/cache/42/r1`, { method: 'HEAD' })).status, 200, 'r1 was used last');
      assert.equal((await fetch(`${svc.url}/v1/cache/42/r4`, { method: 'HEAD' })).status, 200);
    } finally {
      await svc.stop();
    }
  });
});

describe('retention: eviction under a reader', () => {
  let big: TestService;
  before(async () => {
    big = await startTestService({ toml: toml(40 * 1024 * KB) });
  });
  after(async () => big.stop());

  it('an object evicted while it is being downloaded: the download completes intact', async () => {
    const data = randomBytes(32 * 1024 * KB);
    assert.equal((await put(big, 'reading', data)).status, 200);
    const received: Buffer[] = [];
    const res = await new Promise<import('node:http').IncomingMessage>((res) => request(`${big.url}/v1/cache/42/reading`, res).end());
    assert.equal(res.statusCode, 200);
    res.pause();
    // 32 MiB: more than loopback socket buffers hold, so the service still has the file open.
    // Two new objects push 'reading' out (it is the least recently used once they are stored).
    assert.equal((await put(big, 'push1', Buffer.alloc(5 * 1024 * KB, 7))).status, 200);
    assert.equal((await put(big, 'push2', Buffer.alloc(5 * 1024 * KB, 8))).status, 200);
    await sleep(50);
    assert.equal((await get(big, 'reading')).status, 404, 'evicted from the index and unlinked');
    const stats = adapterNamed(big.state(), 'main')?.retained?.stats();
    assert.ok(stats && stats.usedBytes > stats.storedBytes, 'the reader\'s bytes still count (draining)');
    res.resume();
    for await (const c of res) received.push(c as Buffer);
    assert.equal(sha(Buffer.concat(received)), sha(data));
    // The service closes its descriptor after its last write: poll rather than guess how long that takes.
    const statsNow = () => adapterNamed(big.state(), 'main')?.retained?.stats();
    for (let i = 0; i < 100 && statsNow()?.usedBytes !== statsNow()?.storedBytes; i++) await sleep(20);
    const after = statsNow();
    assert.equal(after?.usedBytes, after?.storedBytes, 'draining bytes released when the reader closed');
  });
});

describe('retention: max_age, restart, crash', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cachegate-retention-'));
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  const putTo = (s: RetainedStore, name: string, b: Buffer) => s.put(name, { body: Readable.from([b]), contentLength: b.length, metadata: {}, maxSize: 0 });

  it('max_age removes objects not used for that long; a use resets the age (sweep with a clock)', async () => {
    let now = 1_000_000_000_000;
    const s = new RetainedStore(join(dir, 'age'), { maxSize: 10 * 1024 * KB, maxAge: 60 }, { now: () => now });
    await s.open();
    await putTo(s, 'old', Buffer.alloc(KB));
    now += 30_000;
    await putTo(s, 'young', Buffer.alloc(KB));
    now += 31_000; // 'old' unused for 61 s, 'young' for 31 s
    s.sweep();
    await until(async () => (await s.head('old')) === null);
    assert.equal(await s.head('old'), null);
    (await s.get('young'))?.body.destroy(); // a use at 61 s
    now += 39_000; // 'young' last used 39 s ago (70 s after its upload)
    s.sweep();
    assert.ok(await s.head('young'));
    now += 22_000;
    s.sweep();
    await s.close();
    assert.equal(s.index.objects, 0);
    assert.equal(s.stats().evictions.age, 2);
    assert.deepEqual(await objectFiles(join(dir, 'age', 'objects')), []);
  });

  it('restart: the index is rebuilt from the directory, last uses included', async () => {
    const data = join(dir, 'restart');
    const s = new RetainedStore(data, { maxSize: 10 * 1024 * KB, maxAge: 0 });
    await s.open();
    for (const n of ['x', 'y', 'z']) {
      await putTo(s, n, Buffer.alloc(50 * KB));
      await sleep(15); // distinct atimes
    }
    (await s.get('x'))?.body.destroy(); // x is now the most recently used
    await s.close(); // flushes last uses as atimes
    const files = await objectFiles(join(data, 'objects'));
    const s2 = new RetainedStore(data, { maxSize: 3 * 51 * KB, maxAge: 0 });
    await s2.open();
    assert.equal(s2.index.objects, 3);
    assert.equal(s2.index.storedBytes, files.reduce((n, f) => n + f.size, 0));
    await putTo(s2, 'w', Buffer.alloc(50 * KB)); // over: y (oldest use) goes, x stays
    assert.equal(await s2.head('y'), null);
    assert.ok(await s2.head('x'));
    assert.ok(await s2.head('z'));
    await s2.close();
  });

  it('kill -9 during uploads: after a restart no temporary file is left and nothing half-written is served', async () => {
    const data = join(dir, 'crash');
    const conf = join(dir, 'crash.toml');
    await (await import('node:fs/promises')).writeFile(conf, toml(50 * 1024 * KB));
    const start = async () => {
      const child = spawn(process.execPath, [BIN, 'serve', '--config', conf, '--listen', '127.0.0.1:0', '--data-dir', data], {
        env: { PATH: process.env.PATH ?? '', CACHEGATE_LOG_FORMAT: 'text' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const url = await new Promise<string>((res, rej) => {
        let out = '';
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
          if (m) res(m[1]);
        });
        child.on('exit', (code) => rej(new Error(`exited ${code}: ${out}`)));
      });
      return { child, url };
    };
    const first = await start();
    assert.equal((await put(first, 'done', Buffer.alloc(10 * KB, 5))).status, 200);
    const reqs = ['p1', 'p2', 'p3'].map((k) => {
      const req = request(`${first.url}/v1/cache/42/${k}`, { method: 'PUT', headers: { 'transfer-encoding': 'chunked' } });
      req.on('error', () => undefined);
      req.write(Buffer.alloc(200 * KB, 9));
      return req;
    });
    // Wait until the three temporary files exist, then kill -9.
    for (let i = 0; i < 100 && (await objectFiles(join(data, 'objects'))).filter((f) => f.name.startsWith('.tmp-')).length < 3; i++) await sleep(20);
    assert.equal((await objectFiles(join(data, 'objects'))).filter((f) => f.name.startsWith('.tmp-')).length, 3);
    first.child.kill('SIGKILL');
    await new Promise((r) => first.child.once('exit', r));
    for (const r of reqs) r.destroy();
    const second = await start();
    try {
      const files = await objectFiles(join(data, 'objects'));
      assert.deepEqual(files.filter((f) => !/^[0-9a-f]{64}$/.test(f.name)), [], 'no temporary file left');
      assert.equal(files.length, 1);
      for (const k of ['p1', 'p2', 'p3']) assert.equal((await get(second, k)).status, 404);
      assert.equal(sha(Buffer.from(await (await get(second, 'done')).arrayBuffer())), sha(Buffer.alloc(10 * KB, 5)));
    } finally {
      second.child.kill('SIGTERM');
      await new Promise((r) => second.child.once('exit', r));
    }
  });

  it('temporary files of a live writer are kept at start-up; of a dead one, removed', async () => {
    const root = join(dir, 'tmpfiles', 'objects', 'ab');
    await mkdir(root, { recursive: true });
    const live = spawn('sleep', ['30']);
    const fs = await import('node:fs/promises');
    await fs.writeFile(join(root, `.tmp-${live.pid}-00ff`), 'x');
    await fs.writeFile(join(root, `.tmp-999999999-00ff`), 'x');
    await fs.writeFile(join(root, `.tmp-0123456789abcdef`), 'x'); // the older name form
    await scanStore(join(dir, 'tmpfiles', 'objects'));
    assert.deepEqual(await readdir(root), [`.tmp-${live.pid}-00ff`]);
    live.kill();
  });
});

describe('retention: a full disk (tmpfs)', () => {
  let mnt: string;
  let mounted = false;
  before(async () => {
    mnt = await mkdtemp(join(tmpdir(), 'cachegate-full-'));
    mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mnt]).status === 0;
  });
  after(async () => {
    if (mounted) spawnSync('umount', [mnt]);
    await rm(mnt, { recursive: true, force: true });
  });

  it('ENOSPC answers 507 with nothing corrupt, no temporary file, and the store goes on', async (t) => {
    if (!mounted) {
      t.skip('cannot mount a tmpfs here (needs root / CAP_SYS_ADMIN)');
      return;
    }
    // max_size above the filesystem's size: the disk fills before the bound applies.
    const opts = { file: join(mnt, 'none.toml'), env: {}, listen: '127.0.0.1:0', dataDir: mnt };
    const svc = await startService({ config: parseConfigText(toml(100 * 1024 * KB), opts.file, {}, opts), log: silentLogger(), watch: false });
    try {
      const first = randomBytes(1200 * KB);
      assert.equal((await put(svc, 'first', first)).status, 200);
      const r = await put(svc, 'second', randomBytes(1200 * KB));
      assert.equal(r.status, 507);
      const body = (await r.json()) as any;
      assert.equal(body.error.code, 'insufficient_storage');
      assert.match(body.error.message, /full/);
      const files = await objectFiles(join(mnt, 'objects'));
      assert.equal(files.length, 1, 'only the first object; no temporary file');
      assert.equal(sha(Buffer.from(await (await get(svc, 'first')).arrayBuffer())), sha(first));
      assert.equal((await get(svc, 'second')).status, 404);
      assert.equal((await put(svc, 'small', Buffer.alloc(10 * KB))).status, 200, 'still writable once there is room');
    } finally {
      await svc.close();
    }
  });
});
