/**
 * `--alternate-url`: the newer object wins (GitLab Runner's selectPresignedURL rule and tie-break),
 * against a small HTTP server that answers each HEAD as told. The same rule against the local
 * service and Ceph RGW (presigned and gocloud URLs): test/integration/transfer-alternate.test.ts.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pickNewer } from '../../src/transfer/newer.ts';

/** path → [status, Last-Modified]; GET paths answer 403 to HEAD, as a GET-presigned S3 URL does. */
const answers: Record<string, [number, string | undefined]> = {
  '/old': [200, 'Mon, 01 Dec 2025 10:00:00 GMT'],
  '/old-too': [200, 'Mon, 01 Dec 2025 10:00:00 GMT'],
  '/new': [200, 'Tue, 02 Dec 2025 10:00:00 GMT'],
  '/missing': [404, undefined],
  '/forbidden': [403, 'Tue, 02 Dec 2025 10:00:00 GMT'],
  '/failing': [500, 'Tue, 02 Dec 2025 10:00:00 GMT'],
  '/no-date': [200, undefined],
  '/bad-date': [200, 'yesterday-ish'],
};
let server: Server;
let base: string;
before(async () => {
  server = createServer((req, res) => {
    const [status, lm] = answers[req.url ?? ''] ?? [404, undefined];
    res.writeHead(status, lm ? { 'last-modified': lm } : {});
    res.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => server.close());

const src = (p: string, head?: string): { url: string; headUrl?: string } => ({ url: `${base}/get${p}`, ...(head ? { headUrl: `${base}${head}` } : {}) });

const cases: Array<[string, string, string, 'primary' | 'alternate', RegExp]> = [
  ['alternate newer', '/old', '/new', 'alternate', /^Selecting alternate cache URL: newer timestamp$/],
  ['primary newer', '/new', '/old', 'primary', /^Selecting primary cache URL$/],
  ['same second: the primary (the alternate must be strictly newer)', '/old', '/old-too', 'primary', /^Selecting primary cache URL$/],
  ['primary missing', '/missing', '/old', 'alternate', /primary not available/],
  ['alternate missing', '/old', '/missing', 'primary', /^Selecting primary cache URL$/],
  ['both missing', '/missing', '/missing', 'primary', /^Selecting primary cache URL$/],
  ['primary 403 counts as not available', '/forbidden', '/old', 'alternate', /primary not available/],
  ['primary 500 counts as not available (not retried)', '/failing', '/old', 'alternate', /primary not available/],
  ['primary without Last-Modified', '/no-date', '/old', 'alternate', /primary not available/],
  ['primary with an unparseable Last-Modified', '/bad-date', '/old', 'alternate', /primary not available/],
  ['alternate without Last-Modified: the primary even when older', '/old', '/no-date', 'primary', /^Selecting primary cache URL$/],
];

for (const [title, p, a, pick, reason] of cases) {
  test(`pickNewer: ${title}`, async () => {
    const choice = await pickNewer(src(p, p), src(a, a));
    assert.equal(choice.pick, pick);
    assert.match(choice.reason, reason);
  });
}

test('pickNewer: without --head-url the HEAD goes to the URL itself', async () => {
  // /get/… is not in the table: 404 for both → primary; with the head URL of the alternate → alternate.
  assert.equal((await pickNewer(src('/new'), src('/old'))).pick, 'primary');
  assert.equal((await pickNewer(src('/new'), src('/old', '/old'))).pick, 'alternate');
  assert.equal((await pickNewer({ url: `${base}/old` }, { url: `${base}/new` })).pick, 'alternate');
});

test('pickNewer: a server that does not answer counts as not available', async () => {
  const dead = { url: 'http://127.0.0.1:9/x' };
  assert.equal((await pickNewer(dead, src('/old', '/old'))).pick, 'alternate');
  assert.equal((await pickNewer(src('/old', '/old'), dead)).pick, 'primary');
});

test('pickNewer: gocloud URLs without credentials count as not available; the reason names the GoCloud form', async () => {
  const c = await pickNewer({ goCloudUrl: 's3://b/primary?endpoint=http://127.0.0.1:9' }, { goCloudUrl: 's3://b/alt?endpoint=http://127.0.0.1:9' }, { env: {} });
  assert.equal(c.pick, 'primary');
  assert.equal(c.reason, 'Selecting primary GoCloud cache');
});
