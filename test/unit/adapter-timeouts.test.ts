/** adapters/timeouts.ts: the bounds every adapter puts around its backend calls. */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { bounded, idleGuard } from '../../adapters/timeouts.ts';
import { CacheGateError } from '../../src/errors.ts';

const is503 = (what: RegExp) => (err: unknown): boolean =>
  err instanceof CacheGateError && err.status === 503 && err.code === 'backend_unavailable' && err.headers?.['Retry-After'] !== undefined && what.test(err.message);

describe('bounded()', () => {
  it('gives up after the bound with a 503 naming the call, and aborts the call', async () => {
    let aborted = false;
    const never = (signal: AbortSignal): Promise<never> =>
      new Promise(() => signal.addEventListener('abort', () => (aborted = true)));
    await assert.rejects(bounded('S3 HeadBucket "b"', 50, never), is503(/^S3 HeadBucket "b": no answer within 0.1 s$/));
    assert.ok(aborted, 'the signal handed to the call was aborted');
  });

  it('passes a result or an error through, and no longer aborts afterwards', async () => {
    let signal: AbortSignal | undefined;
    assert.equal(await bounded('x', 50, async (s) => ((signal = s), 42)), 42);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(signal?.aborted, false, 'a call that settled in time is not aborted later (a GET body may still stream)');
    await assert.rejects(bounded('x', 1000, async () => { throw new Error('refused'); }), /refused/);
  });
});

describe('idleGuard()', () => {
  it('fails a body whose backend stops sending while the reader waits', async () => {
    const source = new PassThrough();
    const guard = idleGuard('azure: GET', 100);
    source.pipe(guard);
    source.write('first bytes');
    const chunks: Buffer[] = [];
    const done = new Promise<unknown>((resolve) => guard.on('error', resolve));
    guard.on('data', (c: Buffer) => chunks.push(c));
    const err = await done;
    assert.equal(Buffer.concat(chunks).toString(), 'first bytes');
    assert.ok(is503(/^azure: GET: the body stalled for 0.1 s$/)(err), String(err));
  });

  it('does not count a reader that is slow itself (bytes wait in the guard)', async () => {
    const source = new PassThrough();
    const guard = idleGuard('azure: GET', 100);
    source.pipe(guard);
    source.write(Buffer.alloc(1000, 1)); // the backend is still there (no end); nobody reads for 3 × the bound
    let failed: unknown;
    guard.on('error', (e) => (failed = e));
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(failed, undefined);
    source.end();
    let got = 0;
    for await (const c of guard) got += (c as Buffer).length;
    assert.equal(got, 1000);
  });
});
