/**
 * The S3 front door against Ceph RGW serving directly, in the same run: presigned GET and PUT of a
 * 1 MB object at 50 connections (autocannon), through `cachegate serve` (a child process, its
 * profile on the same RGW bucket) and straight to RGW. Rounds alternate between the two targets so
 * that load from other processes hits both alike; the best round of each is reported, with the
 * ratio front door / direct. Then the in-process cost of SigV4 verification (bench/s3api-verify.ts:
 * CPU µs per request, from the raw URL and headers to the verdict) for a presigned URL and a
 * header-signed request. Each round also reports CPU ms per request of the door, of Ceph and of
 * the load generator (cpuMsPerRequest), since all three share the machine's cores.
 *
 *   ./node_modules/.bin/node bench/s3api.ts
 *   BENCH_SECONDS=10 BENCH_ROUNDS=3 BENCH_CONNECTIONS=50 ./node_modules/.bin/node bench/s3api.ts
 *   BENCH_MIX_SECONDS=60 …   also 200 connections mixing presigned and header-signed GET/PUT for 60 s:
 *                            0 errors required; each client error by code and when, the door's answers
 *                            by status (/metrics), RSS after warm-up, every 5 s and after the run
 *   BENCH_ROUNDS=0 …         the mix only
 *   BENCH_METHODS=PUT …      only these methods in the rounds (e.g. to profile one with NODE_OPTIONS=--cpu-prof)
 * Prints one JSON object. Every answer must be 2xx: a run with errors or non-2xx answers fails.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import autocannon from 'autocannon';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import { AK, SK, verifyCost } from './s3api-verify.ts';
import { rgw } from '../test/support/rgw.ts';

const ROOT = resolve(import.meta.dirname, '..');
const seconds = Number(process.env.BENCH_SECONDS ?? 5);
const rounds = Number(process.env.BENCH_ROUNDS ?? 2);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 50);
const KEY = 'runner/benchfron/project/1/bench-1mb';

const server = await rgw();
const bucket = await server.bucket('s3apibench');
const dir = await mkdtemp(join(tmpdir(), 'cg-s3api-bench-'));
await writeFile(join(dir, 'config.toml'), `
log_level = "${process.env.BENCH_LOG ? "info" : "warn"}"
[[runners]]
  name = "bench"
  token = "glrt-benchfrontdoor"
  [runners.cache]
    Type = "s3"
${server.toml(bucket)}
[cachegate.s3_api]
  listen = "127.0.0.1:0"
  [[cachegate.s3_api.keys]]
    access_key = "${AK}"
    secret_key = "${SK}"
    runner = "bench"
`);
const child = spawn(process.execPath, ['bin/cachegate.js', 'serve', '--config', join(dir, 'config.toml'), '--listen', '127.0.0.1:0', '--data-dir', join(dir, 'data')], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CACHEGATE_LOG_LEVEL: 'info' } });
let out = '';
let exited = '';
child.once('exit', (code, signal) => (exited = `cachegate serve exited (${code ?? signal}): ${out.slice(-3000)}`));
const [front, service] = await new Promise<[string, string]>((res, rej) => {
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    const m = /S3 front door listening on (http:\/\/[0-9.:]+)/.exec(out);
    const main = /cachegate listening on (http:\/\/[0-9.:]+)/.exec(out);
    if (m && main) res([m[1], main[1]]);
  });
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  child.once('exit', (code) => rej(new Error(`cachegate serve exited (${code}): ${out.slice(-2000)}`)));
});
child.stdout.on('data', (d: Buffer) => { if (process.env.BENCH_LOG) process.stderr.write(d); });
child.stderr.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-6000)));
// log_level warn: no access log line per request (the bench measures the door, not the log sink)
const presigner = (endpoint: string, accessKeyId: string, secretAccessKey: string): S3Client =>
  new S3Client({ endpoint, region: server.region, forcePathStyle: true, credentials: { accessKeyId, secretAccessKey }, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
const targets = {
  frontDoor: { client: presigner(front, AK, SK), bucket: 'runner-cache' },
  rgwDirect: { client: presigner(server.endpoint, server.accessKey, server.secretKey), bucket },
};
const body = randomBytes(1024 * 1024);
type Target = keyof typeof targets;
const urls = async (t: Target) => ({
  get: await getSignedUrl(targets[t].client, new GetObjectCommand({ Bucket: targets[t].bucket, Key: KEY }), { expiresIn: 3600 }),
  put: await getSignedUrl(targets[t].client, new PutObjectCommand({ Bucket: targets[t].bucket, Key: KEY, Metadata: { cachekey: 'bench' } }), { expiresIn: 3600, unhoistableHeaders: new Set(['x-amz-meta-cachekey']) }),
});
const u = { frontDoor: await urls('frontDoor'), rgwDirect: await urls('rgwDirect') };
// Both targets reach the same object: PUT through the door, GET it straight from RGW.
assert.equal((await fetch(u.frontDoor.put, { method: 'PUT', body, headers: { 'x-amz-meta-cachekey': 'bench' } })).status, 200);
assert.ok(Buffer.from(await (await fetch(u.rgwDirect.get)).arrayBuffer()).equals(body));

/**
 * CPU seconds (user + system) used so far by the door (the cachegate child), by Ceph (every
 * radosgw/ceph-osd/ceph-mon process: run on a machine without another Ceph) and by this process
 * (the load generator): the 2 cores are shared by all three, so what the door costs per request
 * bounds the ratio to RGW direct.
 */
