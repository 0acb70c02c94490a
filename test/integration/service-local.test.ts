/** The service on its embedded local backend, over real HTTP. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdir, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseConfigText } from '../../src/config/load.ts';
import { goQuote } from '../../src/keys/go-quote.ts';
import { silentLogger } from '../../src/log.ts';
import { startService } from '../../src/service/server.ts';
import { namingVectors, sanitizeVectors } from '../support/vectors.ts';
import { presign, startTestService, type TestService } from '../support/service.ts';

const RUNNER = 'glrt-longtoken';
const READONLY = 'ro-token-0123456789abcdef';
const LIMITED = 'limited-token-0123456789';

// Runners whose short token is "longtoken", one per (Path, Shared) combination of vectors/naming.json.
const combos = [...new Map(namingVectors.objectName.cases.map((c) => [`${c.path}|${c.shared}`, c])).values()];
const comboTokens = ['longtoken', 't1_longtoken', 't2_longtoken', 't3_longtoken', 'glrtr-longtoken', 'glcbt-longtoken'];
const TOML = `
[cachegate]
[[cachegate.api_tokens]]
name = "reader"
token = "${READONLY}"
runner = "main"
read_only = true

[[runners]]
  name = "main"
  token = "${RUNNER}"
  [runners.cache]
    Type = "local"

[[runners]]
  name = "limited"
  token = "${LIMITED}"
  [runners.cache]
    Type = "local"
    MaxUploadedArchiveSize = 1000
${combos.map((c, i) => `
[[runners]]
  name = "combo-${i}"
  token = "${comboTokens[i]}"
  [runners.cache]
    Type = "local"
    Path = "${c.path}"
    Shared = ${c.shared}
`).join('')}`;

async function allFiles(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir, { recursive: true, withFileTypes: true })).filter((d) => d.isFile()).map((d) => join(d.parentPath, d.name));
  } catch {
    return [];
  }
}

const bodyOf = (r: Response): Promise<any> => r.json() as Promise<any>;

/** PUT through node:http so that chunked bodies and odd headers are under the test's control. */
function rawPut(url: string, headers: Record<string, string>, chunks: Buffer[]): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'PUT', headers }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' || err.code === 'EPIPE' ? resolve({ status: -1, body: '' }) : reject(err)));
    for (const c of chunks) req.write(c);
    req.end();
  });
}

