/**
 * Hostile input against the running service (local backend and S3 on RGW): keys, project ids and
 * metadata built to inject or break headers (CR, LF, NUL, non-ASCII, RFC 2047-looking text, very long
 * keys); body and key size limits; request ids that must not be echoed; per-token rate limits.
 *
 * The rule for every case: either refused with a 4xx {"error":{"code","message"}}, or accepted with
 * every header the presign hands out being plain visible ASCII, x-amz-meta-cachekey encoded exactly
 * as src/keys/header-value.ts encodes the human key (and decoding back to it), and the object name
 * being the namespace + the stored key, unchanged by that encoding. Never a 5xx.
 */
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { decodeHeaderValue, encodeHeaderValue } from '../../src/keys/header-value.ts';
import { hashKey } from '../../src/keys/object-name.ts';
import { sanitizeKey } from '../../src/keys/sanitize.ts';
import { rgw, type Rgw } from '../support/rgw.ts';
import { presign, startTestService, type TestService } from '../support/service.ts';

const LOCAL = 'glrt-hostilelocal01';
const S3 = 'glrt-hostiles3s3s01';
const SHORT = { [LOCAL]: 'hostilelo', [S3]: 'hostiles3' } as const;

/** Header values we hand out must be visible ASCII and spaces only: no CR, LF, NUL, DEL or 8-bit. */
const SAFE_VALUE = /^[\x20-\x7e]*$/;
const TOKEN_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

const HOSTILE_KEYS: Array<[string, string]> = [
  ['CRLF + header', 'a\r\nX-Injected: 1'],
  ['CRLF CRLF + body', 'key\r\n\r\nGET / HTTP/1.1'],
  ['lone LF', 'a\nb'],
  ['lone CR', 'a\rb'],
  ['NUL', 'a\0b'],
  ['TAB', 'tab\there'],
  ['DEL', 'a\x7fb'],
  ['NEL and LINE SEPARATOR', 'a\u0085b\u2028c'],
  ['Latin-1', 'café-ü-ß'],
  ['emoji', 'cache-😀'],
  ['RTL override', 'evil\u202egpj.exe'],
  ['RFC 2047 B word', '=?UTF-8?B?SGVsbG8=?='],
  ['RFC 2047 Q word hiding CRLF', '=?utf-8?q?a=0D=0AX-Evil:_1?='],
  ['RFC 2047 word inside text', 'x =?UTF-8?B?DQpYLUV2aWw6IDE=?= y'],
  ['leading space', ' lead'],
  ['quotes and colon', 'a"b: c;d'],
  ['long but within limits', 'k/'.repeat(400) + 'end'],
];

interface Answer {
  objectName: string;
  key: { raw: string; human: string; stored: string; changed: boolean };
  url: string;
  method: string;
  headers: Record<string, string>;
  metadata: { cachekey: string };
  helperArgs?: string[];
}

function assertError(status: number, json: any, expectStatus: number, what: string): void {
  assert.equal(status, expectStatus, `${what}: ${JSON.stringify(json)}`);
  assert.equal(typeof json?.error?.code, 'string', `${what}: no error code`);
  assert.ok(typeof json.error.message === 'string' && json.error.message.length > 0, `${what}: no error message`);
}

/** Everything the presign hands out that a client will put on the wire is safe, and names are unchanged. */
function assertSafeAnswer(a: Answer, token: keyof typeof SHORT, projectId: string, hashKeys: boolean, what: string): void {
  for (const [name, value] of Object.entries(a.headers)) {
    assert.match(name, TOKEN_NAME, `${what}: header name ${JSON.stringify(name)}`);
    assert.match(value, SAFE_VALUE, `${what}: header ${name} = ${JSON.stringify(value)}`);
  }
  assert.match(a.url, /^[\x21-\x7e]+$/, `${what}: url has raw control, space or 8-bit characters`);
  if (a.method === 'PUT') {
    const sent = a.headers['x-amz-meta-cachekey'];
    assert.equal(sent, encodeHeaderValue(a.key.human), `${what}: x-amz-meta-cachekey is not the encoded human key`);
    assert.equal(decodeHeaderValue(sent), a.key.human, `${what}: x-amz-meta-cachekey does not decode to the human key`);
    for (let i = 0; i < (a.helperArgs ?? []).length; i++) {
      if (a.helperArgs?.[i] === '--header') assert.match(a.helperArgs[i + 1], SAFE_VALUE, `${what}: helper --header`);
    }
  }
  assert.equal(a.metadata.cachekey, a.key.human, `${what}: metadata.cachekey`);
  // The object name is the namespace and the stored key, byte for byte: the header encoding never touches it.
  const shard = hashKeys ? `${a.key.stored.slice(0, 2)}/` : '';
  assert.equal(a.objectName, `runner/${SHORT[token]}/project/${projectId}/${shard}${a.key.stored}`, `${what}: object name`);
}

