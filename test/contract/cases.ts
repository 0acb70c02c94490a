/**
 * The contract cases: one list, run by contract.test.ts against every fixture on its real server.
 * Presigned URLs are used by plain fetch, exactly as the helper (or curl) would.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { CacheAdapter, PresignMethod } from '../../src/adapter.ts';
import { CacheGateError } from '../../src/errors.ts';
import { objectName } from '../../src/keys/object-name.ts';
import type { ContractBackend } from './types.ts';

export interface CaseContext {
  backend: ContractBackend;
  adapter: CacheAdapter;
  /** Object name in this run's namespace: runner/<short>/project/<id>/<key> below a random Path. */
  name(key: string, opts?: { runner?: string; project?: string }): string;
}

export interface ContractCase {
  name: string;
  run(c: CaseContext): Promise<void>;
}

/** SPEC §2.3 object name, computed by the keys module (Path = this run's random root, Shared = false). */
export function objectNameFor(path: string, shortToken: string, projectId: string, key: string): string {
  const r = objectName({ path, shared: false, shortToken, projectId }, key, false);
  if (!r.ok) throw new Error(r.message);
  return r.objectName;
}

export async function presign(c: CaseContext, method: PresignMethod, objectName: string, extra: { metadata?: Record<string, string>; now?: number; expiresIn?: number; contentLength?: number } = {}) {
  return c.adapter.presign({
    method,
    objectName,
    expiresIn: extra.expiresIn ?? 600,
    metadata: extra.metadata ?? {},
    ...(extra.now !== undefined ? { now: extra.now } : {}),
    ...(extra.contentLength !== undefined ? { contentLength: extra.contentLength } : {}),
  });
}

/**
 * PUT through a presigned URL with its headers (plus Content-Type, as the helper sends it). A returned
 * Content-Length is left to fetch, which sends the body's real length: an oversized body is then an
 * honest client sending more than was signed, which the server must refuse.
 */
export async function presignedPut(url: string, headers: Record<string, string>, body: Buffer): Promise<Response> {
  const h: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() !== 'content-length') h[k] = v;
  if (!Object.keys(h).some((k) => k.toLowerCase() === 'content-type')) h['Content-Type'] = 'application/octet-stream';
  return fetch(url, { method: 'PUT', headers: h, body });
}

export function defaultTamper(url: string): string {
  const u = new URL(url);
  for (const p of ['X-Amz-Signature', 'X-Goog-Signature', 'Signature', 'sig', 'signature']) {
    const v = u.searchParams.get(p);
    if (v) {
      const i = Math.floor(v.length / 2);
      u.searchParams.set(p, v.slice(0, i) + (v[i] === '0' ? '1' : '0') + v.slice(i + 1));
      return u.toString();
    }
  }
  throw new Error(`no signature parameter found in ${u.origin}${u.pathname}: give capabilities.tamper`);
}

const bytes = (n: number): Buffer => randomBytes(n);
const is413 = (e: unknown): boolean => e instanceof CacheGateError && e.code === 'payload_too_large' && e.status === 413;
const body = async (r: Response): Promise<Buffer> => Buffer.from(await r.arrayBuffer());

