/**
 * Backend faults, end to end: a service whose S3 profiles (RGW), Azure profile (Azurite) and GCS
 * profile (the verifying XML endpoint of test/support) reach their servers through fault proxies. For each fault (down, hanging, slow, answering 503) the
 * requests that need the backend answer 503 with Retry-After within a bound, those that do not still
 * answer 200, and once the proxy passes again the service recovers by itself, without a restart.
 * Each fault's answers and times are reported as test diagnostics (docs/faults.md quotes them).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, it, type TestContext } from 'node:test';
import { BlobServiceClient, StorageSharedKeyCredential } from '@azure/storage-blob';
import { TIMEOUTS } from '../../adapters/timeouts.ts';
import { startAzurite, type Azurite } from '../support/azurite.ts';
import { startFaultProxy, type FaultMode, type FaultProxy } from '../support/fault-proxy.ts';
import { makeServiceAccount } from '../support/gcs-iam.ts';
import { startGcsXmlServer, type GcsXmlServer } from '../support/gcs-xml-server.ts';
import { rgw, type Rgw } from '../support/rgw.ts';
import { startTestService, type TestService } from '../support/service.ts';

const ROLE = 'glrt-faults-role-0001';
const STATIC = 'glrt-faults-static-01';
const DETECT = 'glrt-faults-detect-01';
const AZURE = 'glrt-faults-azure-001';
const GCS = 'glrt-faults-gcs-00001';
/** What a request that needs a failing backend may take: the adapters give up after TIMEOUTS.callMs. */
const ANSWER_BOUND_MS = TIMEOUTS.callMs + 10_000;
/** /readyz may answer from its cache for a couple of seconds: it must see the fault within this. */
const READY_BOUND_MS = 20_000;
/** Slow mode: one chunk each way already takes longer than the adapters wait. */
const SLOW_MS = TIMEOUTS.callMs * 0.6;

interface Answer {
  status: number;
  retryAfter: string | null;
  ms: number;
  text: string;
}

async function timed(url: string, init: RequestInit = {}): Promise<Answer> {
  const start = performance.now();
  const res = await fetch(url, init);
  const text = await res.text();
  return { status: res.status, retryAfter: res.headers.get('retry-after'), ms: Math.round(performance.now() - start), text };
}

/** A body of unknown length (chunked): the adapters take their multipart / block path. */
function chunked(data: Buffer): RequestInit {
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      for (let i = 0; i < data.length; i += 1000) c.enqueue(data.subarray(i, i + 1000));
      c.close();
    },
  });
  return { method: 'PUT', body, duplex: 'half' } as RequestInit;
}

const sha = (b: Buffer | ArrayBuffer): string => createHash('sha256').update(Buffer.from(b as ArrayBuffer)).digest('hex');

/**
 * Asks /readyz until `done` holds (it caches each backend's result briefly, and each expires on its
 * own); the last answer and the time since `since`.
 */
async function readyzUntil(url: string, done: (a: Answer) => boolean, since: number, boundMs: number): Promise<{ last: Answer; afterMs: number }> {
  let last = await timed(`${url}/readyz`);
  while (!done(last) && performance.now() - since < boundMs) {
    await new Promise((r) => setTimeout(r, 200));
    last = await timed(`${url}/readyz`);
  }
  return { last, afterMs: Math.round(performance.now() - since) };
}