describe('hostile input', () => {
  let server: Rgw;
  let bucket: string;
  let svc: TestService;

  before(async () => {
    server = await rgw();
    bucket = await server.bucket('hostile');
    svc = await startTestService({
      toml: `
[[runners]]
  name = "local"
  token = "${LOCAL}"
  [runners.cache]
    Type = "local"
[[runners]]
  name = "s3"
  token = "${S3}"
  [runners.cache]
    Type = "s3"
${server.toml(bucket)}
`,
    });
  });
  after(async () => svc?.stop());

  describe('keys and metadata built to inject headers', () => {
    for (const token of [LOCAL, S3] as const) {
      const backend = token === LOCAL ? 'local' : 's3';
      it(`${backend}: every hostile key is refused with a 4xx or handed out with safe, correctly encoded headers`, async () => {
        for (const [label, key] of HOSTILE_KEYS) {
          for (const hashKeys of [false, true]) {
            for (const operation of ['upload', 'download', 'head']) {
              const what = `${label} (${operation}${hashKeys ? ', hash mode' : ''})`;
              const r = await presign(svc, { operation, key, projectId: '42', hashKeys }, token);
              assert.ok(r.status < 500, `${what}: ${r.status} ${JSON.stringify(r.json)}`);
              if (r.status !== 200) {
                assertError(r.status, r.json, 400, what);
                continue;
              }
              assertSafeAnswer(r.json, token, '42', hashKeys, what);
              if (hashKeys) {
                assert.equal(r.json.key.human, key, `${what}: hash mode keeps the raw key as the human key`);
                assert.equal(r.json.key.stored, hashKey(key));
              } else {
                const s = sanitizeKey(key);
                assert.ok(s.ok);
                assert.equal(r.json.key.human, s.key, `${what}: human key`);
              }
            }
          }
        }
      });
    }

    it('a header value that needs encoding is encoded, and plain ASCII passes unchanged (the check above is not vacuous)', async () => {
      const crlf = await presign(svc, { operation: 'upload', key: 'a\r\nX-Injected: 1', projectId: '42', hashKeys: true }, LOCAL);
      assert.equal(crlf.status, 200);
      assert.match(crlf.json.headers['x-amz-meta-cachekey'], /^=\?UTF-8\?B\?[A-Za-z0-9+/=]+\?=$/);
      const word = await presign(svc, { operation: 'upload', key: '=?UTF-8?B?SGVsbG8=?=', projectId: '42' }, LOCAL);
      assert.notEqual(word.json.headers['x-amz-meta-cachekey'], '=?UTF-8?B?SGVsbG8=?=', 'an RFC 2047-looking key must not pass as-is: it would decode to another key');
      const plain = await presign(svc, { operation: 'upload', key: 'build/main', projectId: '42' }, LOCAL);
      assert.equal(plain.json.headers['x-amz-meta-cachekey'], 'build/main');
    });

    it('hostile project ids are refused with 400 naming projectId', async () => {
      for (const projectId of ['1\r\nX-Injected: 1', '4\n2', '١٢', ' 1', '1 ', '1e3', '-1', '0x10', '12345678901234567890', '', '../1', 1.5, -3, null, {}]) {
        const r = await presign(svc, { operation: 'upload', key: 'k', projectId }, LOCAL);
        assertError(r.status, r.json, 400, `projectId ${JSON.stringify(projectId)}`);
        assert.match(r.json.error.message, /projectId/);
      }
    });

    it('keys over the limits: > 4096 characters → 400 naming the key; object name > 1024 bytes → 400 invalid_key; > 16 fallback keys → 400', async () => {
      const huge = await presign(svc, { operation: 'upload', key: 'x'.repeat(4097), projectId: '1' }, LOCAL);
      assertError(huge.status, huge.json, 400, 'key of 4097 characters');
      assert.match(huge.json.error.message, /^key: /);
      const atLimit = await presign(svc, { operation: 'upload', key: 'x'.repeat(4096), projectId: '1' }, LOCAL);
      assertError(atLimit.status, atLimit.json, 400, 'key of 4096 characters (object name too long)');
      assert.equal(atLimit.json.error.code, 'invalid_key');
      const multibyte = await presign(svc, { operation: 'upload', key: 'é'.repeat(600), projectId: '1' }, LOCAL);
      assertError(multibyte.status, multibyte.json, 400, '600 × é (1200 bytes)');
      assert.equal(multibyte.json.error.code, 'invalid_key');
      const fits = await presign(svc, { operation: 'upload', key: 'x'.repeat(900), projectId: '1' }, LOCAL);
      assert.equal(fits.status, 200, 'a 900-character key fits in 1024 bytes of object name');
      const fallback = await presign(svc, { operation: 'download', key: 'k', projectId: '1', fallbackKeys: ['y'.repeat(4097)] }, LOCAL);
      assertError(fallback.status, fallback.json, 400, 'fallback key of 4097 characters');
      const many = await presign(svc, { operation: 'download', key: 'k', projectId: '1', fallbackKeys: Array.from({ length: 17 }, (_, i) => `f${i}`) }, LOCAL);
      assertError(many.status, many.json, 400, '17 fallback keys');
      assert.match(many.json.error.message, /^fallbackKeys: /);
      assert.equal((await presign(svc, { operation: 'download', key: 'k', projectId: '1', fallbackKeys: Array.from({ length: 16 }, (_, i) => `f${i}`) }, LOCAL)).status, 200);
      // Through the proxy path too (the key comes from the URL, not JSON).
      const auth = { authorization: `Bearer ${LOCAL}` };
      const proxied = await fetch(`${svc.url}/v1/cache/1/${'x'.repeat(5000)}`, { method: 'PUT', headers: auth, body: 'data' });
      assertError(proxied.status, await proxied.json(), 400, 'proxy key of 5000 characters');
    });

    it('proxy: a key with CR/LF/NUL/non-ASCII in the path is stored, and GET/HEAD give back only safe, encoded headers', async () => {
      const auth = { authorization: `Bearer ${LOCAL}` };
      for (const key of ['a\r\nX-Injected: 1', 'nul\0byte', 'café 😀', '=?UTF-8?B?SGVsbG8=?=']) {
        const path = `${svc.url}/v1/cache/3/${encodeURIComponent(key)}`;
        const put = await fetch(path, { method: 'PUT', headers: auth, body: `body of ${key}` });
        assert.equal(put.status, 200, `PUT ${JSON.stringify(key)}: ${await put.text()}`);
        for (const method of ['GET', 'HEAD']) {
          const res = await rawRequest(svc.port, method, new URL(path).pathname, auth);
          assert.equal(res.status, 200, `${method} ${JSON.stringify(key)}`);
          for (const [name, value] of res.headers) assert.match(value, SAFE_VALUE, `${method} ${JSON.stringify(key)}: ${name}`);
          const human = (sanitizeKey(key) as { key: string }).key;
          assert.equal(res.headers.find(([n]) => n === 'x-amz-meta-cachekey')?.[1], encodeHeaderValue(human));
          assert.equal(res.headers.filter(([n]) => n === 'x-injected').length, 0);
        }
      }
    });
  });

  it('hostile Range headers get 200, 206 or 416, never a 5xx', async () => {
    const auth = { authorization: `Bearer ${LOCAL}` };
    assert.equal((await fetch(`${svc.url}/v1/cache/4/ranged`, { method: 'PUT', headers: auth, body: 'x'.repeat(100) })).status, 200);
    const ranges = ['bytes=0-99999999999999999999999', 'bytes=99999999999999999999-', 'bytes=-99999999999999999999', 'bytes=-0', 'bytes=5-1',
      'bytes=0-1,2-3', 'bytes=100-', 'bytes=1e3-', 'bytes=0x10-', 'bytes= 1-2', 'items=0-1', 'bytes=-', 'x'.repeat(8000)];
    for (const range of ranges) {
      const res = await rawRequest(svc.port, 'GET', '/v1/cache/4/ranged', { ...auth, range });
      assert.ok([200, 206, 416].includes(res.status), `Range ${range.slice(0, 40)}: ${res.status} ${res.body.slice(0, 200)}`);
      if (res.status === 416) assert.equal(JSON.parse(res.body).error.code, 'range_not_satisfiable');
    }
  });

  describe('signed headers cannot be forged', () => {
    it('RGW: an upload with the returned headers stores exactly the encoded cachekey; HEAD gives it back byte for byte', async () => {
      for (const [label, key] of HOSTILE_KEYS.filter(([l]) => !l.startsWith('long'))) {
        const up = await presign(svc, { operation: 'upload', key, projectId: '9', hashKeys: true }, S3);
        assert.equal(up.status, 200, `${label}: ${JSON.stringify(up.json)}`);
        const put = await fetch(up.json.url, { method: 'PUT', headers: up.json.headers, body: `data of ${label}` });
        assert.equal(put.status, 200, `${label}: RGW refused the upload: ${await put.text()}`);
        const head = await presign(svc, { operation: 'head', key, projectId: '9', hashKeys: true }, S3);
        const h = await fetch(head.json.url, { method: 'HEAD' });
        assert.equal(h.status, 200, label);
        assert.equal(h.headers.get('x-amz-meta-cachekey'), up.json.headers['x-amz-meta-cachekey'], `${label}: stored metadata`);
        assert.equal(decodeHeaderValue(h.headers.get('x-amz-meta-cachekey') as string), key, `${label}: decodes to the key`);
      }
    });

    it('RGW: a forged or dropped x-amz-meta-cachekey → 403; an extra unsigned x-amz-meta-* cannot change the signed cachekey', async (t) => {
      const up = await presign(svc, { operation: 'upload', key: 'forge/me', projectId: '9' }, S3);
      const forged = await fetch(up.json.url, { method: 'PUT', headers: { ...up.json.headers, 'x-amz-meta-cachekey': 'other/key' }, body: 'x' });
      assert.equal(forged.status, 403, 'a changed signed metadata header must be refused');
      const dropped = await fetch(up.json.url, { method: 'PUT', body: 'x' });
      assert.equal(dropped.status, 403, 'the signed metadata header cannot be left out');
      // RGW (unlike AWS S3, which answers 403 for x-amz-* headers outside SignedHeaders) accepts and
      // stores an extra unsigned x-amz-meta-* header: a job can add metadata to the object it may
      // write, but not change the signed cachekey. Recorded here so that a change shows.
      const extra = await fetch(up.json.url, { method: 'PUT', headers: { ...up.json.headers, 'x-amz-meta-evil': 'injected', 'x-amz-meta-cachekey2': 'x' }, body: 'x' });
      const head = await presign(svc, { operation: 'head', key: 'forge/me', projectId: '9' }, S3);
      const h = await fetch(head.json.url, { method: 'HEAD' });
      t.diagnostic(`RGW answers a PUT with unsigned x-amz-meta-evil with ${extra.status}; stored: ${h.headers.get('x-amz-meta-evil')}`);
      assert.ok(extra.status === 200 || extra.status === 403, `RGW: ${extra.status}`);
      assert.equal(h.headers.get('x-amz-meta-cachekey'), 'forge/me');
    });

    it('local: a forged x-amz-meta-cachekey → 403; an extra x-amz-meta-* header is not stored', async () => {
      const up = await presign(svc, { operation: 'upload', key: 'forge/local', projectId: '9' }, LOCAL);
      const forged = await fetch(up.json.url, { method: 'PUT', headers: { ...up.json.headers, 'x-amz-meta-cachekey': 'other/key' }, body: 'x' });
      assert.equal(forged.status, 403);
      const extra = await fetch(up.json.url, { method: 'PUT', headers: { ...up.json.headers, 'x-amz-meta-evil': 'injected' }, body: 'x' });
      assert.equal(extra.status, 200);
      const head = await presign(svc, { operation: 'head', key: 'forge/local', projectId: '9' }, LOCAL);
      const h = await fetch(head.json.url, { method: 'HEAD' });
      assert.equal(h.headers.get('x-amz-meta-cachekey'), 'forge/local');
      assert.equal(h.headers.get('x-amz-meta-evil'), null);
    });
  });

  describe('request body limit', () => {
    it('a JSON body over 64 KiB → 413 payload_too_large, also chunked; a body of exactly 64 KiB is read', async () => {
      const body = JSON.stringify({ operation: 'upload', key: 'k', projectId: '1' });
      const exact = body + ' '.repeat(64 * 1024 - body.length);
      const ok = await presign(svc, exact, LOCAL);
      assert.equal(ok.status, 200, 'a 65,536-byte body is within the limit');
      const over = await presign(svc, exact + ' ', LOCAL);
      assertError(over.status, over.json, 413, '65,537 bytes with Content-Length');
      assert.equal(over.json.error.code, 'payload_too_large');
      const chunked = await chunkedPost(svc.port, '/v1/presign', { authorization: `Bearer ${LOCAL}`, 'content-type': 'application/json' }, [exact, ' ']);
      assertError(chunked.status, JSON.parse(chunked.body), 413, '65,537 bytes chunked');
      const lying = await chunkedPost(svc.port, '/v1/presign', { authorization: `Bearer ${LOCAL}`, 'content-type': 'application/json', 'content-length': String(10 * 1024 * 1024) }, [body]);
      assertError(lying.status, JSON.parse(lying.body), 413, 'declared 10 MiB');
      // The service is still there.
      assert.equal((await presign(svc, body, LOCAL)).status, 200);
    });
  });

  describe('request ids', () => {
    const ID = /^[A-Za-z0-9._:-]{1,64}$/;

    it('a valid X-Request-Id is echoed; one too long, with spaces, commas or 8-bit bytes is replaced by a generated one', async () => {
      const valid = 'job-123_abc.def:42';
      assert.equal((await fetch(`${svc.url}/healthz`, { headers: { 'x-request-id': valid } })).headers.get('x-request-id'), valid);
      const sixtyFour = 'r'.repeat(64);
      assert.equal((await fetch(`${svc.url}/healthz`, { headers: { 'x-request-id': sixtyFour } })).headers.get('x-request-id'), sixtyFour);
      for (const bad of ['r'.repeat(65), 'x'.repeat(4000), 'a b', 'a,b', '<script>', 'id"quoted', 'ab\tc', 'ab\xe9c', '']) {
        const res = await rawRequest(svc.port, 'GET', '/healthz', { 'x-request-id': bad });
        const ids = res.headers.filter(([n]) => n === 'x-request-id').map(([, v]) => v);
        assert.equal(ids.length, 1, `one X-Request-Id for ${JSON.stringify(bad)}`);
        assert.notEqual(ids[0], bad);
        assert.match(ids[0], ID, `generated id for ${JSON.stringify(bad.slice(0, 20))}`);
      }
      // Errors carry it too.
      const unauth = await fetch(`${svc.url}/v1/presign`, { method: 'POST', headers: { 'x-request-id': 'r'.repeat(65) }, body: '{}' });
      assert.equal(unauth.status, 401);
      assert.match(unauth.headers.get('x-request-id') as string, ID);
    });

    it('CR, LF, NUL or a folded line in X-Request-Id never reaches a response header (Node refuses the request with 400)', async () => {
      for (const value of ['abc\rX-Evil: 1', 'abc\nX-Evil: 1', 'abc\r\n X-Evil: 1', 'abc\0def']) {
        const res = await rawExchange(svc.port, `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-Id: ${value}\r\nConnection: close\r\n\r\n`);
        assert.match(res, /^HTTP\/1\.1 400 /, JSON.stringify(value));
        assert.doesNotMatch(res, /X-Evil/i);
      }
      assert.equal((await fetch(`${svc.url}/healthz`)).status, 200);
    });

    it('two X-Request-Id headers are not joined into one echoed value', async () => {
      const res = await rawExchange(svc.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-Id: aaa\r\nX-Request-Id: bbb\r\nConnection: close\r\n\r\n');
      const id = /\r\nX-Request-Id: ([^\r\n]*)\r\n/i.exec(res)?.[1];
      assert.ok(id !== undefined && ID.test(id) && !id.includes(','), `X-Request-Id: ${id}`);
    });
  });

  describe('per-token rate limits', () => {
    let limited: TestService;
    const A = 'glrt-ratelimited-aaaa';
    const B = 'glrt-ratelimited-bbbb';

    before(async () => {
      limited = await startTestService({
        toml: `
[cachegate]
rate_limit = 1
rate_limit_burst = 3
[[runners]]
  name = "a"
  token = "${A}"
  [runners.cache]
    Type = "local"
[[runners]]
  name = "b"
  token = "${B}"
  [runners.cache]
    Type = "local"
`,
      });
    });
    after(async () => limited?.stop());

    it('past its burst a token gets 429 rate_limited with Retry-After; another token is not affected', async () => {
      const statuses: number[] = [];
      let refused: Response | undefined;
      for (let i = 0; i < 20; i++) {
        const res = await fetch(`${limited.url}/v1/presign`, {
          method: 'POST',
          headers: { authorization: `Bearer ${A}`, 'content-type': 'application/json' },
          body: JSON.stringify({ operation: 'head', key: 'k', projectId: '1' }),
        });
        statuses.push(res.status);
        if (res.status === 429 && !refused) refused = res;
        else await res.arrayBuffer();
      }
      assert.ok(statuses.slice(0, 3).every((s) => s === 200), `the burst of 3 is served: ${statuses.join(',')}`);
      assert.ok(refused, `no 429 in 20 requests at 1/s with a burst of 3: ${statuses.join(',')}`);
      assert.ok(statuses.every((s) => s === 200 || s === 429), statuses.join(','));
      const retryAfter = refused.headers.get('retry-after');
      assert.match(retryAfter ?? '', /^[1-9][0-9]*$/, `Retry-After: ${retryAfter}`);
      assertError(refused.status, await refused.json(), 429, 'rate limited');
      assert.ok(refused.headers.get('x-request-id'));
      const other = await presign(limited, { operation: 'head', key: 'k', projectId: '1' }, B);
      assert.equal(other.status, 200, 'token B has its own budget');
    });
  });
});

describe('failed authentications per client address', () => {
  let svc: TestService;
  const GOOD = 'glrt-authfailures-good';
  const ADMIN = 'admin-token-authfailures';

  before(async () => {
    svc = await startTestService({
      toml: `
[cachegate]
auth_failure_limit = 0.2
auth_failure_burst = 5
admin_token = "${ADMIN}"
[[runners]]
  name = "good"
  token = "${GOOD}"
  [runners.cache]
    Type = "local"
`,
    });
  });
  after(async () => svc?.stop());

  /** POST /v1/presign (or GET the admin endpoint) from the local address `from`. */
  const ask = (from: string, token: string | undefined, path = '/v1/presign'): Promise<{ status: number; headers: Array<[string, string]>; body: string }> =>
    path === '/v1/presign'
      ? rawRequest(svc.port, 'POST', path, { ...(token === undefined ? {} : { authorization: `Bearer ${token}` }), 'content-type': 'application/json' }, { from, body: JSON.stringify({ operation: 'head', key: 'k', projectId: '1' }) })
      : rawRequest(svc.port, 'GET', path, token === undefined ? {} : { authorization: `Bearer ${token}` }, { from });

  it('after the burst of wrong tokens an address gets 429 too_many_auth_failures before its token is looked at; other addresses and requests without a token are unaffected', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await ask('127.0.0.2', `glrt-guess-${i}`)).status);
    assert.deepEqual(statuses, [401, 401, 401, 401, 401], 'the burst of 5 failures is answered 401');
    const guess = await ask('127.0.0.2', 'glrt-guess-6');
    const json = JSON.parse(guess.body);
    assertError(guess.status, json, 429, 'locked address');
    assert.equal(json.error.code, 'too_many_auth_failures');
    assert.match(new Map(guess.headers).get('retry-after') ?? '', /^[1-9][0-9]*$/);
    // A right guess from the locked address is refused as well: guessing learns nothing there.
    assert.equal((await ask('127.0.0.2', GOOD)).status, 429, 'a known token from the locked address waits too');
    assert.equal((await ask('127.0.0.2', 'x', '/v1/admin/usage')).status, 429, 'the admin endpoint shares the lock');
    assert.equal((await ask('127.0.0.2', undefined)).status, 401, 'no credentials: not a guess, plain 401');
    assert.equal((await ask('127.0.0.3', GOOD)).status, 200, 'another address is not affected');
    const metrics = await (await fetch(`${svc.url}/metrics`)).text();
    assert.match(metrics, /^cachegate_auth_locked_total [1-9]/m);
  });

  it('wrong admin tokens count as failures; the right one works from a clean address', async () => {
    for (let i = 0; i < 5; i++) assert.equal((await ask('127.0.0.4', `admin-guess-${i}`, '/v1/admin/usage')).status, 401);
    assert.equal((await ask('127.0.0.4', ADMIN, '/v1/admin/usage')).status, 429);
    assert.equal((await ask('127.0.0.5', ADMIN, '/v1/admin/usage')).status, 200);
  });
});

