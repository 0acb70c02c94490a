/**
 * Per-token rate limits and request ids on a running service (real socket, real local backend).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { presign, startTestService, type TestService } from '../support/service.ts';

const TOKEN_A = 'glrt-guards-aaaaaaaaaaaa';
const TOKEN_B = 'glrt-guards-bbbbbbbbbbbb';

describe('service guards', () => {
  let svc: TestService;
  before(async () => {
    svc = await startTestService({
      toml: `
[cachegate]
rate_limit = 0.5
rate_limit_burst = 3

[[runners]]
  name = "a"
  token = "${TOKEN_A}"
  [runners.cache]
    Type = "local"
[[runners]]
  name = "b"
  token = "${TOKEN_B}"
  [runners.cache]
    Type = "local"
`,
    });
  });
  after(() => svc.stop());

  it('answers 429 with Retry-After once a token is over its burst; other tokens are not affected', async () => {
    const body = { operation: 'download', key: 'k', projectId: '1' };
    for (let i = 0; i < 3; i++) assert.equal((await presign(svc, body, TOKEN_A)).status, 200);
    const res = await fetch(`${svc.url}/v1/presign`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN_A}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    assert.equal(res.status, 429);
    assert.equal(res.headers.get('retry-after'), '2');
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'rate_limited');
    // The proxy counts against the same bucket.
    assert.equal((await fetch(`${svc.url}/v1/cache/1/k`, { headers: { authorization: `Bearer ${TOKEN_A}` } })).status, 429);
    assert.equal((await presign(svc, body, TOKEN_B)).status, 200);
    assert.match(await (await fetch(`${svc.url}/metrics`)).text(), /cachegate_rate_limited_total\{principal="runner:a"\} 2/);
    // An unknown token is refused before any bucket is touched.
    assert.equal((await presign(svc, body, 'glrt-unknown-cccccccccc')).status, 401);
  });

  it('puts the request id on the response and on every log line written for the request', async () => {
    const res = await fetch(`${svc.url}/v1/presign`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN_B}`, 'content-type': 'application/json', 'x-request-id': 'job-42.attempt:1' },
      body: JSON.stringify({ operation: 'download', key: 'needs sanitizing/../x', projectId: '1' }),
    });
    assert.equal(res.headers.get('x-request-id'), 'job-42.attempt:1');
    await res.arrayBuffer();
    await new Promise((r) => setTimeout(r, 50));
    const lines = svc.logs.map((l) => JSON.parse(l) as { reqId?: string; msg: string }).filter((l) => l.reqId === 'job-42.attempt:1');
    assert.ok(lines.some((l) => /sanitized to/.test(l.msg)), 'the key warning carries the id');
    assert.ok(lines.some((l) => l.msg === 'request'), 'the access line carries the id');

    for (const bad of ['a\tb', 'x'.repeat(65), 'é']) {
      const r = await fetch(`${svc.url}/healthz`, { headers: { 'x-request-id': bad } });
      const id = r.headers.get('x-request-id') ?? '';
      assert.notEqual(id, bad);
      assert.match(id, /^[0-9a-f-]{36}$/);
    }
  });
});
