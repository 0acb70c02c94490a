import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { accessLogger, createLogger, type AccessFields } from '../../src/log.ts';
import { requestContext } from '../../src/request-context.ts';
import type { LogFormat } from '../../src/config/types.ts';

async function lines(format: LogFormat, write: (log: ReturnType<typeof createLogger>) => void, level: 'info' | 'warn' = 'info'): Promise<string[]> {
  const out: string[] = [];
  const sink = new Writable({ write(c: Buffer, _e, cb) { out.push(...c.toString().split('\n').filter(Boolean)); cb(); } });
  const log = createLogger({ format, level, destination: sink });
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

  describe('the access line written without pino is the line log.info writes', () => {
    const paths = ['/v1/presign', '/v1/cache/42/a b"c\\d', '/v1/cache/1/\u00e9\u00ff\t\u0001x', '/readyz?', '/v1/blob/' + 'x'.repeat(300)];
    const maskTime = (l: string): string => l.replace(/"time":"[^"]+"|time="[^"]+"/, 'TIME');
    for (const format of ['json', 'text', 'runner'] as const) {
      it(format, async () => {
        for (const [i, path] of paths.entries()) {
          const f: AccessFields = { reqId: `req-${i}`, method: i === 3 ? 'HEAD' : 'POST', path, status: [200, 404, 499, 503, 201][i], ms: [0, 0.1, 12.3, 1234.5, 3][i] };
          const out = await lines(format, (log) => {
            requestContext.run({ reqId: f.reqId }, () => {
              log.info({ ...f }, 'request');
              accessLogger(log)(f);
            });
          });
          assert.equal(out.length, 2, out.join('\n'));
          assert.equal(maskTime(out[1]), maskTime(out[0]));
          if (format === 'json') assert.deepEqual({ ...JSON.parse(out[1]), time: 0 }, { ...JSON.parse(out[0]), time: 0 });
        }
      });
    }
    it('is dropped below the logger level, like log.info', async () => {
      const f: AccessFields = { reqId: 'r', method: 'GET', path: '/x', status: 200, ms: 1 };
      assert.deepEqual(await lines('runner', (log) => accessLogger(log)(f), 'warn'), []);
    });
  });
});
