/**
 * What the access log and the metrics say about a request (issue 15, items 10 and 11): the runner
 * (by name), project, key and the auth outcome on the request line; a bounded `runner` label on
 * cachegate_presign_total; Authorization without "Bearer " said so; ?hashKeys on the proxy honoured
 * or refused; the AWS SDK's debug records rendered by their fields.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sdkLogPart } from '../../adapters/s3/index.ts';
import { presign, startTestService, type TestService } from '../support/service.ts';

const TOKEN = 'glrt-access-log-000001';
const TOML = `[[runners]]\nname = "docker-7"\ntoken = "${TOKEN}"\n[runners.cache]\nType = "local"\n`;

describe('access log fields, runner label, auth messages, hashKeys', () => {
  let svc: TestService;
  before(async () => {
    svc = await startTestService({ toml: TOML });
  });
  after(async () => svc?.stop());

  /** The request line of the last request to `path` (lines are written when the response is over). */
  const line = async (path: string): Promise<Record<string, unknown>> => {
    for (let i = 0; i < 50; i++) {
      const found = svc.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((r) => r.msg === 'request' && r.path === path).at(-1);
      if (found) return found;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`no request line for ${path}`);
  };

  it('a presign: runner name, project, key and auth=ok on the request line; no token', async () => {
    const r = await presign(svc, { operation: 'download', key: 'build/main', projectId: '42' }, TOKEN);
    assert.equal(r.status, 200);
    const l = await line('/v1/presign');
    assert.equal(l.runner, 'docker-7');
    assert.equal(l.project, '42');
    assert.equal(l.key, 'build/main');
    assert.equal(l.auth, 'ok');
    assert.ok(!svc.logs.join('\n').includes(TOKEN));
    const metrics = await (await fetch(`${svc.url}/metrics`)).text();
    assert.match(metrics, /cachegate_presign_total\{operation="download",backend="local",result="ok",runner="docker-7"\} 1/);
  });

  it('auth outcomes: missing, not Bearer (said in the answer), unknown', async () => {
    const ask = async (authorization?: string): Promise<{ status: number; message: string; auth: unknown }> => {
      const path = `/v1/cache/1/auth-${Math.random().toString(36).slice(2)}`;
      const res = await fetch(`${svc.url}${path}`, { headers: authorization ? { authorization } : {} });
      const body = (await res.json()) as { error: { message: string } };
      return { status: res.status, message: body.error.message, auth: (await line(path)).auth };
    };
    const missing = await ask();
    assert.deepEqual([missing.status, missing.auth], [401, 'missing']);
    const bare = await ask(TOKEN);
    assert.deepEqual([bare.status, bare.auth], [401, 'not_bearer']);
    assert.match(bare.message, /not "Bearer <token>": put "Bearer " before/);
    const unknown = await ask('Bearer glrt-nobody-0000000');
    assert.deepEqual([unknown.status, unknown.auth], [401, 'unknown']);
  });

  it('?hashKeys on the proxy is honoured (1 or true), and a value it does not know is refused', async () => {
    const auth = { authorization: `Bearer ${TOKEN}` };
    assert.equal((await fetch(`${svc.url}/v1/cache/5/hk?hashKeys=1`, { method: 'PUT', headers: auth, body: 'hashed' })).status, 200);
    assert.equal((await fetch(`${svc.url}/v1/cache/5/hk?hashKeys=true`, { headers: auth })).status, 200, 'the same object with hashKeys=true');
    assert.equal((await fetch(`${svc.url}/v1/cache/5/hk`, { headers: auth })).status, 404, 'the unhashed key is another object');
    const bad = await fetch(`${svc.url}/v1/cache/5/hk?hashKeys=yes`, { headers: auth });
    assert.equal(bad.status, 400);
    assert.match(((await bad.json()) as { error: { message: string } }).error.message, /^hashKeys: "yes" is not true, false, 1 or 0$/);
  });
});

describe('AWS SDK log records', () => {
  it('are rendered by the fields that say what happened, without input values or secrets', () => {
    const record = {
      clientName: 'S3Client', commandName: 'PutObjectCommand',
      input: { Bucket: 'b', Key: 'runner/x/project/1/k', Body: 'BODY-BYTES', SSECustomerKey: 'SECRET-SSE' },
      error: Object.assign(new Error('Access Denied for SECRETKEY'), { name: 'AccessDenied', $metadata: { httpStatusCode: 403 } }),
      metadata: { httpStatusCode: 403, requestId: 'req-1', attempts: 1 },
    };
    const text = sdkLogPart(record, ['SECRETKEY']);
    assert.equal(text, 'client=S3Client command=PutObjectCommand bucket=b key=runner/x/project/1/k error="AccessDenied (HTTP 403): Access Denied for ***" status=403 requestId=req-1 attempts=1');
    assert.equal(sdkLogPart({ other: 1, secret: 'x' }, []), '{other, secret}');
  });
});
