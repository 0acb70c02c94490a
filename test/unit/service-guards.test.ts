/**
 * The service's guards in isolation: the rate limiter's arithmetic, the backend deadline, /readyz's
 * grouping and reuse of checks, and 503 answers always carrying Retry-After. (The same behaviour
 * against real backends and a real socket is in test/integration/service-guards.test.ts and
 * faults.test.ts.)
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CacheAdapter } from '../../src/adapter.ts';
import { CacheGateError } from '../../src/errors.ts';
import { silentLogger } from '../../src/log.ts';
import { errorAnswer } from '../../src/service/error-response.ts';
import { backendCall } from '../../src/service/objects.ts';
import { RateLimiter } from '../../src/service/rate-limit.ts';
import { Readiness } from '../../src/service/readiness.ts';
import type { ServiceState } from '../../src/service/state.ts';

const refused = (fn: () => void): CacheGateError => {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof CacheGateError);
    return err;
  }
  assert.fail('expected a refusal');
};

describe('RateLimiter', () => {
  it('allows the burst, then the rate, per token, and says how long to wait', () => {
    const l = new RateLimiter(2, 3);
    for (let i = 0; i < 3; i++) l.take('a', 0);
    const e = refused(() => l.take('a', 0));
    assert.equal(e.status, 429);
    assert.equal(e.code, 'rate_limited');
    assert.equal(e.headers?.['Retry-After'], '1');
    l.take('b', 0); // another token has its own bucket
    l.take('a', 500); // half a second at 2/s gives one request back
    assert.equal(refused(() => l.take('a', 500)).status, 429);
    for (let i = 0; i < 3; i++) l.take('a', 60_000); // refills up to the burst, not beyond
    assert.equal(refused(() => l.take('a', 60_000)).status, 429);
  });

  it('rate 0 means no limit', () => {
    const l = new RateLimiter(0, 1);
    for (let i = 0; i < 10_000; i++) l.take('a', 0);
  });

  it('a slow rate asks for a longer wait', () => {
    const l = new RateLimiter(0.1, 1);
    l.take('a', 0);
    assert.equal(refused(() => l.take('a', 0)).headers?.['Retry-After'], '10');
  });
});

const fakeAdapter = (ready: () => Promise<void>): CacheAdapter => ({ kind: 's3', ready } as unknown as CacheAdapter);

describe('backendCall', () => {
  it('answers 503 with Retry-After once the deadline passes, whatever the backend does', async () => {
    const start = performance.now();
    await assert.rejects(backendCall(fakeAdapter(async () => undefined), () => new Promise(() => undefined), 100), (err: unknown) => {
      assert.ok(err instanceof CacheGateError);
      assert.equal(err.status, 503);
      assert.match(err.message, /did not answer within 0.1 s/);
      assert.ok(err.headers?.['Retry-After']);
      return true;
    });
    assert.ok(performance.now() - start < 5000);
  });

  it('turns an unknown failure into 503 without its message, and passes CacheGateErrors through', async () => {
    const a = fakeAdapter(async () => undefined);
    await assert.rejects(backendCall(a, async () => { throw new TypeError('secret=abc'); }), (err: CacheGateError) => err.status === 503 && !err.message.includes('abc'));
    await assert.rejects(backendCall(a, async () => { throw new CacheGateError('not_found', 404, 'x'); }, 1000), (err: CacheGateError) => err.status === 404);
  });
});

describe('Readiness', () => {
  it('checks profiles that share a backend once, reuses a fresh result, answers a stale one at once while re-checking, and sees recovery', async () => {
    let calls = 0;
    let up = false;
    let hang = false;
    const shared = fakeAdapter(async () => {
      calls++;
      if (hang) await new Promise(() => undefined);
      if (!up) throw new CacheGateError('backend_unavailable', 503, 's3: bucket not reachable');
    });
    const state = { backendGroups: [{ adapter: shared, profiles: ['r1', 'r2', 'r3'] }] } as unknown as ServiceState;
    const readiness = new Readiness(50);
    const [a, b] = await Promise.all([readiness.check(state, 1000), readiness.check(state, 1000)]);
    assert.equal(calls, 1, 'one check for three profiles and two concurrent probes');
    assert.deepEqual(a, { ready: false, backends: { r1: 's3: bucket not reachable', r2: 's3: bucket not reachable', r3: 's3: bucket not reachable' } });
    assert.deepEqual(b, a);
    up = true;
    assert.equal((await readiness.check(state, 1000)).ready, false, 'fresh: the old result');
    assert.equal(calls, 1);
    await new Promise((r) => setTimeout(r, 80));
    assert.equal((await readiness.check(state, 1000)).ready, false, 'stale: answered at once, re-checked behind');
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(await readiness.check(state, 1000), { ready: true, backends: { r1: 'ok', r2: 'ok', r3: 'ok' } });
    assert.equal(calls, 2);
    // A backend that starts hanging: probes do not wait for it, and it is reported once the check times out.
    hang = true;
    await new Promise((r) => setTimeout(r, 80));
    assert.equal((await readiness.check(state, 200)).ready, true, 'the last result, not a wait for the hanging re-check');
    await new Promise((r) => setTimeout(r, 300));
    assert.match((await readiness.check(state, 200)).backends.r1, /did not answer/);
  });

  it('a hanging backend is reported within the timeout', async () => {
    const state = { backendGroups: [{ adapter: fakeAdapter(() => new Promise(() => undefined)), profiles: ['r'] }] } as unknown as ServiceState;
    const r = await new Readiness().check(state, 100);
    assert.equal(r.ready, false);
    assert.match(r.backends.r, /did not answer/);
  });
});

describe('errorAnswer', () => {
  it('gives every 503 a Retry-After, keeps a stated one, and never echoes an internal error', () => {
    const log = silentLogger();
    assert.equal(errorAnswer(new CacheGateError('backend_unavailable', 503, 'x'), 'GET', 'r', log).headers['Retry-After'], '5');
    assert.equal(errorAnswer(new CacheGateError('backend_unavailable', 503, 'x', { headers: { 'Retry-After': '30' } }), 'GET', 'r', log).headers['Retry-After'], '30');
    const internal = errorAnswer(new Error('password=hunter2'), 'POST', 'req-1', log);
    assert.equal(internal.status, 500);
    assert.ok(!String(internal.body).includes('hunter2'));
    assert.match(String(internal.body), /req-1/);
    assert.equal(errorAnswer(new CacheGateError('not_found', 404, 'x'), 'HEAD', 'r', log).body, null);
    assert.equal(errorAnswer(new CacheGateError('payload_too_large', 413, 'x'), 'PUT', 'r', log).headers.Connection, 'close');
  });
});
