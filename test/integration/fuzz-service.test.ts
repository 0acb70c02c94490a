/**
 * Random keys, project ids, JSON bodies and paths against the running service: never a 5xx, and no
 * file anywhere but the data directory's own object files. Seeded, so a failure can be replayed
 * (CACHEGATE_FUZZ_SEED, CACHEGATE_FUZZ_COUNT).
 */
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startTestService, type TestService } from '../support/service.ts';
import { rng } from '../support/rng.ts';

const SEED = Number(process.env.CACHEGATE_FUZZ_SEED ?? Date.now() % 1e9);
const COUNT = Number(process.env.CACHEGATE_FUZZ_COUNT ?? 10_000);
const TOKEN = 'glrt-fuzzfuzzfuzz';

const PIECES = ['/', '//', '.', '..', '...', '\\', '%2e', '%2E', '%2f', '%2F', '%5c', '%', '%zz', ' ', '\t', '\r', '\n', '\0', '-protected', 'a', 'key', 'é', '✓', '\u202e', '\ud800', '😀', '?', '#', '&', '=', '"', "'", '<', '*', '~', '\x7f'];

function randomKey(r: () => number): string {
  const n = Math.floor(r() * 12);
  let s = '';
  for (let i = 0; i < n; i++) s += r() < 0.8 ? PIECES[Math.floor(r() * PIECES.length)] : String.fromCharCode(Math.floor(r() * 0x3000));
  if (r() < 0.02) s += 'x'.repeat(Math.floor(r() * 6000));
  return s;
}

function randomValue(r: () => number, depth = 0): unknown {
  const k = Math.floor(r() * 9);
  switch (k) {
    case 0: return null;
    case 1: return r() < 0.5;
    case 2: return Math.floor(r() * 2 ** 53) * (r() < 0.2 ? -1 : 1);
    case 3: return r() * 1e6;
    case 4: return randomKey(r);
    case 5: return depth > 2 ? [] : Array.from({ length: Math.floor(r() * 4) }, () => randomValue(r, depth + 1));
    case 6: return depth > 2 ? {} : { [randomKey(r)]: randomValue(r, depth + 1) };
    case 7: return String(Math.floor(r() * 1e6));
    default: return Number.MAX_SAFE_INTEGER + 2;
  }
}

const OPS = ['download', 'upload', 'head'];

function randomBody(r: () => number): string {
  const roll = r();
  if (roll < 0.05) return randomKey(r); // not JSON at all
  if (roll < 0.1) return JSON.stringify(randomValue(r));
  const body: Record<string, unknown> = {
    operation: r() < 0.9 ? OPS[Math.floor(r() * 3)] : randomValue(r),
    key: r() < 0.9 ? randomKey(r) : randomValue(r),
    projectId: r() < 0.7 ? String(Math.floor(r() * 1000)) : r() < 0.5 ? Math.floor(r() * 1000) : randomKey(r),
  };
  if (r() < 0.3) body.hashKeys = r() < 0.8 ? r() < 0.5 : randomValue(r);
  if (r() < 0.3) body.timeoutSeconds = r() < 0.8 ? Math.floor(r() * 100000) : randomValue(r);
  if (r() < 0.3) body.contentLength = r() < 0.8 ? Math.floor(r() * 1e9) : randomValue(r);
  if (r() < 0.2) body.fallbackKeys = r() < 0.8 ? Array.from({ length: Math.floor(r() * 20) }, () => randomKey(r)) : randomValue(r);
  if (r() < 0.2) body.fallbackKey = r() < 0.8 ? randomKey(r) : randomValue(r);
  if (r() < 0.05) body[randomKey(r)] = randomValue(r);
  return JSON.stringify(body);
}

async function listFiles(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true, withFileTypes: true })).filter((d) => !d.isDirectory()).map((d) => join(d.parentPath, d.name));
}

describe(`fuzz: ${COUNT} random requests (seed ${SEED})`, () => {
  let svc: TestService;
  before(async () => {
    svc = await startTestService({ toml: `[[runners]]\nname="f"\ntoken="${TOKEN}"\n[runners.cache]\nType="local"\nMaxUploadedArchiveSize=4096\n` });
  });
  after(async () => svc.stop());

  it('never answers 5xx and writes nothing outside the data directory', async () => {
    const r = rng(SEED);
    const statuses = new Map<number, number>();
    const failures: string[] = [];
    let uploads = 0;
    const one = async (i: number): Promise<void> => {
      const body = randomBody(r);
      const res = await fetch(`${svc.url}/v1/presign`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body });
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      const text = await res.text();
      if (res.status >= 500) failures.push(`#${i} ${res.status} ${body.slice(0, 200)} → ${text.slice(0, 200)}`);
      if (res.status >= 400) {
        const json = JSON.parse(text) as { error?: { code?: string; message?: string } };
        if (!json.error?.code || !json.error.message) failures.push(`#${i} ${res.status} without code/message: ${text.slice(0, 200)}`);
        if (/\n\s+at /.test(text)) failures.push(`#${i} stack trace in response`);
        return;
      }
      // Use a share of the URLs for real, so the store sees the random object names.
      const a = JSON.parse(text) as { method: string; url: string; headers: Record<string, string> };
      if (a.method === 'PUT' && r() < 0.3) {
        uploads++;
        const put = await fetch(a.url, { method: 'PUT', headers: a.headers, body: Buffer.alloc(Math.floor(r() * 6000)) });
        await put.arrayBuffer();
        if (put.status >= 500) failures.push(`#${i} PUT ${put.status}`);
      } else if (a.method !== 'PUT' && r() < 0.1) {
        const get = await fetch(a.url, { method: a.method });
        await get.arrayBuffer();
        if (get.status >= 500) failures.push(`#${i} ${a.method} ${get.status}`);
      }
    };
    const CONCURRENCY = 8;
    let next = 0;
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      while (next < COUNT) await one(next++);
    }));

    // Random paths on the proxy and blob routes.
    for (let i = 0; i < Math.min(COUNT, 2000); i++) {
      const path = (r() < 0.5 ? '/v1/cache/' : '/v1/blob/') + encodeURI(randomKey(r).toWellFormed()).replace(/%25/g, r() < 0.5 ? '%' : '%25');
      const method = ['GET', 'HEAD', 'PUT'][Math.floor(r() * 3)];
      let res: Response;
      try {
        res = await fetch(svc.url + path + (r() < 0.3 ? '?X-Cachegate-Expires=9999999999&X-Cachegate-Signature=00' : ''), {
          method,
          headers: r() < 0.5 ? { authorization: `Bearer ${TOKEN}` } : {},
          body: method === 'PUT' ? 'x' : undefined,
        });
      } catch {
        continue; // a URL that fetch itself refuses to send
      }
      await res.arrayBuffer();
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      if (res.status >= 500) failures.push(`${method} ${path.slice(0, 120)} → ${res.status}`);
    }

    assert.deepEqual(failures.slice(0, 20), [], `seed ${SEED}`);
    assert.ok((statuses.get(200) ?? 0) > COUNT / 10, `enough requests were accepted to exercise the store: ${JSON.stringify([...statuses])}`);
    assert.ok(uploads > 0);

    // Nothing but the object files (and the signing key, the config file) anywhere under the test root.
    const files = await listFiles(svc.dataDir);
    const stray = files.map((f) => relative(svc.dataDir, f)).filter((f) => !/^data\/objects\/[0-9a-f]{2}\/[0-9a-f]{64}$/.test(f) && f !== 'data/.signing-key' && f !== 'config.toml');
    assert.deepEqual(stray, []);
  });
});
