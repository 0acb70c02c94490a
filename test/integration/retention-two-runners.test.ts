/**
 * Two runners on one size-bounded local store ([cachegate.retention]): what one runner's uploads can
 * do to the other's objects and to the bound. A real service over HTTP, raw sockets for uploads
 * that declare more than they send, the data directory listed after each attack.
 */
import assert from 'node:assert/strict';
import { readdir, stat } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { adapterNamed, startTestService, type TestService } from '../support/service.ts';

const KB = 1024;
const A = 'glrt-runnerAAA-attacker-token';
const B = 'glrt-runnerBBB-victim-token01';
const runner = (name: string, token: string): string =>
  `[[runners]]\n  name = "${name}"\n  token = "${token}"\n  [runners.cache]\n    Type = "local"\n    Path = "${name}"\n`;

async function diskBytes(root: string): Promise<{ objects: number; temps: number; bytes: number }> {
  const out = { objects: 0, temps: 0, bytes: 0 };
  for (const d of await readdir(root, { recursive: true, withFileTypes: true }).catch(() => [])) {
    if (!d.isFile()) continue;
    const st = await stat(join(d.parentPath, d.name)).catch(() => undefined);
    if (!st) continue;
    out.bytes += st.size;
    if (/^[0-9a-f]{64}$/.test(d.name)) out.objects++;
    else out.temps++;
  }
  return out;
}

/** A proxy PUT that declares `length` bytes, sends `send` of them, and stays open until `close()`. */
async function openUpload(port: number, token: string, key: string, length: number, send: number): Promise<{ answer: Promise<string>; close: () => void }> {
  const sock = connect(port, '127.0.0.1');
  sock.on('error', () => undefined);
  await new Promise((r) => sock.once('connect', r));
  sock.write(`PUT /v1/cache/7/${key} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Length: ${length}\r\n\r\n`);
  if (send > 0) sock.write(Buffer.alloc(send, 1));
  let text = '';
  sock.on('data', (d: Buffer) => (text += d.toString('latin1')));
  const answer = new Promise<string>((r) => sock.once('close', () => r(text)));
  return { answer, close: () => sock.destroy() };
}

describe('retention with two runners on one store', () => {
  let svc: TestService;
  const port = (): number => Number(new URL(svc.url).port);
  const root = (): string => join(svc.dataDir, 'data', 'objects');
  const put = (token: string, key: string, body: Buffer): Promise<Response> =>
    fetch(`${svc.url}/v1/cache/7/${key}`, { method: 'PUT', body, headers: { authorization: `Bearer ${token}` } });
  const status = (token: string, key: string): Promise<number> =>
    fetch(`${svc.url}/v1/cache/7/${key}`, { method: 'HEAD', headers: { authorization: `Bearer ${token}` } }).then((r) => r.status);

  before(async () => {
    svc = await startTestService({ toml: `[cachegate.retention]\n  max_size = ${520 * KB}\n\n${runner('a', A)}${runner('b', B)}` });
  });
  after(async () => svc.stop());

  it("an upload that declares a large length and sends nothing evicts none of the other runner's objects", async () => {
    for (const k of ['b1', 'b2', 'b3']) assert.equal((await put(B, k, Buffer.alloc(100 * KB, 2))).status, 200);
    // Declares 500 KiB (under max_size and the cap), sends 1 KiB, then hangs up: three times at once.
    const cuts = await Promise.all([1, 2, 3].map((i) => openUpload(port(), A, `void${i}`, 500 * KB, KB)));
    await sleep(300);
    for (const c of cuts) c.close();
    await Promise.all(cuts.map((c) => c.answer));
    for (const k of ['b1', 'b2', 'b3']) assert.equal(await status(B, k), 200, `runner b's ${k} was evicted by bytes that never came`);
  });

  it("eviction follows last use across runners: the other runner's fresh object outlives one's own older ones", async () => {
    for (const k of ['old1', 'old2']) assert.equal((await put(A, k, Buffer.alloc(100 * KB, 3))).status, 200);
    assert.equal((await put(B, 'fresh', Buffer.alloc(100 * KB, 4))).status, 200);
    for (const k of ['n1', 'n2', 'n3']) assert.equal((await put(A, k, Buffer.alloc(100 * KB, 5))).status, 200);
    assert.equal(await status(B, 'fresh'), 200);
    assert.equal(await status(A, 'old1'), 404);
  });

  it('concurrent uploads whose declared total exceeds max_size: the bytes on disk never exceed it', async () => {
    // Eight uploads of 200 KiB each (1.6 MB against a 520 KiB bound), all of their bytes but the last
    // sent at once and held open: nothing may sit on disk beyond the bound.
    const open = await Promise.all(Array.from({ length: 8 }, (_, i) => openUpload(port(), A, `big${i}`, 200 * KB, 200 * KB - 1)));
    await sleep(500);
    const peak = await diskBytes(root());
    for (const c of open) c.close();
    const answers = await Promise.all(open.map((c) => c.answer));
    assert.ok(peak.bytes <= 520 * KB + 8 * KB, `${peak.bytes} bytes on disk (${peak.temps} temporary files) with max_size ${520 * KB}`);
    // Those refused were told so (507, Retry-After) before their last byte.
    for (const a of answers) if (a !== '') assert.match(a, /^HTTP\/1\.1 507 .*\r\n[^]*retry-after: 60/i, JSON.stringify(a.slice(0, 300)));
    for (let i = 0; i < 100 && (await diskBytes(root())).temps > 0; i++) await sleep(20);
    assert.equal((await diskBytes(root())).temps, 0, 'no temporary file left');
    const stats = adapterNamed(svc.state(), 'a')?.retained?.stats();
    assert.equal(stats?.usedBytes, stats?.storedBytes, 'nothing stays reserved');
  });
});