describe('service on the local backend', () => {
  let svc: TestService;
  const objectsDir = (): string => join(svc.dataDir, 'data', 'objects');

  before(async () => {
    svc = await startTestService({ toml: TOML });
  });
  after(async () => svc.stop());

  it('walk: presign upload, PUT, presign download, GET the same bytes and the cachekey metadata', async () => {
    const data = randomBytes(300_000);
    const up = await presign(svc, { operation: 'upload', key: 'build/main', projectId: '42' }, RUNNER);
    assert.equal(up.status, 200);
    assert.equal(up.json.method, 'PUT');
    assert.equal(up.json.objectName, 'runner/longtoken/project/42/build/main');
    assert.deepEqual(up.json.metadata, { cachekey: 'build/main' });
    assert.equal(up.json.helperArgs[0], 'cache-archiver');
    const put = await fetch(up.json.url, { method: 'PUT', headers: up.json.headers, body: data });
    assert.equal(put.status, 200);

    const down = await presign(svc, { operation: 'download', key: 'build/main', projectId: 42 }, RUNNER);
    const get = await fetch(down.json.url);
    assert.equal(get.status, 200);
    assert.equal(get.headers.get('x-amz-meta-cachekey'), 'build/main');
    assert.ok(get.headers.get('last-modified'));
    assert.ok(Buffer.from(await get.arrayBuffer()).equals(data));

    const head = await presign(svc, { operation: 'head', key: 'build/main', projectId: 42 }, RUNNER);
    const h = await fetch(head.json.url, { method: 'HEAD' });
    assert.equal(h.status, 200);
    assert.equal(h.headers.get('content-length'), '300000');
    assert.equal(head.json.helperArgs, undefined);
  });

  it('Range GET answers 206 with the slice, suffix ranges too; out-of-range is 416', async () => {
    const data = randomBytes(1000);
    const up = await presign(svc, { operation: 'upload', key: 'ranged', projectId: '1' }, RUNNER);
    await fetch(up.json.url, { method: 'PUT', headers: up.json.headers, body: data });
    const { json } = await presign(svc, { operation: 'download', key: 'ranged', projectId: '1' }, RUNNER);
    const r = await fetch(json.url, { headers: { range: 'bytes=10-19' } });
    assert.equal(r.status, 206);
    assert.equal(r.headers.get('content-range'), 'bytes 10-19/1000');
    assert.ok(Buffer.from(await r.arrayBuffer()).equals(data.subarray(10, 20)));
    const s = await fetch(json.url, { headers: { range: 'bytes=-5' } });
    assert.equal(s.status, 206);
    assert.ok(Buffer.from(await s.arrayBuffer()).equals(data.subarray(995)));
    const bad = await fetch(json.url, { headers: { range: 'bytes=5000-' } });
    assert.equal(bad.status, 416);
    assert.equal((await bodyOf(bad)).error.code, 'range_not_satisfiable');
  });

  it('access log: a download read whole is 200 even when the client closes before the server ends; one cut off is 499', async () => {
    const statusOf = async (reqId: string): Promise<number | undefined> => {
      for (let i = 0; i < 100; i++) {
        const line = svc.logs.map((l) => JSON.parse(l)).find((j) => j.msg === 'request' && j.reqId === reqId);
        if (line) return line.status as number;
        await sleep(20);
      }
      return undefined;
    };
    /** GET over a raw socket: destroys it as soon as `want` body bytes (all of them by default) arrived. */
    const rawGet = (url: string, reqId: string, want?: number): Promise<number> => new Promise((resolve, reject) => {
      const u = new URL(url);
      const sock = connect(Number(u.port), u.hostname);
      let buf = Buffer.alloc(0);
      sock.on('error', reject);
      sock.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        const end = buf.indexOf('\r\n\r\n');
        if (end === -1) return;
        const length = Number(/content-length: (\d+)/i.exec(buf.subarray(0, end).toString('latin1'))?.[1]);
        const body = buf.length - end - 4;
        if (body >= (want ?? length)) {
          sock.destroy();
          resolve(body);
        }
      });
      sock.write(`GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nX-Request-Id: ${reqId}\r\n\r\n`);
    });

    const small = randomBytes(1_000_000);
    const up = await presign(svc, { operation: 'upload', key: 'close-early', projectId: '5' }, RUNNER);
    assert.equal((await fetch(up.json.url, { method: 'PUT', headers: up.json.headers, body: small })).status, 200);
    const down = await presign(svc, { operation: 'download', key: 'close-early', projectId: '5' }, RUNNER);
    for (let i = 0; i < 20; i++) { // the race is not won every time: 20 tries
      assert.equal(await rawGet(down.json.url, `whole-${i}`), small.length);
      assert.equal(await statusOf(`whole-${i}`), 200, `whole-${i}`);
    }

    // Larger than what the socket buffers of both ends hold, so the server cannot have handed it all over.
    const big = Buffer.alloc(64 * 1024 * 1024, 7);
    const upBig = await presign(svc, { operation: 'upload', key: 'cut-off', projectId: '5' }, RUNNER);
    assert.equal((await fetch(upBig.json.url, { method: 'PUT', headers: upBig.json.headers, body: big })).status, 200);
    const downBig = await presign(svc, { operation: 'download', key: 'cut-off', projectId: '5' }, RUNNER);
    await rawGet(downBig.json.url, 'cut-off-1', 1024);
    assert.equal(await statusOf('cut-off-1'), 499);
  });

  it('a missing object is 404 on GET and HEAD', async () => {
    const { json } = await presign(svc, { operation: 'download', key: 'never-uploaded', projectId: '1' }, RUNNER);
    const r = await fetch(json.url);
    assert.equal(r.status, 404);
    assert.equal((await bodyOf(r)).error.code, 'not_found');
    const { json: hj } = await presign(svc, { operation: 'head', key: 'never-uploaded', projectId: '1' }, RUNNER);
    assert.equal((await fetch(hj.url, { method: 'HEAD' })).status, 404);
  });

  it('every refused key in vectors/sanitize.json gets 400 invalid_key and creates nothing', async () => {
    const before = await allFiles(objectsDir());
    for (const c of sanitizeVectors.filter((v) => v.error || v.input === '')) {
      for (const operation of ['upload', 'download', 'head']) {
        const r = await presign(svc, { operation, key: c.input, projectId: '10' }, RUNNER);
        assert.equal(r.status, 400, JSON.stringify(c.input));
        assert.equal(r.json.error.code, 'invalid_key');
        assert.equal(r.json.error.message, c.input === '' ? 'empty cache key' : `cache key ${goQuote(c.input)} could not be sanitized`);
      }
    }
    assert.deepEqual(await allFiles(objectsDir()), before);
  });

  it('every accepted key in vectors/sanitize.json yields its object name', async () => {
    for (const c of sanitizeVectors.filter((v) => !v.error && v.input !== '')) {
      const r = await presign(svc, { operation: 'upload', key: c.input, projectId: '10' }, RUNNER);
      assert.equal(r.status, 200, JSON.stringify(c));
      assert.equal(r.json.objectName, `runner/longtoken/project/10/${c.expected}`);
      assert.equal(r.json.key.human, c.expected);
      assert.equal(r.json.key.changed, c.expected !== c.input);
    }
  });

  it('object names of vectors/naming.json through the API (Path, Shared, hash mode)', async () => {
    // Keys the sanitizer leaves alone (the others are unit-tested on objectName itself).
    for (const c of namingVectors.objectName.cases.filter((v) => v.object && (v.sharded || !v.key.includes('..')))) {
      const token = comboTokens[combos.findIndex((x) => x.path === c.path && x.shared === c.shared)];
      // In hash mode the vector's key is already the SHA-256: send the key it is the hash of.
      const key = c.sharded ? namingVectors.hashing.cases.find((h) => h.sha256 === c.key)?.key : c.key;
      assert.ok(key !== undefined);
      const r = await presign(svc, { operation: 'download', key, projectId: c.project, hashKeys: c.sharded }, token);
      assert.equal(r.status, 200);
      assert.equal(r.json.objectName, c.object);
    }
    for (const h of namingVectors.hashing.cases) {
      const r = await presign(svc, { operation: 'upload', key: h.key, projectId: '10', hashKeys: true }, 'longtoken');
      assert.equal(r.json.objectName, `runner/longtoken/project/10/${h.sha256.slice(0, 2)}/${h.sha256}`);
      assert.equal(r.json.key.stored, h.sha256);
      assert.equal(r.json.metadata.cachekey, h.key);
    }
  });

  it('fallback keys get their own URLs; CACHE_FALLBACK_KEY ending in -protected is refused with a warning', async () => {
    const r = await presign(svc, { operation: 'download', key: 'k', projectId: '5', fallbackKeys: ['f1', '..'], fallbackKey: 'main-protected.' }, RUNNER);
    assert.equal(r.status, 200);
    assert.deepEqual(r.json.fallbacks.map((f: { objectName: string }) => f.objectName), ['runner/longtoken/project/5/f1']);
    assert.deepEqual(r.json.warnings, ['fallback key ".." skipped: cache key ".." could not be sanitized', 'CACHE_FALLBACK_KEY "main-protected." not allowed to end in "-protected"']);
    const ok = await presign(svc, { operation: 'download', key: 'k', projectId: '5', fallbackKey: 'main' }, RUNNER);
    assert.equal(ok.json.fallbacks[0].objectName, 'runner/longtoken/project/5/main');
  });

  it('auth: 401 without or with an unknown token, 403 for uploads with a read-only token', async () => {
    const none = await presign(svc, { operation: 'download', key: 'k', projectId: '1' });
    assert.equal(none.status, 401);
    assert.equal(none.json.error.code, 'unauthorized');
    const wrong = await presign(svc, { operation: 'download', key: 'k', projectId: '1' }, RUNNER + 'x');
    assert.equal(wrong.status, 401);
    const ro = await presign(svc, { operation: 'upload', key: 'k', projectId: '1' }, READONLY);
    assert.equal(ro.status, 403);
    assert.equal(ro.json.error.code, 'forbidden');
    const rod = await presign(svc, { operation: 'download', key: 'k', projectId: '1' }, READONLY);
    assert.equal(rod.status, 200);
    assert.equal(rod.json.objectName, 'runner/longtoken/project/1/k', 'an API token uses its runner\'s namespace');
    const proxyPut = await fetch(`${svc.url}/v1/cache/1/k`, { method: 'PUT', headers: { authorization: `Bearer ${READONLY}` }, body: 'x' });
    assert.equal(proxyPut.status, 403);
  });

  it('bad requests are 400 with a code and a message naming the field, never 500', async () => {
    const cases: Array<[unknown, RegExp]> = [
      ['{not json', /^body: not valid JSON$/],
      [[], /^body: /],
      [{ operation: 'delete', key: 'k', projectId: '1' }, /^operation: /],
      [{ operation: 'upload', projectId: '1' }, /^key: /],
      [{ operation: 'upload', key: 'k', projectId: '../1' }, /^projectId: must be a GitLab project id/],
      [{ operation: 'upload', key: 'k', projectId: '1', timeoutSeconds: -1 }, /^timeoutSeconds: /],
      [{ operation: 'upload', key: 'k', projectId: '1', bogus: true }, /^body: unknown field bogus$/],
      [{ operation: 'upload', key: 'k', project_id: '1' }, /^body: unknown field project_id \(did you mean projectId\?\)$/],
      [{ operation: 'upload', key: 'k' }, /^projectId: required$/],
      [{ operation: 'upload', key: 'k', projectId: true }, /^projectId: has the wrong type or value$/],
      [{ operation: 'upload', key: 'k'.repeat(5000), projectId: '1' }, /^key: is longer than 4096/],
    ];
    for (const [body, msg] of cases) {
      const r = await presign(svc, body, RUNNER);
      assert.equal(r.status, 400, JSON.stringify(body).slice(0, 80));
      assert.equal(r.json.error.code, 'invalid_request');
      assert.match(r.json.error.message, msg);
    }
    const big = await presign(svc, JSON.stringify({ operation: 'upload', key: 'x'.repeat(70_000), projectId: '1' }), RUNNER);
    assert.equal(big.status, 413);
    const wrongMethod = await fetch(`${svc.url}/v1/presign`);
    assert.equal(wrongMethod.status, 405);
    const nowhere = await fetch(`${svc.url}/nowhere`);
    assert.equal(nowhere.status, 404);
    assert.equal((await bodyOf(nowhere)).error.code, 'not_found');
  });

  describe('signed URLs are checked', () => {
    let up: any;
    before(async () => {
      up = (await presign(svc, { operation: 'upload', key: 'signed', projectId: '9', contentLength: 100 }, RUNNER)).json;
      assert.equal(up.headers['content-length'], '100');
    });
    const put = (url: string, headers: Record<string, string>, body: Buffer): Promise<Response> => fetch(url, { method: 'PUT', headers, body });

    it('tampered signature → 403', async () => {
      const u = new URL(up.url);
      const sig = u.searchParams.get('X-Cachegate-Signature') as string;
      u.searchParams.set('X-Cachegate-Signature', (sig[0] === 'a' ? 'b' : 'a') + sig.slice(1));
      const r = await put(u.toString(), up.headers, randomBytes(100));
      assert.equal(r.status, 403);
      assert.equal((await bodyOf(r)).error.code, 'forbidden');
    });
    it('another object name with the same signature → 403', async () => {
      const r = await put(up.url.replace('/project/9/signed', '/project/9/other'), up.headers, randomBytes(100));
      assert.equal(r.status, 403);
    });
    it('an omitted or altered signed header → 403', async () => {
      const { 'x-amz-meta-cachekey': _, ...rest } = up.headers;
      assert.equal((await put(up.url, rest, randomBytes(100))).status, 403);
      assert.equal((await put(up.url, { ...up.headers, 'x-amz-meta-cachekey': 'forged' }, randomBytes(100))).status, 403);
    });
    it('a different body length than the signed Content-Length → 403', async () => {
      const r = await rawPut(up.url, { ...up.headers, 'content-length': '101' }, [randomBytes(101)]);
      assert.equal(r.status, 403);
    });
    it('an edited expiry → 403; the PUT URL used for GET → 403', async () => {
      const u = new URL(up.url);
      u.searchParams.set('X-Cachegate-Expires', String(Number(u.searchParams.get('X-Cachegate-Expires')) + 1000));
      assert.equal((await put(u.toString(), up.headers, randomBytes(100))).status, 403);
      assert.equal((await fetch(up.url)).status, 403);
    });
    it('an expired URL → 403', async () => {
      const short = (await presign(svc, { operation: 'download', key: 'signed', projectId: '9', timeoutSeconds: 1 }, RUNNER)).json;
      await sleep(2100);
      const r = await fetch(short.url);
      assert.equal(r.status, 403);
      assert.match((await bodyOf(r)).error.message, /expired/);
    });
    it('the right request still works, and unsigned metadata headers are not stored', async () => {
      assert.equal((await put(up.url, { ...up.headers, 'x-amz-meta-injected': 'yes' }, randomBytes(100))).status, 200);
      const d = (await presign(svc, { operation: 'download', key: 'signed', projectId: '9' }, RUNNER)).json;
      const get = await fetch(d.url);
      assert.equal(get.headers.get('x-amz-meta-cachekey'), 'signed');
      assert.equal(get.headers.get('x-amz-meta-injected'), null);
    });
  });

  describe('MaxUploadedArchiveSize', () => {
    it('a stated size above the cap is refused at presign with 413', async () => {
      const r = await presign(svc, { operation: 'upload', key: 'big', projectId: '3', contentLength: 1001 }, LIMITED);
      assert.equal(r.status, 413);
      assert.equal(r.json.error.code, 'payload_too_large');
    });
    it('a PUT past the cap (with Content-Length, and chunked) gets 413 and stores nothing', async () => {
      const { json } = await presign(svc, { operation: 'upload', key: 'big', projectId: '3' }, LIMITED);
      assert.equal(json.maxUploadedArchiveSize, 1000);
      const before = await allFiles(objectsDir());
      const withLength = await rawPut(json.url, { ...json.headers, 'content-length': '2000' }, [randomBytes(2000)]);
      assert.ok(withLength.status === 413 || withLength.status === -1, String(withLength.status));
      const chunked = await rawPut(json.url, { ...json.headers, 'transfer-encoding': 'chunked' }, [randomBytes(600), randomBytes(600), randomBytes(600)]);
      assert.ok(chunked.status === 413 || chunked.status === -1, String(chunked.status));
      const proxied = await rawPut(`${svc.url}/v1/cache/3/big`, { authorization: `Bearer ${LIMITED}`, 'transfer-encoding': 'chunked' }, [randomBytes(800), randomBytes(800)]);
      assert.ok(proxied.status === 413 || proxied.status === -1, String(proxied.status));
      await sleep(100);
      assert.deepEqual(await allFiles(objectsDir()), before, 'no object and no temporary file left');
      const get = (await presign(svc, { operation: 'download', key: 'big', projectId: '3' }, LIMITED)).json;
      assert.equal((await fetch(get.url)).status, 404);
      const metrics = await (await fetch(`${svc.url}/metrics`)).text();
      assert.match(metrics, /cachegate_size_limit_refusals_total\{where="blob"\} [1-9]/);
    });
    it('a PUT at the cap is stored', async () => {
      const { json } = await presign(svc, { operation: 'upload', key: 'fits', projectId: '3' }, LIMITED);
      const r = await rawPut(json.url, { ...json.headers, 'transfer-encoding': 'chunked' }, [randomBytes(500), randomBytes(500)]);
      assert.equal(r.status, 200);
    });
  });

  describe('proxy mode', () => {
    const auth = { authorization: `Bearer ${RUNNER}` };
    it('PUT, HEAD, GET (with Range) through /v1/cache/<project>/<key>', async () => {
      const data = randomBytes(50_000);
      const put = await fetch(`${svc.url}/v1/cache/77/some%2Fkey/..%2Fx`, { method: 'PUT', headers: auth, body: data });
      assert.equal(put.status, 200);
      // some%2Fkey/..%2Fx decodes to some/key/../x, which the key rules clean to some/x.
      const head = await fetch(`${svc.url}/v1/cache/77/some/x`, { method: 'HEAD', headers: auth });
      assert.equal(head.status, 200);
      assert.equal(head.headers.get('content-length'), '50000');
      assert.equal(head.headers.get('x-amz-meta-cachekey'), 'some/x');
      const get = await fetch(`${svc.url}/v1/cache/77/some/x`, { headers: { ...auth, range: 'bytes=100-' } });
      assert.equal(get.status, 206);
      assert.ok(Buffer.from(await get.arrayBuffer()).equals(data.subarray(100)));
      // The same object through a presigned URL: one namespace for both paths.
      const d = (await presign(svc, { operation: 'download', key: 'some/x', projectId: '77' }, RUNNER)).json;
      assert.ok(Buffer.from(await (await fetch(d.url)).arrayBuffer()).equals(data));
    });
    it('/v1/blob/../cache/… runs the cache handler and is counted and logged as the cache route', async () => {
      const count = async (route: string): Promise<number> => {
        const text = await (await fetch(`${svc.url}/metrics`)).text();
        return [...text.matchAll(new RegExp(`^cachegate_http_requests_total\\{route="${route}",method="GET",status="(\\d+)"\\} (\\d+)$`, 'gm'))].reduce((n, m) => n + Number(m[2]), 0);
      };
      const before = { cache: await count('cache'), blob: await count('blob') };
      for (const path of ['/v1/blob/../cache/77/routed', '/v1/blob/%2e%2e/cache/77/routed']) {
        const status = await new Promise<number>((resolve, reject) => {
          // node:http sends a `path` option as written (a URL, or fetch, would resolve the dot segments first)
          const u = new URL(svc.url);
          const req = request({ host: u.hostname, port: u.port, path, headers: auth }, (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          });
          req.on('error', reject);
          req.end();
        });
        assert.equal(status, 404, 'the cache handler ran: a miss, not a blob signature refusal');
      }
      assert.equal(await count('cache'), before.cache + 2);
      assert.equal(await count('blob'), before.blob);
      const logged = (): number => svc.logs.filter((l) => l.includes('"path":"/v1/cache/77/routed"')).length;
      for (let i = 0; i < 50 && logged() < 2; i++) await sleep(20);
      assert.equal(logged(), 2);
      assert.ok(!svc.logs.some((l) => l.includes('/v1/blob/') && l.includes('routed')), 'the access log names the path that ran');
    });
    it('refuses keys outside the rules and requests without a token', async () => {
      assert.equal((await fetch(`${svc.url}/v1/cache/77/..`, { headers: auth })).status, 404, 'URL normalization removes the segment: no route');
      const r = await fetch(`${svc.url}/v1/cache/77/%2e%2e`, { headers: auth });
      assert.ok([400, 404].includes(r.status));
      assert.equal((await fetch(`${svc.url}/v1/cache/77/x`)).status, 401);
      assert.equal((await fetch(`${svc.url}/v1/cache/abc/x`, { headers: auth })).status, 400);
      const miss = await fetch(`${svc.url}/v1/cache/77/none`, { headers: auth });
      assert.equal(miss.status, 404);
    });
  });

  it('healthz, readyz, metrics, openapi.json', async () => {
    assert.deepEqual(await bodyOf(await fetch(`${svc.url}/healthz`)), { status: 'ok' });
    const ready = await fetch(`${svc.url}/readyz`);
    assert.equal(ready.status, 200);
    const metrics = await (await fetch(`${svc.url}/metrics`)).text();
    assert.match(metrics, /cachegate_presign_total\{operation="upload",backend="local",result="ok",runner="[^"]+"\} \d+/);
    assert.match(metrics, /cachegate_cache_lookups_total\{method="GET",result="miss"\} \d+/);
    const api = await bodyOf(await fetch(`${svc.url}/openapi.json`));
    assert.equal(api.openapi, '3.1.0');
    assert.deepEqual(api.components.schemas.PresignRequest.required.sort(), ['key', 'operation', 'projectId']);
    const res = await fetch(`${svc.url}/healthz`, { headers: { 'x-request-id': 'abc-123' } });
    assert.equal(res.headers.get('x-request-id'), 'abc-123');
  });

  it('logs carry no token and no signature', async () => {
    const text = svc.logs.join('\n');
    for (const secret of [RUNNER, READONLY, LIMITED, 'X-Cachegate-Signature']) assert.ok(!text.includes(secret), secret);
    assert.match(text, /cache key \\"some-job\/some-ref\/\\" sanitized to|sanitized to/);
  });
});