type Cpu = { door: number; doorSystem: number; ceph: number; client: number };
async function cpuSeconds(): Promise<Cpu> {
  const stat = async (pid: number | string): Promise<string[]> => (await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '')).split(') ')[1]?.split(' ') ?? [];
  // utime, stime in clock ticks (USER_HZ 100)
  const ticks = async (pid: number | string): Promise<number> => {
    const f = await stat(pid);
    return (Number(f[11] ?? 0) + Number(f[12] ?? 0)) / 100;
  };
  let ceph = 0;
  for (const pid of (await readdir('/proc')).filter((d) => /^\d+$/.test(d))) {
    const comm = (await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '')).trim();
    if (comm === 'radosgw' || comm.startsWith('ceph-')) ceph += await ticks(pid);
  }
  const u = process.cpuUsage();
  return { door: await ticks(child.pid!), doorSystem: Number((await stat(child.pid!))[12] ?? 0) / 100, ceph, client: (u.user + u.system) / 1e6 };
}

interface Round { reqPerSec: number; mbPerSec: number; p99ms: number; cpuMsPerRequest: Cpu }
async function round(url: string, method: 'GET' | 'PUT', name: string): Promise<Round> {
  const cpu0 = await cpuSeconds();
  const r = await autocannon({
    url, method, connections, duration: seconds,
    ...(method === 'PUT' ? { body, headers: { 'x-amz-meta-cachekey': 'bench', 'content-type': 'application/octet-stream' } } : {}),
  });
  assert.equal(exited, '', exited);
  assert.equal(r.errors, 0, `${method} ${name}: ${r.errors} errors (${JSON.stringify(r.errors > 0 ? { timeouts: r.timeouts, resets: r.resets, mismatches: r.mismatches } : {})})`);
  assert.equal(r.non2xx, 0, `${method} ${name}: ${r.non2xx} non-2xx answers`);
  const mb = method === 'GET' ? r.throughput.average / 1e6 : (r.requests.average * body.length) / 1e6;
  const cpu1 = await cpuSeconds();
  const per = (k: keyof Cpu): number => Math.round(((cpu1[k] - cpu0[k]) / Math.max(1, r.requests.total)) * 1e5) / 100;
  return { reqPerSec: r.requests.average, mbPerSec: Math.round(mb * 10) / 10, p99ms: r.latency.p99, cpuMsPerRequest: { door: per('door'), doorSystem: per('doorSystem'), ceph: per('ceph'), client: per('client') } };
}

const methods = (process.env.BENCH_METHODS ?? 'GET,PUT').split(',') as ('GET' | 'PUT')[]; // e.g. BENCH_METHODS=PUT to profile one
const best: Record<string, Round> = {};
for (let i = 0; i < rounds; i++) {
  for (const method of methods) {
    for (const t of ['rgwDirect', 'frontDoor'] as Target[]) {
      const r = await round(method === 'GET' ? u[t].get : u[t].put, method, t);
      const k = `${method} ${t}`;
      if (!best[k] || r.reqPerSec > best[k].reqPerSec) best[k] = r;
    }
  }
}