/**
 * A request over node:http (fetch refuses some of the headers these tests send); all headers as
 * [lower-case name, value]. `from`: the local address to send from (127.0.0.0/8 are all this machine's).
 */
function rawRequest(port: number, method: string, path: string, headers: Record<string, string>, opts: { from?: string; body?: string } = {}): Promise<{ status: number; headers: Array<[string, string]>; body: string }> {
  return new Promise((res, rej) => {
    const req = httpRequest({ host: '127.0.0.1', port, method, path, headers, localAddress: opts.from, insecureHTTPParser: false }, (r) => {
      let body = '';
      r.setEncoding('latin1');
      r.on('data', (d: string) => (body += d));
      r.on('end', () => {
        const pairs: Array<[string, string]> = [];
        for (let i = 0; i < r.rawHeaders.length; i += 2) pairs.push([r.rawHeaders[i].toLowerCase(), r.rawHeaders[i + 1]]);
        res({ status: r.statusCode ?? 0, headers: pairs, body });
      });
    });
    req.on('error', rej);
    req.end(opts.body);
  });
}

/** Bytes written as given on a fresh socket; the whole answer until the server closes (or 2 s). */
function rawExchange(port: number, text: string): Promise<string> {
  return new Promise((res, rej) => {
    const s = connect(port, '127.0.0.1', () => s.write(Buffer.from(text, 'latin1')));
    let out = '';
    const timer = setTimeout(() => {
      s.destroy();
      res(out);
    }, 2000);
    s.on('data', (d: Buffer) => (out += d.toString('latin1')));
    s.on('end', () => {
      clearTimeout(timer);
      res(out);
    });
    s.on('error', (err) => {
      clearTimeout(timer);
      if (out !== '') res(out);
      else rej(err);
    });
  });
}

/** A POST whose body is written in pieces (chunked unless a content-length header is given). */
function chunkedPost(port: number, path: string, headers: Record<string, string>, pieces: string[]): Promise<{ status: number; body: string }> {
  return new Promise((res, rej) => {
    const req = httpRequest({ host: '127.0.0.1', port, method: 'POST', path, headers }, (r) => {
      let body = '';
      r.on('data', (d: Buffer) => (body += d.toString()));
      r.on('end', () => res({ status: r.statusCode ?? 0, body }));
    });
    req.on('error', rej);
    for (const p of pieces) req.write(p);
    if (headers['content-length'] === undefined) req.end();
    // With a declared length larger than what is sent, the answer must come before the body ends.
  });
}