describe('configuration reload', () => {
  it('applies a valid new file, keeps the old configuration when the new one is invalid', async () => {
    const toml = (token: string): string => `[[runners]]\nname = "r"\ntoken = "${token}"\n[runners.cache]\nType = "local"\n`;
    const svc = await startTestService({ toml: toml('first-token-000000'), watch: true });
    try {
      assert.equal((await presign(svc, { operation: 'head', key: 'k', projectId: '1' }, 'first-token-000000')).status, 200);
      await writeFile(svc.configFile as string, toml('second-token-00000'));
      for (let i = 0; i < 50 && (await presign(svc, { operation: 'head', key: 'k', projectId: '1' }, 'second-token-00000')).status !== 200; i++) await sleep(100);
      assert.equal((await presign(svc, { operation: 'head', key: 'k', projectId: '1' }, 'second-token-00000')).status, 200, 'file change picked up');
      assert.equal((await presign(svc, { operation: 'head', key: 'k', projectId: '1' }, 'first-token-000000')).status, 401);

      await writeFile(svc.configFile as string, '[[runners]]\ntoken = "x"\n[runners.cache]\nType = "nope"\n');
      assert.equal(await svc.reload(), false);
      assert.equal((await presign(svc, { operation: 'head', key: 'k', projectId: '1' }, 'second-token-00000')).status, 200, 'old configuration kept');
      assert.ok(svc.logs.some((l) => l.includes('keeping the previous one')));
      assert.match(await (await fetch(`${svc.url}/metrics`)).text(), /cachegate_config_reloads_total\{result="invalid"\} [1-9]/);
    } finally {
      await svc.stop();
    }
  });
});