/** The front door's answers by status as the service counted them (/metrics), to tell its refusals from the load generator's errors. */
async function s3apiStatuses(): Promise<Record<string, number>> {
  const text = await (await fetch(`${service}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^cachegate_http_requests_total\{([^}]*)\} (\d+)/gm)) {
    if (!m[1].includes('route="s3api"')) continue;
    const status = /status="(\d+)"/.exec(m[1])?.[1] ?? '?';
    out[status] = (out[status] ?? 0) + Number(m[2]);
  }
  return out;
}

const diffCounts = (after: Record<string, number>, before: Record<string, number>): Record<string, number> =>
  Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - (before[k] ?? 0)]).filter(([, v]) => (v as number) > 0));

// The mix: 200 connections for BENCH_MIX_SECONDS (default 0 = skipped; the run is 60),
// presigned GET/PUT and header-signed GET/PUT of 1 MiB objects in turn; 0 errors, RSS compared.
const mixSeconds = Number(process.env.BENCH_MIX_SECONDS ?? 0);
let mix: Record<string, unknown> | undefined;
if (mixSeconds > 0) {
  const rss = async (): Promise<number> => Number(/VmRSS:\s+(\d+)/.exec(await readFile(`/proc/${child.pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;
  const path = (url: string): string => { const x = new URL(url); return x.pathname + x.search; };
  const f = u.frontDoor;
  const headerSigner = new SignatureV4({ credentials: { accessKeyId: AK, secretAccessKey: SK }, region: 'us-east-1', service: 's3', sha256: Hash.bind(null, 'sha256'), uriEscapePath: false });
  const fu = new URL(f.get);
  const hdr = async (method: 'GET' | 'PUT'): Promise<Record<string, string>> => {
    const h = (await headerSigner.sign({ method, protocol: 'http:', hostname: fu.hostname, port: Number(fu.port), path: fu.pathname, query: {}, headers: { host: fu.host, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD', ...(method === 'PUT' ? { 'x-amz-meta-cachekey': 'bench' } : {}) } })).headers;
    return Object.fromEntries(Object.entries(h).map(([k, v]) => [k, String(v)]));
  };
  // Header signatures hold 15 minutes: signed once for the run.
  const requests = [
    { method: 'GET' as const, path: path(f.get) },
    { method: 'PUT' as const, path: path(f.put), headers: { 'x-amz-meta-cachekey': 'bench', 'content-type': 'application/octet-stream' }, body },
    { method: 'GET' as const, path: fu.pathname, headers: await hdr('GET') },
    { method: 'PUT' as const, path: fu.pathname, headers: { ...(await hdr('PUT')), 'content-type': 'application/octet-stream' }, body },
  ];
  await autocannon({ url: front, connections: 50, duration: 3, requests }); // warm-up
  const before = await rss();
  const statusesBefore = await s3apiStatuses();
  // What each client error was (autocannon counts them only), the status of each non-2xx answer,
  // and the door's RSS every 5 s. Timeout 30 s: a 1 MiB PUT among 200 on two shared cores can take
  // more than autocannon's default 10 s (the previous quiet run's p99 was 7 s), and S3 clients wait longer.
  const clientErrors: Record<string, number> = {};
  const non2xxStatuses: Record<string, number> = {};
  const rssMiB: number[] = [];
  const sampler = setInterval(() => void rss().then((b) => rssMiB.push(Math.round(b / 2 ** 20))), 5000);
  const clientErrorTimes: number[] = [];
  const mixStart = Date.now();
  let done: (r: autocannon.Result) => void = () => undefined;
  const finished = new Promise<autocannon.Result>((res) => (done = res));
  const run = autocannon({ url: front, connections: 200, duration: mixSeconds, requests, timeout: 30 }, (err, result) => {
    assert.ifError(err);
    done(result);
  });
  run.on('reqError', (err: NodeJS.ErrnoException) => {
    const k = err.code ?? err.message;
    clientErrorTimes.push(Date.now() - mixStart);
    clientErrors[k] = (clientErrors[k] ?? 0) + 1;
  });
  run.on('response', (_client: unknown, status: number) => {
    if (status < 200 || status > 299) non2xxStatuses[status] = (non2xxStatuses[status] ?? 0) + 1;
  });
  const r = await finished;
  clearInterval(sampler);
  await new Promise((res) => setTimeout(res, 2000));
  const afterRss = await rss();
  assert.equal(exited, '', exited);
  mix = {
    connections: 200, seconds: mixSeconds, requests: r.requests.total, reqPerSec: r.requests.average, errors: r.errors, timeouts: r.timeouts, non2xx: r.non2xx,
    clientErrors, clientErrorSecondsIntoRun: [...new Set(clientErrorTimes.map((ms) => Math.round(ms / 100) / 10))], non2xxStatuses, serviceStatuses: diffCounts(await s3apiStatuses(), statusesBefore),
    p99ms: r.latency.p99, rssAfterWarmUpMiB: Math.round(before / 2 ** 20), rssEvery5sMiB: rssMiB, rssAfterMiB: Math.round(afterRss / 2 ** 20), rssRatio: Math.round((afterRss / before) * 100) / 100,
  };
}
child.kill('SIGTERM');

const ratio = (m: 'GET' | 'PUT'): number | undefined => (best[`${m} frontDoor`] && best[`${m} rgwDirect`] ? Math.round((best[`${m} frontDoor`].reqPerSec / best[`${m} rgwDirect`].reqPerSec) * 100) / 100 : undefined); // BENCH_ROUNDS=0: the mix only
const result = {
  bench: 's3api', date: new Date().toISOString(), seconds, rounds, connections, objectBytes: body.length,
  best, ratio: { GET: ratio('GET'), PUT: ratio('PUT') },
  verifyMicroseconds: await verifyCost(),
  ...(mix ? { mix } : {}),
};
process.stdout.write(JSON.stringify(result, null, 2) + '\n');
await rm(dir, { recursive: true, force: true });
process.exit(0);
