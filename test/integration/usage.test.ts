/** Usage by runner and project: GET /v1/admin/usage (admin token) and `cachegate usage`. */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startTestService, type TestService } from '../support/service.ts';

const BIN = resolve(import.meta.dirname, '../../bin/cachegate.js');
const ADMIN = 'admin-token-0123456789';
const A = 'glrt-runnera12345';
const B = 'glrt-runnerb12345';
const TOML = `
[cachegate]
  admin_token = "${ADMIN}"
[cachegate.retention]
  max_size = 100000000
[[runners]]
  name = "a"
  token = "${A}"
  [runners.cache]
    Type = "local"
[[runners]]
  name = "b"
  token = "${B}"
  [runners.cache]
    Type = "local"
    Path = "team"
`;

describe('usage', () => {
  let svc: TestService;
  const req = (token: string, method: string, path: string, body?: Buffer) =>
    fetch(`${svc.url}${path}`, { method, headers: { authorization: `Bearer ${token}` }, ...(body ? { body } : {}) });
  before(async () => {
    svc = await startTestService({ toml: TOML });
    assert.equal((await req(A, 'PUT', '/v1/cache/1/k1', Buffer.alloc(1000))).status, 200);
    assert.equal((await req(A, 'PUT', '/v1/cache/1/k2', Buffer.alloc(2000))).status, 200);
    assert.equal((await req(A, 'PUT', '/v1/cache/2/k1', Buffer.alloc(500))).status, 200);
    assert.equal((await req(B, 'PUT', '/v1/cache/1/k1', Buffer.alloc(300))).status, 200);
    assert.equal((await req(A, 'GET', '/v1/cache/1/k1')).status, 200); // hit
    assert.equal((await req(A, 'GET', '/v1/cache/1/k2')).status, 200); // hit
    const ranged = await fetch(`${svc.url}/v1/cache/1/k2`, { headers: { authorization: `Bearer ${A}`, range: 'bytes=1000-' } });
    assert.equal(ranged.status, 206); // a later part of a download: not another hit
    await ranged.arrayBuffer();
    assert.equal((await req(A, 'GET', '/v1/cache/1/nope')).status, 404); // miss
    assert.equal((await req(A, 'HEAD', '/v1/cache/1/nope2')).status, 404); // miss
    assert.equal((await req(B, 'GET', '/v1/cache/9/nope')).status, 404); // miss of a namespace with nothing stored
  });
  after(async () => svc.stop());

  it('the endpoint needs the admin token: runner tokens and no token get 401', async () => {
    assert.equal((await fetch(`${svc.url}/v1/admin/usage`)).status, 401);
    const r = await req(A, 'GET', '/v1/admin/usage');
    assert.equal(r.status, 401);
    assert.equal(((await r.json()) as any).error.code, 'unauthorized');
  });

  it('bytes, objects, uses, hits and misses by runner and project', async () => {
    const r = await req(ADMIN, 'GET', '/v1/admin/usage');
    assert.equal(r.status, 200);
    const report = (await r.json()) as any;
    assert.equal(report.stores.length, 1);
    assert.equal(report.stores[0].store, 'local');
    assert.equal(report.stores[0].objects, 4);
    const row = (runner: string, project: string) => report.namespaces.find((n: any) => n.runner === runner && n.project === project);
    const a1 = row('a', '1');
    assert.equal(a1.objects, 2);
    assert.ok(a1.bytes > 3000 && a1.bytes < 3000 + 2 * 200, `on-disk bytes with headers: ${a1.bytes}`);
    assert.equal(a1.hits, 2);
    assert.equal(a1.misses, 2);
    assert.ok(Date.parse(a1.oldestUse) <= Date.parse(a1.newestUse));
    assert.equal(row('a', '2').objects, 1);
    assert.equal(row('a', '2').hits, 0);
    assert.equal(row('b', '1').objects, 1);
    const b9 = row('b', '9');
    assert.deepEqual([b9.store, b9.objects, b9.hits, b9.misses], [null, 0, 0, 1]);
  });

  it('cachegate usage: offline from the directory, and --url from the service', async () => {
    const env = { PATH: process.env.PATH ?? '', CACHEGATE_DATA_DIR: join(svc.dataDir, 'data') };
    const off = spawnSync(process.execPath, [BIN, 'usage', '--config', svc.configFile as string], { encoding: 'utf8', env });
    assert.equal(off.status, 0, off.stderr);
    assert.match(off.stdout, /^local store .*: \d+ bytes in 4 objects \(max_size 100000000\)/m);
    assert.match(off.stdout, /^RUNNER\s+PROJECT\s+STORE\s+BYTES\s+OBJECTS\s+OLDEST USE\s+NEWEST USE\s+HITS\s+MISSES$/m);
    assert.match(off.stdout, /^a\s+1\s+local\s+\d+\s+2\s+\S+Z\s+\S+Z\s+-\s+-$/m);
    // Not spawnSync: the service answering --url runs in this process.
    const json = await promisify(execFile)(process.execPath, [BIN, 'usage', '--config', svc.configFile as string, '--url', svc.url, '--json'], { encoding: 'utf8', env, timeout: 30_000 });
    assert.equal(JSON.parse(json.stdout).namespaces.find((n: any) => n.runner === 'a' && n.project === '1').hits, 2);
  });

  it('the local backend without [cachegate.retention] is reported from its directory', async () => {
    const plain = await startTestService({ toml: `[cachegate]\nadmin_token = "${ADMIN}"\n[[runners]]\nname = "x"\ntoken = "${A}"\n[runners.cache]\nType = "local"\n` });
    try {
      assert.equal((await fetch(`${plain.url}/v1/cache/3/k`, { method: 'PUT', headers: { authorization: `Bearer ${A}` }, body: Buffer.alloc(100) })).status, 200);
      const report = (await (await fetch(`${plain.url}/v1/admin/usage`, { headers: { authorization: `Bearer ${ADMIN}` } })).json()) as any;
      assert.equal(report.stores[0].objects, 1);
      assert.equal(report.namespaces[0].runner, 'x');
      assert.equal(report.namespaces[0].project, '3');
    } finally {
      await plain.stop();
    }
  });

  it('without an admin token configured the endpoint is off (404)', async () => {
    const plain = await startTestService({ toml: `[[runners]]\nname = "x"\ntoken = "${A}"\n[runners.cache]\nType = "local"\n` });
    try {
      const r = await fetch(`${plain.url}/v1/admin/usage`, { headers: { authorization: `Bearer ${A}` } });
      assert.equal(r.status, 404);
      assert.match(((await r.json()) as any).error.message, /admin_token/);
    } finally {
      await plain.stop();
    }
  });
});