describe('backend faults (RGW, Azurite and a GCS XML endpoint behind fault proxies)', () => {
  let server: Rgw;
  let az: Azurite;
  let gcs: GcsXmlServer;
  let s3Proxy: FaultProxy;
  let azProxy: FaultProxy;
  let gcsProxy: FaultProxy;
  const proxies = (): FaultProxy[] => [s3Proxy, azProxy, gcsProxy];
  const sa = makeServiceAccount('faults');
  let svc: TestService;
  const secrets: string[] = [];
  const table: string[] = [];

  const auth = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` });
  /** An upload presign; with the ROLE token it needs STS (AssumeRole), with STATIC it is signed locally. */
  const presignAs = (token: string, key: string): Promise<Answer> =>
    timed(`${svc.url}/v1/presign`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...auth(token) },
      body: JSON.stringify({ operation: 'upload', key, projectId: '7' }),
    });
  const assumeRoleErrors = async (): Promise<number> => {
    const m = /cachegate_assume_role_total\{result="error"\} (\d+)/.exec(await (await fetch(`${svc.url}/metrics`)).text());
    return m ? Number(m[1]) : 0;
  };
  const noSecret = (where: string, text: string): void => {
    for (const s of secrets) assert.ok(!text.includes(s), `${where} leaks a secret (${s.slice(0, 4)}…)`);
  };

  before(async () => {
    server = await rgw();
    const bucket = await server.bucket('faults');
    az = await startAzurite();
    await new BlobServiceClient(az.serviceUrl, new StorageSharedKeyCredential(az.accountName, az.accountKey)).getContainerClient('cache').create();
    const rgwUrl = new URL(server.endpoint);
    s3Proxy = await startFaultProxy({ target: { host: rgwUrl.hostname, port: Number(rgwUrl.port) }, slowMs: SLOW_MS });
    azProxy = await startFaultProxy({ target: { host: '127.0.0.1', port: az.port }, slowMs: SLOW_MS });
    gcs = await startGcsXmlServer({ keys: new Map([[sa.email, sa.publicKey]]), buckets: ['cache'] });
    gcsProxy = await startFaultProxy({ target: { host: '127.0.0.1', port: gcs.port }, slowMs: SLOW_MS });
    const viaProxy = (toml: string): string => toml.replace(`ServerAddress = "${server.serverAddress}"`, `ServerAddress = "${s3Proxy.address}"`);
    secrets.push(server.secretKey, az.accountKey, sa.privateKeyPem.split('\n')[5], ROLE, STATIC, AZURE, GCS);
    // One [[runners]] entry per profile; `table` is its backend's table.
    const runner = (name: string, token: string, type: string, table: string): string =>
      `[[runners]]\n  name = "${name}"\n  token = "${token}"\n  [runners.cache]\n    Type = "${type}"\n${table}\n`;
    svc = await startTestService({
      toml: [
        runner('role', ROLE, 's3', viaProxy(server.toml(bucket, `RoleARN = "${server.roleArn}"`))),
        runner('static', STATIC, 's3', viaProxy(server.toml(bucket))),
        // No BucketLocation: the first presign has to ask the server for the bucket's region.
        runner('detect', DETECT, 's3', viaProxy(server.toml(bucket)).replace(/\n\s*BucketLocation = "[^"]*"/, '')),
        runner('azure', AZURE, 'azure', [
          '    [runners.cache.azure]',
          `      AccountName = "${az.accountName}"`,
          `      AccountKey = "${az.accountKey}"`,
          '      ContainerName = "cache"',
          `      ServiceURL = "http://${azProxy.address}/${az.accountName}"`,
        ].join('\n')),
        runner('gcs', GCS, 'gcs', [
          '    [runners.cache.gcs]',
          `      CredentialsFile = "${sa.file}"`,
          '      BucketName = "cache"',
          `      Endpoint = "http://${gcsProxy.address}"`,
        ].join('\n')),
      ].join(''),
    });
  });

  after(async () => {
    await svc?.stop();
    for (const p of proxies()) await p?.close();
    await az?.stop();
    await gcs?.stop();
    if (table.length > 0) process.stdout.write(`\nfault | answers\n${table.join('\n')}\n`);
  });

  it('first, before anything detected it: an unknown bucket region while the backend is down: 503, not a URL signed for a guessed region; detected once it is back', async () => {
    for (const p of proxies()) await p.setMode('refuse');
    const during = await presignAs(DETECT, 'region-during');
    assert.equal(during.status, 503, during.text);
    assert.ok(during.retryAfter);
    assert.match(JSON.parse(during.text).error.message, /region unknown/);
    for (const p of proxies()) await p.setMode('pass');
    const back = await presignAs(DETECT, 'region-after');
    assert.equal(back.status, 200, back.text);
    assert.match(JSON.parse(back.text).url, new RegExp(`/${server.region}/s3/aws4_request`.replace(/\//g, '%2F')));
  });

  it('with the proxies passing: ready, presign with AssumeRole, proxy PUT and GET on every backend', async () => {
    assert.equal((await timed(`${svc.url}/readyz`)).status, 200);
    const role = await presignAs(ROLE, 'warm-up');
    assert.equal(role.status, 200, role.text);
    assert.ok(JSON.parse(role.text).env.AWS_SESSION_TOKEN, 'the role presign carries scoped credentials');
    for (const token of [STATIC, AZURE, GCS]) {
      const put = await timed(`${svc.url}/v1/cache/7/present`, { method: 'PUT', headers: auth(token), body: randomBytes(4096) });
      assert.equal(put.status, 200, put.text);
      assert.equal((await timed(`${svc.url}/v1/cache/7/present`, { headers: auth(token) })).status, 200);
    }
  });

  it('the bounded Azure block upload: 2 full blocks and a rest, in odd chunks, round trip', async () => {
    const data = randomBytes(2 * 4 * 1024 * 1024 + 12_345);
    const put = await timed(`${svc.url}/v1/cache/7/blocks`, { ...chunked(data), headers: auth(AZURE) });
    assert.equal(put.status, 200, put.text);
    const get = await fetch(`${svc.url}/v1/cache/7/blocks`, { headers: auth(AZURE) });
    assert.equal(get.status, 200);
    assert.equal(sha(await get.arrayBuffer()), sha(data));
  });

  for (const mode of ['refuse', 'hang', 'slow', 'http5xx'] as const satisfies FaultMode[]) {
    it(`${mode}: 503 with Retry-After for what needs the backend, 200 for what does not, then recovery by itself`, async (t: TestContext) => {
      const errorsBefore = await assumeRoleErrors();
      for (const p of proxies()) await p.setMode(mode);

      const [readyz, role, stat, s3Get, s3Put, s3PutChunked, azGet, azPut, gcsGet, gcsPut] = await Promise.all([
        readyzUntil(svc.url, (a) => a.status === 503 && !a.text.includes('"ok"'), performance.now(), READY_BOUND_MS),
        presignAs(ROLE, `during-${mode}`),
        presignAs(STATIC, `during-${mode}`),
        timed(`${svc.url}/v1/cache/7/present`, { headers: auth(STATIC) }),
        timed(`${svc.url}/v1/cache/7/during-${mode}`, { method: 'PUT', headers: auth(STATIC), body: randomBytes(4096) }),
        timed(`${svc.url}/v1/cache/7/chunked-${mode}`, { ...chunked(randomBytes(4096)), headers: auth(STATIC) }),
        timed(`${svc.url}/v1/cache/7/present`, { headers: auth(AZURE) }),
        timed(`${svc.url}/v1/cache/7/during-${mode}`, { method: 'PUT', headers: auth(AZURE), body: randomBytes(4096) }),
        timed(`${svc.url}/v1/cache/7/present`, { headers: auth(GCS) }),
        timed(`${svc.url}/v1/cache/7/during-${mode}`, { method: 'PUT', headers: auth(GCS), body: randomBytes(4096) }),
      ]);

      // /readyz names each failing backend, without a secret.
      const ready = readyz.last;
      assert.equal(ready.status, 503, ready.text);
      assert.ok(ready.retryAfter, '/readyz 503 has Retry-After');
      const backends = JSON.parse(ready.text).backends as Record<string, string>;
      for (const name of ['role', 'static', 'azure', 'gcs']) assert.notEqual(backends[name], 'ok', `${name}: ${ready.text}`);
      assert.match(backends.role, /\bs3\b/i, ready.text);
      assert.match(backends.azure, /azure/, ready.text);
      assert.match(backends.gcs, /gcs/, ready.text);
      noSecret('/readyz', ready.text);

      // What needs the backend: 503 backend_unavailable with Retry-After, within the bound.
      const needs = {
        'presign (AssumeRole)': role, 'S3 proxy GET': s3Get, 'S3 proxy PUT': s3Put, 'S3 proxy PUT (chunked)': s3PutChunked,
        'Azure proxy GET': azGet, 'Azure proxy PUT': azPut, 'GCS proxy GET': gcsGet, 'GCS proxy PUT': gcsPut, '/readyz': ready,
      };
      for (const [what, a] of Object.entries(needs)) {
        assert.equal(a.status, 503, `${what}: ${a.text}`);
        assert.ok(a.retryAfter !== null && Number(a.retryAfter) > 0, `${what}: Retry-After`);
        assert.ok(a.ms < ANSWER_BOUND_MS, `${what} answered in ${a.ms} ms, bound ${ANSWER_BOUND_MS} ms`);
        if (what !== '/readyz') assert.equal(JSON.parse(a.text).error.code, 'backend_unavailable', `${what}: ${a.text}`);
        noSecret(what, a.text);
      }
      assert.match(JSON.parse(role.text).error.message, /AssumeRole/);

      // What does not (static credentials, region configured): signed locally, answered at once.
      assert.equal(stat.status, 200, stat.text);
      assert.ok(stat.ms < TIMEOUTS.callMs, `the static presign took ${stat.ms} ms: it waited for the backend`);

      assert.ok((await assumeRoleErrors()) > errorsBefore, 'cachegate_assume_role_total{result="error"} moved');

      // Recovery: the proxies pass again; no restart, no reload.
      for (const p of proxies()) await p.setMode('pass');
      const passAt = performance.now();
      const again = await readyzUntil(svc.url, (a) => a.status === 200, passAt, READY_BOUND_MS);
      assert.equal(again.last.status, 200, `/readyz after the fault: ${again.last.text}`);
      const roleAgain = await presignAs(ROLE, `after-${mode}`);
      assert.equal(roleAgain.status, 200, roleAgain.text);
      for (const token of [STATIC, AZURE, GCS]) {
        const get = await timed(`${svc.url}/v1/cache/7/present`, { headers: auth(token) });
        assert.equal(get.status, 200, get.text);
      }
      const allBackMs = Math.round(performance.now() - passAt);

      const row =
        `${mode} | readyz 503 (Retry-After ${ready.retryAfter}) naming every backend ${readyz.afterMs} ms after the fault (that probe ${ready.ms} ms); ` +
        `presign with AssumeRole ${role.status} (Retry-After ${role.retryAfter}) ${role.ms} ms; static presign ${stat.status} ${stat.ms} ms; ` +
        `S3 proxy GET ${s3Get.status} ${s3Get.ms} ms, PUT ${s3Put.status} ${s3Put.ms} ms, chunked PUT ${s3PutChunked.status} ${s3PutChunked.ms} ms; Azure proxy GET ${azGet.status} ${azGet.ms} ms, PUT ${azPut.status} ${azPut.ms} ms; ` +
        `GCS proxy GET ${gcsGet.status} ${gcsGet.ms} ms, PUT ${gcsPut.status} ${gcsPut.ms} ms | ` +
        `readyz 200 ${again.afterMs} ms after the backend came back, AssumeRole presign and GETs 200 by ${allBackMs} ms`;
      table.push(row);
      t.diagnostic(row);
    });
  }

  it('no secret in any log line', () => {
    noSecret('the service log', svc.logs.join('\n'));
  });
});