describe('configuration reload warnings', () => {
  it('a reload that makes two runners share one namespace (same short token) logs the warning, as a start does', async () => {
    const runner = (name: string, token: string): string => `[[runners]]\nname = "${name}"\ntoken = "${token}"\n[runners.cache]\nType = "local"\n`;
    const svc = await startTestService({ toml: runner('a', 'glrt-samesame1-aaaa') });
    try {
      assert.ok(!svc.logs.some((l) => l.includes('same short form')));
      await writeFile(svc.configFile as string, runner('a', 'glrt-samesame1-aaaa') + runner('b', 'glrt-samesame1-bbbb'));
      assert.equal(await svc.reload(), true);
      const line = svc.logs.find((l) => l.includes('same short form'));
      assert.ok(line, 'the reload logged the shared-namespace warning');
      const entry = JSON.parse(line) as { level: string; msg: string };
      assert.equal(entry.level, 'warn');
      assert.ok(entry.msg.includes('"a"') && entry.msg.includes('"b"') && !line.includes('samesame1'), `names both runners, not the short form: ${entry.msg}`);
    } finally {
      await svc.stop();
    }
  });
});

describe('serving without tokens', () => {
  it('is allowed on loopback (anonymous) and refused on any other address', async () => {
    const svc = await startTestService();
    try {
      const r = await presign(svc, { operation: 'upload', key: 'k', projectId: '1' });
      assert.equal(r.status, 200);
      assert.ok(svc.logs.some((l) => l.includes('serving without authentication')));
    } finally {
      await svc.stop();
    }
    const config = parseConfigText('[cachegate]\nlisten = "0.0.0.0:0"\n[[runners]]\n[runners.cache]\nType = "local"\n', 'x.toml', { CACHEGATE_DATA_DIR: '/tmp/cachegate-never' });
    await assert.rejects(startService({ config, log: silentLogger() }), /refusing to serve without authentication/);
  });
});
