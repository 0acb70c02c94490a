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
import { AuthFailureLimiter, RateLimiter } from '../../src/service/rate-limit.ts';
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

describe('AuthFailureLimiter', () => {
  it('admits an address until its burst of failures is used, then asks it to wait; others are not affected', () => {
    const l = new AuthFailureLimiter(1, 3);
    const locked: string[] = [];
    let refusedCount = 0;
    l.onLocked = (a) => locked.push(a);
    l.onRefused = () => refusedCount++;
    for (let i = 0; i < 3; i++) {
      assert.equal(l.wait('10.0.0.1', 0), 0, `failure ${i} is still admitted`);
      l.failed('10.0.0.1', 0);
    }
    assert.equal(l.wait('10.0.0.1', 0), 1, 'the burst is used: wait 1 s at 1 per second');
    assert.deepEqual(locked, ['10.0.0.1'], 'reported once when it locks');
    assert.equal(refusedCount, 1);
    assert.equal(l.wait('10.0.0.2', 0), 0, 'another address has its own bucket');
    assert.equal(l.wait(undefined, 0), 0, 'no address (the CLI): never limited');
    assert.equal(l.wait('10.0.0.1', 1000), 0, 'one second later one more failure is allowed');
    l.failed('10.0.0.1', 1000);
    assert.equal(l.wait('10.0.0.1', 1000), 1);
    assert.deepEqual(locked, ['10.0.0.1', '10.0.0.1']);
  });

  it('rate 0 turns it off', () => {
    const l = new AuthFailureLimiter(0, 1);
    for (let i = 0; i < 100; i++) l.failed('a', 0);
    assert.equal(l.wait('a', 0), 0);
  });

  it('remembers at most maxAddresses, forgetting the one that failed least recently', () => {
    const l = new AuthFailureLimiter(0.001, 1, 2);
    l.failed('a', 0);
    l.failed('b', 0);
    assert.ok(l.wait('a', 0) > 0 && l.wait('b', 0) > 0);
    l.failed('a', 1); // a failed again, so b is now the oldest
    l.failed('c', 2);
    assert.ok(l.wait('a', 2) > 0, 'a is kept');
    assert.equal(l.wait('b', 2), 0, 'b was forgotten');
    assert.ok(l.wait('c', 2) > 0);
  });

  it('counts an IPv6 client per /64 (its other addresses are free to take) and an IPv4-mapped one as its IPv4 address', () => {
    const l = new AuthFailureLimiter(1, 3);
    for (let i = 1; i <= 3; i++) l.failed(`2001:db8:1:2::${i}`, 0);
    assert.equal(l.wait('2001:db8:1:2:ffff:ffff:ffff:fffe', 0), 1, 'another address of the same /64 is locked too');
    assert.equal(l.wait('2001:0DB8:0001:0002:0000:0000:0000:0009', 0), 1, 'the same /64 written out in full');
    assert.equal(l.wait('2001:db8:1:2::9%eth0', 0), 1, 'with a zone');
    assert.equal(l.wait('2001:db8:1:3::1', 0), 0, 'the next /64 is not');
    assert.equal(l.wait('2001:db8::1:2:0:1', 0), 0, 'nor 2001:db8:0:0:1:2:…');
    for (let i = 0; i < 3; i++) l.failed('::ffff:10.1.2.3', 0);
    assert.equal(l.wait('10.1.2.3', 0), 1, 'an IPv4 client seen on a dual-stack socket is the same client');
    assert.equal(l.wait('10.1.2.4', 0), 0, 'IPv4 addresses count one by one');
    for (let i = 0; i < 3; i++) l.failed('64:ff9b::a01:203', 0);
    assert.equal(l.wait('64:ff9b::10.1.2.9', 0), 1, 'an embedded IPv4 tail is two groups');
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
    let clock = 0; // results age only when the test says so, however slow the machine
    const readiness = new Readiness(50, () => clock);
    const [a, b] = await Promise.all([readiness.check(state, 1000), readiness.check(state, 1000)]);
    assert.equal(calls, 1, 'one check for three profiles and two concurrent probes');
    assert.deepEqual(a, { ready: false, backends: { r1: 's3: bucket not reachable', r2: 's3: bucket not reachable', r3: 's3: bucket not reachable' } });
    assert.deepEqual(b, a);
    up = true;
    assert.equal((await readiness.check(state, 1000)).ready, false, 'fresh: the old result');
    assert.equal(calls, 1);
    clock += 80;
    assert.equal((await readiness.check(state, 1000)).ready, false, 'stale: answered at once, re-checked behind');
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(await readiness.check(state, 1000), { ready: true, backends: { r1: 'ok', r2: 'ok', r3: 'ok' } });
    assert.equal(calls, 2);
    // A backend that starts hanging: probes do not wait for it, and it is reported once the check times out.
    hang = true;
    clock += 80;
    assert.equal((await readiness.check(state, 200)).ready, true, 'the last result, not a wait for the hanging re-check');
    // The re-check gives up after its 200 ms timeout (a real timer): wait for it, however late it fires.
    const deadline = performance.now() + 10_000;
    let last = await readiness.check(state, 200);
    while (last.ready && performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      last = await readiness.check(state, 200);
    }
    assert.match(last.backends.r1, /did not answer/);
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