export const cases: ContractCase[] = [
  {
    name: 'presigned round trip: PUT by fetch, GET/HEAD return bytes and metadata',
    async run(c) {
      const name = c.name('round-trip');
      const data = bytes(1500);
      const put = await presign(c, 'PUT', name, { metadata: { cachekey: 'round trip key' } });
      const r = await presignedPut(put.url, put.headers, data);
      assert.ok(r.ok, `PUT ${r.status}: ${await r.text()}`);
      const get = await presign(c, 'GET', name);
      const g = await fetch(get.url);
      assert.equal(g.status, 200);
      assert.deepEqual(await body(g), data);
      assert.equal(g.headers.get(`${c.backend.capabilities.metaHeaderPrefix}cachekey`), 'round trip key');
      const head = await presign(c, 'HEAD', name);
      const h = await fetch(head.url, { method: 'HEAD' });
      assert.equal(h.status, 200);
      assert.equal(h.headers.get('content-length'), String(data.length));
      assert.equal(h.headers.get(`${c.backend.capabilities.metaHeaderPrefix}cachekey`), 'round trip key');
    },
  },
  {
    name: 'proxy round trip: put, head, get return bytes and metadata',
    async run(c) {
      const name = c.name('proxy-round-trip');
      const data = bytes(2000);
      const info = await c.adapter.put(name, { body: Readable.from([data.subarray(0, 700), data.subarray(700)]), metadata: { cachekey: 'proxy key' }, maxSize: c.backend.maxSize });
      assert.equal(info.size, data.length);
      const head = await c.adapter.head(name);
      assert.equal(head?.size, data.length);
      assert.equal(head?.metadata.cachekey, 'proxy key');
      assert.ok(head.lastModified instanceof Date && !Number.isNaN(head.lastModified.getTime()));
      const got = await c.adapter.get(name);
      assert.ok(got);
      assert.deepEqual(Buffer.concat(await got.body.toArray()), data);
      assert.equal(got.info.metadata.cachekey, 'proxy key');
    },
  },
  {
    name: 'presigned and proxy paths see the same objects',
    async run(c) {
      const a = c.name('cross-a');
      const data = bytes(300);
      const put = await presign(c, 'PUT', a, { metadata: { cachekey: 'a' } });
      assert.ok((await presignedPut(put.url, put.headers, data)).ok);
      const got = await c.adapter.get(a);
      assert.deepEqual(Buffer.concat(await got!.body.toArray()), data);
      const b = c.name('cross-b');
      await c.adapter.put(b, { body: Readable.from([data]), contentLength: data.length, metadata: { cachekey: 'b' }, maxSize: c.backend.maxSize });
      const g = await fetch((await presign(c, 'GET', b)).url);
      assert.deepEqual(await body(g), data);
    },
  },
  {
    name: 'missing object: null via head/get, 404 via presigned GET/HEAD',
    async run(c) {
      const name = c.name('never-written');
      assert.equal(await c.adapter.head(name), null);
      assert.equal(await c.adapter.get(name), null);
      assert.equal(await c.adapter.get(name, { start: 0, end: 9 }), null);
      const expected = c.backend.capabilities.missingStatus;
      const g = await fetch((await presign(c, 'GET', name)).url);
      assert.equal(g.status, expected, c.backend.capabilities.missingReason);
      const h = await fetch((await presign(c, 'HEAD', name)).url, { method: 'HEAD' });
      assert.equal(h.status, expected, c.backend.capabilities.missingReason);
    },
  },
  {
    name: 'expiry: a URL presigned with now in the past is refused, nothing stored',
    async run(c) {
      const name = c.name('expired');
      const past = Date.now() - 2 * 3_600_000;
      const put = await presign(c, 'PUT', name, { now: past, expiresIn: 60, metadata: { cachekey: 'x' } });
      assert.ok(put.expiresAt.getTime() < Date.now());
      const r = await presignedPut(put.url, put.headers, bytes(10));
      assert.ok(c.backend.capabilities.expiredStatuses.includes(r.status), `expired PUT got ${r.status}`);
      assert.equal(await c.adapter.head(name), null);
      await c.adapter.put(name, { body: Readable.from([bytes(10)]), metadata: {}, maxSize: c.backend.maxSize });
      const get = await presign(c, 'GET', name, { now: past, expiresIn: 60 });
      const g = await fetch(get.url);
      assert.ok(c.backend.capabilities.expiredStatuses.includes(g.status), `expired GET got ${g.status}`);
      // The same request presigned now works (so the refusal was the expiry).
      assert.equal((await fetch((await presign(c, 'GET', name)).url)).status, 200);
    },
  },
  {
    name: 'tamper: a changed signature → 403 on GET and PUT, nothing stored',
    async run(c) {
      const tamper = c.backend.capabilities.tamper ?? defaultTamper;
      const name = c.name('tamper');
      const put = await presign(c, 'PUT', name, { metadata: { cachekey: 't' } });
      assert.equal((await presignedPut(tamper(put.url), put.headers, bytes(10))).status, 403);
      assert.equal(await c.adapter.head(name), null);
      assert.ok((await presignedPut(put.url, put.headers, bytes(10))).ok, 'the untampered URL works');
      const get = await presign(c, 'GET', name);
      assert.equal((await fetch(tamper(get.url))).status, 403);
      assert.equal((await fetch(get.url)).status, 200);
    },
  },
  {
    name: 'size cap, presigned: the server refuses a PUT above maxSize and stores nothing',
    async run(c) {
      const max = c.backend.maxSize;
      const name = c.name('cap-presigned');
      // Presigned as the service does when the caller states the size (S3 signs Content-Length then;
      // GCS bounds every upload with x-goog-content-length-range anyway).
      const put = await presign(c, 'PUT', name, { metadata: { cachekey: 'cap' }, contentLength: max });
      const r = await presignedPut(put.url, put.headers, bytes(max + 1));
      assert.ok(r.status >= 400 && r.status < 500, `oversize PUT got ${r.status}`);
      assert.equal(await c.adapter.head(name), null);
      const ok = await presignedPut(put.url, put.headers, bytes(max));
      assert.ok(ok.ok, `PUT of exactly maxSize got ${ok.status}`);
    },
  },
  {
    name: 'size cap, presign: a stated contentLength above maxSize → 413',
    async run(c) {
      const max = c.backend.maxSize;
      await assert.rejects(presign(c, 'PUT', c.name('cap-stated'), { contentLength: max + 1 }), is413);
      await presign(c, 'PUT', c.name('cap-stated'), { contentLength: max });
    },
  },
  {
    name: 'size cap, proxy: put above maxSize → 413 (declared or streamed), nothing stored',
    async run(c) {
      const max = c.backend.maxSize;
      const name = c.name('cap-proxy');
      await assert.rejects(c.adapter.put(name, { body: Readable.from([bytes(max + 1)]), contentLength: max + 1, metadata: {}, maxSize: max }), is413);
      const chunks = Array.from({ length: 4 }, () => bytes(Math.ceil(max / 3)));
      await assert.rejects(c.adapter.put(name, { body: Readable.from(chunks), metadata: {}, maxSize: max }), is413);
      assert.equal(await c.adapter.head(name), null);
    },
  },
  {
    name: 'Range GET: proxy get with a range, presigned GET with a Range header',
    async run(c) {
      const name = c.name('range');
      const data = bytes(1000);
      await c.adapter.put(name, { body: Readable.from([data]), metadata: {}, maxSize: c.backend.maxSize });
      const mid = await c.adapter.get(name, { start: 100, end: 199 });
      assert.deepEqual(mid?.range, { start: 100, end: 199 });
      assert.equal(mid?.info.size, 1000);
      assert.deepEqual(Buffer.concat(await mid!.body.toArray()), data.subarray(100, 200));
      const tail = await c.adapter.get(name, { start: 900 });
      assert.deepEqual(tail?.range, { start: 900, end: 999 });
      assert.deepEqual(Buffer.concat(await tail!.body.toArray()), data.subarray(900));
      await assert.rejects(c.adapter.get(name, { start: 5000 }), (e: unknown) => e instanceof CacheGateError && e.status === 416);
      const g = await fetch((await presign(c, 'GET', name)).url, { headers: { range: 'bytes=10-19' } });
      assert.equal(g.status, 206);
      assert.deepEqual(await body(g), data.subarray(10, 20));
    },
  },
  {
    name: 'namespace isolation: two runners and two projects never share an object',
    async run(c) {
      const key = 'shared/key';
      const names = [
        c.name(key, { runner: 'runnerAAA', project: '1' }),
        c.name(key, { runner: 'runnerBBB', project: '1' }),
        c.name(key, { runner: 'runnerAAA', project: '2' }),
      ];
      assert.equal(new Set(names).size, 3);
      const datas = names.map(() => bytes(64));
      for (let i = 0; i < names.length; i++) {
        const put = await presign(c, 'PUT', names[i], { metadata: { cachekey: key } });
        assert.ok((await presignedPut(put.url, put.headers, datas[i])).ok);
      }
      for (let i = 0; i < names.length; i++) {
        const g = await fetch((await presign(c, 'GET', names[i])).url);
        assert.deepEqual(await body(g), datas[i]);
      }
      // A URL signed for runner A / project 1 does not open runner B's or project 2's object.
      const tamper = (url: string, from: string, to: string): string => {
        const u = new URL(url);
        u.pathname = u.pathname.replace(from, to);
        return u.toString();
      };
      const get = await presign(c, 'GET', names[0]);
      for (const [from, to] of [['runnerAAA', 'runnerBBB'], ['project/1/', 'project/2/']]) {
        const r = await fetch(tamper(get.url, from, to));
        assert.equal(r.status, 403, `${from} → ${to}`);
      }
      const put = await presign(c, 'PUT', names[0], { metadata: { cachekey: key } });
      const r = await presignedPut(tamper(put.url, 'runnerAAA', 'runnerBBB'), put.headers, bytes(64));
      assert.equal(r.status, 403);
      const other = await c.adapter.get(names[1]);
      assert.deepEqual(Buffer.concat(await other!.body.toArray()), datas[1], 'runner B object unchanged');
    },
  },
  {
    name: 'delete and list (S3 front door): name order, paging with startAfter, prefix, delete',
    async run(c) {
      const { adapter } = c;
      if (!adapter.delete || !adapter.list) throw new Error(`${adapter.kind} has no delete/list: list the case in its fixture's skip with the reason`);
      const names = ['b', 'a/2', 'a/1', 'c'].map((k) => c.name(`listing/${k}`));
      for (const n of names) await adapter.put(n, { body: Readable.from([bytes(10)]), contentLength: 10, metadata: {}, maxSize: 0 });
      const prefix = c.name('listing/');
      const sorted = [...names].sort();
      const first = await adapter.list(prefix, { max: 3 });
      assert.deepEqual(first.objects.map((o) => o.name), sorted.slice(0, 3));
      assert.equal(first.truncated, true);
      assert.equal(first.objects[0].size, 10);
      assert.ok(first.objects[0].lastModified instanceof Date);
      const rest = await adapter.list(prefix, { max: 3, startAfter: first.objects[2].name });
      assert.deepEqual(rest.objects.map((o) => o.name), sorted.slice(3));
      assert.equal(rest.truncated, false);
      assert.deepEqual((await adapter.list(c.name('listing/a/'), { max: 10 })).objects.map((o) => o.name), sorted.slice(0, 2));
      assert.deepEqual((await adapter.list(c.name('nothing-here/'), { max: 10 })).objects, []);
      await adapter.delete(names[0]);
      assert.equal(await adapter.head(names[0]), null);
      assert.deepEqual((await adapter.list(prefix, { max: 10 })).objects.map((o) => o.name), sorted.filter((n) => n !== names[0]));
      await adapter.delete(names[0]); // deleting what is gone is not an error (S3 semantics)
      for (const n of names.slice(1)) await adapter.delete(n);
    },
  },
  {
    name: 'ready(): the backend is reachable',
    async run(c) {
      await c.adapter.ready();
    },
  },
];
