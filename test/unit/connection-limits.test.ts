import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import { DEFAULT_LIMITS, effectiveMaxConnections } from '../../src/config/connection-limits.ts';
import { parseConfigText } from '../../src/config/load.ts';
import { CacheGateError } from '../../src/errors.ts';
import { UploadSlots, WAITING_PER_SLOT } from '../../src/service/upload-slots.ts';

describe('connection limits', () => {
  it('[cachegate] timeouts and caps: defaults, values, and refused values', () => {
    assert.deepEqual(parseConfigText('', 't.toml', {}).service.limits, DEFAULT_LIMITS);
    const c = parseConfigText('[cachegate]\nheaders_timeout = 5\nrequest_timeout = 0\nidle_timeout = 2.5\nkeep_alive_timeout = 1\nmax_uploads = 4\nmax_connections = 100\n', 't.toml', {});
    assert.deepEqual(c.service.limits, { headersTimeout: 5, requestTimeout: 0, idleTimeout: 2.5, keepAliveTimeout: 1, maxUploads: 4, uploadWait: DEFAULT_LIMITS.uploadWait, maxConnections: 100 });
    assert.equal(parseConfigText('[cachegate]\nupload_wait = 0\n', 't.toml', {}).service.limits.uploadWait, 0);
    for (const bad of ['headers_timeout = 0', 'idle_timeout = -1', 'max_uploads = 0', 'upload_wait = -1', 'max_connections = -1', 'request_timeout = "1"']) {
      const e = parseConfigText(`[cachegate]\n${bad}\n`, 't.toml', {}).findings.filter((f) => f.level === 'error');
      assert.ok(e.length > 0, bad);
    }
  });

  it('warns when upload_wait is not below idle_timeout (the idle cut would end a wait without its 503)', () => {
    const warnings = (toml: string): string[] => parseConfigText(`[cachegate]\n${toml}\n`, 't.toml', {}).findings.filter((f) => f.level === 'warning').map((f) => f.field);
    assert.deepEqual(warnings(''), []);
    assert.deepEqual(warnings('idle_timeout = 10'), ['cachegate.upload_wait']);
    assert.deepEqual(warnings('upload_wait = 45'), ['cachegate.upload_wait']);
    assert.deepEqual(warnings('idle_timeout = 10\nupload_wait = 5'), []);
    assert.deepEqual(warnings('idle_timeout = 1\nupload_wait = 0'), [], 'no wait, nothing to cut');
  });

  it('max_connections = 0 follows the descriptor limit, leaving room for uploads and the rest', () => {
    assert.equal(effectiveMaxConnections({ ...DEFAULT_LIMITS }, 1024), 1024 - 64 - 256);
    assert.equal(effectiveMaxConnections({ ...DEFAULT_LIMITS, maxUploads: 8 }, 256), 256 - 64 - 16);
    assert.equal(effectiveMaxConnections({ ...DEFAULT_LIMITS }, 100), 16, 'never below 16');
    assert.equal(effectiveMaxConnections({ ...DEFAULT_LIMITS, maxConnections: 50 }, 100_000), 50);
  });

  it('UploadSlots: over the cap an upload waits in line, first come first served; a wait that runs out, or a full line, is 503 too_many_uploads with Retry-After; a slot given back twice counts once', async () => {
    const tooMany = (e: unknown): boolean => e instanceof CacheGateError && e.status === 503 && e.code === 'too_many_uploads' && !!e.headers?.['Retry-After'];
    let limits = { max: 2, waitSeconds: 0.2 };
    const slots = new UploadSlots(() => limits);
    const a = await slots.take();
    const b = await slots.take();
    const order: string[] = [];
    const c = slots.take().then((r) => (order.push('c'), r));
    const d = slots.take().then((r) => (order.push('d'), r));
    assert.equal(slots.waiting, 2);
    a();
    a();
    const rc = await c;
    assert.equal(slots.inFlight, 2, 'the freed slot went to the first in line; a slot given back twice counts once');
    b();
    const rd = await d;
    assert.deepEqual(order, ['c', 'd']);
    await assert.rejects(slots.take(), tooMany, 'the wait ran out');
    assert.equal(slots.waiting, 0);
    // the line holds WAITING_PER_SLOT × max; one more is refused at once
    limits = { max: 1, waitSeconds: 60 };
    rc();
    const line = Array.from({ length: WAITING_PER_SLOT }, () => slots.take());
    const t0 = performance.now();
    await assert.rejects(slots.take(), tooMany);
    assert.ok(performance.now() - t0 < 1000);
    // a client that goes away leaves the line
    const gone = new EventEmitter();
    rd();
    for (const w of line) (await w)();
    const holder = await slots.take();
    const left = slots.take(gone as never);
    gone.emit('close');
    await assert.rejects(left);
    assert.equal(slots.waiting, 0);
    holder();
    assert.equal(slots.inFlight, 0);
    limits = { max: 1, waitSeconds: 0 };
    const only = await slots.take();
    await assert.rejects(slots.take(), tooMany, 'upload_wait = 0 refuses at once');
    only();
  });
});
