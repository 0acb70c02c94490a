import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_LIMITS, effectiveMaxConnections } from '../../src/config/connection-limits.ts';
import { parseConfigText } from '../../src/config/load.ts';
import { CacheGateError } from '../../src/errors.ts';
import { UploadSlots } from '../../src/service/upload-slots.ts';

describe('connection limits', () => {
  it('[cachegate] timeouts and caps: defaults, values, and refused values', () => {
    assert.deepEqual(parseConfigText('', 't.toml', {}).service.limits, DEFAULT_LIMITS);
    const c = parseConfigText('[cachegate]\nheaders_timeout = 5\nrequest_timeout = 0\nidle_timeout = 2.5\nkeep_alive_timeout = 1\nmax_uploads = 4\nmax_connections = 100\n', 't.toml', {});
    assert.deepEqual(c.service.limits, { headersTimeout: 5, requestTimeout: 0, idleTimeout: 2.5, keepAliveTimeout: 1, maxUploads: 4, maxConnections: 100 });
    for (const bad of ['headers_timeout = 0', 'idle_timeout = -1', 'max_uploads = 0', 'max_connections = -1', 'request_timeout = "1"']) {
      const e = parseConfigText(`[cachegate]\n${bad}\n`, 't.toml', {}).findings.filter((f) => f.level === 'error');
      assert.ok(e.length > 0, bad);
    }
  });

  it('max_connections = 0 follows the descriptor limit, leaving room for uploads and the rest', () => {
    assert.equal(effectiveMaxConnections({ ...DEFAULT_LIMITS }, 1024), 1024 - 64 - 256);
    assert.equal(effectiveMaxConnections({ ...DEFAULT_LIMITS, maxUploads: 8 }, 256), 256 - 64 - 16);
    assert.equal(effectiveMaxConnections({ ...DEFAULT_LIMITS }, 100), 16, 'never below 16');
    assert.equal(effectiveMaxConnections({ ...DEFAULT_LIMITS, maxConnections: 50 }, 100_000), 50);
  });

  it('UploadSlots: over the cap → 503 too_many_uploads with Retry-After; a slot given back twice counts once', () => {
    const slots = new UploadSlots(() => 2);
    const a = slots.take();
    slots.take();
    assert.throws(() => slots.take(), (e: unknown) => e instanceof CacheGateError && e.status === 503 && e.code === 'too_many_uploads' && !!e.headers?.['Retry-After']);
    a();
    a();
    assert.equal(slots.inFlight, 1);
    slots.take();
    assert.throws(() => slots.take());
  });
});
