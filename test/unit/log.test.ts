import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createLogger } from '../../src/log.ts';
import type { LogFormat } from '../../src/config/types.ts';

async function lines(format: LogFormat, write: (log: ReturnType<typeof createLogger>) => void): Promise<string[]> {
  const out: string[] = [];
  const sink = new Writable({ write(c: Buffer, _e, cb) { out.push(...c.toString().split('\n').filter(Boolean)); cb(); } });
  const log = createLogger({ format, level: 'info', destination: sink });
  write(log);
  await sleep(10);
  return out;
}

describe('log formats', () => {
  it('json uses logrus field names', async () => {
    const [l] = await lines('json', (log) => log.warn({ reqId: 'r1' }, 'cache key "a" sanitized to "b"'));
    const j = JSON.parse(l);
    assert.equal(j.level, 'warn');
    assert.equal(j.msg, 'cache key "a" sanitized to "b"');
    assert.equal(j.reqId, 'r1');
    assert.match(j.time, /^\d{4}-\d\d-\d\dT/);
  });
  it('text is logrus text', async () => {
    const [l] = await lines('text', (log) => log.info({ status: 200, path: '/v1/presign' }, 'request'));
    assert.match(l, /^time="[^"]+" level=info msg="request" status=200 path=\/v1\/presign$/);
  });
  it('runner prefixes warnings and errors like the runner does', async () => {
    const out = await lines('runner', (log) => {
      log.info({ a: 1 }, 'hello');
      log.warn({}, 'careful');
      log.error({ why: 'two words' }, 'broken');
    });
    assert.deepEqual(out, ['hello  a=1', 'WARNING: careful', 'ERROR: broken  why="two words"']);
  });
  it('debug lines are dropped at level info', async () => {
    assert.deepEqual(await lines('runner', (log) => log.debug({}, 'noise')), []);
  });
  it('secret-named fields are redacted', async () => {
    const [l] = await lines('json', (log) => log.info({ token: 'glrt-secret', url: 'https://x/?X-Amz-Signature=abc', secretKey: 'sk' }, 'oops'));
    assert.ok(!l.includes('glrt-secret') && !l.includes('abc') && !l.includes('"sk"'), l);
  });
});
