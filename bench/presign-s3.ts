/**
 * In-process presign throughput of the S3 adapter against getSignedUrl (@aws-sdk/s3-request-presigner)
 * producing an equivalent URL: a PUT signing x-amz-meta-cachekey (sent as a header), and a GET.
 * Both URLs are first checked against a real S3 server (Ceph RGW, started by test/support/rgw.ts or
 * given by CACHEGATE_TEST_S3_ENDPOINT): PUT with the headers, GET back the same bytes.
 *
 *   ./node_modules/.bin/node bench/presign-s3.ts            # 3 alternating rounds of 1 s each
 *   BENCH_SECONDS=2 BENCH_ROUNDS=5 ./node_modules/.bin/node bench/presign-s3.ts
 * Rounds alternate between the two signers so that load from other processes hits both alike; the
 * best round of each is reported (throughput under noise: the best run is the least disturbed one).
 * Prints one JSON object.
 */
import assert from 'node:assert/strict';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { createS3Adapter } from '../adapters/s3/index.ts';
import { rgw, s3Context } from '../test/support/rgw.ts';

const seconds = Number(process.env.BENCH_SECONDS ?? 1);
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const server = await rgw();
const bucket = await server.bucket('bench');
const adapter = createS3Adapter(s3Context(server.settings(bucket)).ctx);
const region = await adapter.region();
const sdk = new S3Client({
  region,
  endpoint: server.endpoint,
  forcePathStyle: true,
  credentials: { accessKeyId: server.accessKey, secretAccessKey: server.secretKey },
  requestChecksumCalculation: 'WHEN_REQUIRED',
  responseChecksumValidation: 'WHEN_REQUIRED',
});
const unhoistable = new Set(['x-amz-meta-cachekey']);

type Signer = (key: string) => Promise<{ url: string; headers: Record<string, string> }>;
const ours: Record<'PUT' | 'GET', Signer> = {
  PUT: (key) => adapter.presign({ method: 'PUT', objectName: key, expiresIn: 3600, metadata: { cachekey: 'bench key' } }),
  GET: (key) => adapter.presign({ method: 'GET', objectName: key, expiresIn: 3600, metadata: {} }),
};
const theirs: Record<'PUT' | 'GET', Signer> = {
  PUT: async (key) => ({
    url: await getSignedUrl(sdk, new PutObjectCommand({ Bucket: bucket, Key: key, Metadata: { cachekey: 'bench key' } }), { expiresIn: 3600, unhoistableHeaders: unhoistable }),
    headers: { 'x-amz-meta-cachekey': 'bench key' },
  }),
  GET: async (key) => ({ url: await getSignedUrl(sdk, new GetObjectCommand({ Bucket: bucket, Key: key }), { expiresIn: 3600 }), headers: {} }),
};

async function verify(name: string, s: Record<'PUT' | 'GET', Signer>): Promise<void> {
  const key = `runner/bench/project/1/${name}`;
  const body = `payload for ${name}`;
  const put = await s.PUT(key);
  const p = await fetch(put.url, { method: 'PUT', headers: put.headers, body });
  assert.equal(p.status, 200, `${name} PUT: ${p.status} ${await p.text()}`);
  const get = await s.GET(key);
  const g = await fetch(get.url);
  assert.equal(g.status, 200, `${name} GET: ${g.status}`);
  assert.equal(await g.text(), body);
  assert.equal(g.headers.get('x-amz-meta-cachekey'), 'bench key');
  const tampered = get.url.replace(/X-Amz-Signature=([0-9a-f])/, (_m, c: string) => `X-Amz-Signature=${c === '0' ? '1' : '0'}`);
  assert.equal((await fetch(tampered)).status, 403, `${name}: a tampered URL must be refused`);
}

async function measure(sign: Signer): Promise<number> {
  let i = 0;
  const warm = Date.now() + 300;
  while (Date.now() < warm) await sign(`runner/bench/project/1/warm-${i++}`);
  let n = 0;
  const start = process.hrtime.bigint();
  const end = Date.now() + seconds * 1000;
  while (Date.now() < end) {
    // 100 per clock check: Date.now() is not free either.
    for (let j = 0; j < 100; j++) await sign(`runner/bench/project/1/key-${n++}`);
  }
  const elapsed = Number(process.hrtime.bigint() - start) / 1e9;
  return n / elapsed;
}

await verify('cachegate', ours);
await verify('getSignedUrl', theirs);

const results: Record<string, { cachegate: number; getSignedUrl: number; ratio: number }> = {};
for (const op of ['PUT', 'GET'] as const) {
  let a = 0;
  let b = 0;
  for (let r = 0; r < rounds; r++) {
    a = Math.max(a, await measure(ours[op]));
    b = Math.max(b, await measure(theirs[op]));
  }
  results[op] = { cachegate: Math.round(a), getSignedUrl: Math.round(b), ratio: Math.round((a / b) * 10) / 10 };
}

console.log(JSON.stringify({
  bench: 'presign-s3 (in-process, sequential awaits)',
  node: process.version,
  server: 'verified against Ceph RGW: PUT with returned headers, GET same bytes + x-amz-meta-cachekey, tampered → 403',
  secondsPerRound: seconds,
  rounds,
  opsPerSecond: results,
}, null, 2));

await adapter.close?.();
sdk.destroy();
server.client.destroy();
