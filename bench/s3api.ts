/**
 * The S3 front door against Ceph RGW serving directly, in the same run: presigned GET and PUT of a
 * 1 MB object at 50 connections (bench/http-load.ts), through `cachegate serve` (a child process, its
 * profile on the same RGW bucket) and straight to RGW. Rounds alternate between the two targets so
 * that load from other processes hits both alike; the best round of each is reported, with the
 * ratio front door / direct. Then the in-process cost of SigV4 verification (bench/s3api-verify.ts:
 * CPU µs per request, from the raw URL and headers to the verdict) for a presigned URL and a
 * header-signed request. Each round also reports CPU ms per request of the door, of Ceph and of
 * the load generator (cpuMsPerRequest), since all three share the machine's cores.
 *
 * Targets: RGW direct, the door on that RGW (frontDoor), and the door on its embedded local backend
 * (frontDoorLocal: same object size and URL shape, its own runner profile and key), and, for GET only,
 * a second door process with `redirect_get = true` (frontDoorRedirect: the door verifies and answers
 * 307, the load generator follows it to RGW as the runner's helper does; its CPU counted apart), each
 * against RGW direct. Layouts (BENCH_LAYOUTS, default both): `shared` lets every process use both cores, as a
 * machine that hosts all three does; `pinned` puts this Ceph cluster (its ceph-mon, ceph-osd and
 * radosgw, all threads) on core 0 and the door and the load generator on core 1, in both arms, so
 * the ratio is what a deployment with the door on its own CPU would see (RGW direct then has a core
 * of its own for itself, the door's arm shares nothing with Ceph either). CPU of Ceph is counted from
 * this cluster's PIDs only (test/support/rgw.ts), not from other Ceph processes on the machine.
 *
 *   ./node_modules/.bin/node bench/s3api.ts
 *   BENCH_SECONDS=10 BENCH_ROUNDS=3 BENCH_CONNECTIONS=50 ./node_modules/.bin/node bench/s3api.ts
 *   BENCH_MIX_SECONDS=60 …   also 200 connections mixing presigned and header-signed GET/PUT for 60 s:
 *                            0 errors required; each client error by code and when, the door's answers
 *                            by status (/metrics), RSS after warm-up, every 5 s and after the run
 *   BENCH_ROUNDS=0 …         the mix only
 *   BENCH_MIX_TARGET=frontDoorLocal …   the mix on the door's local backend instead of RGW
 *   BENCH_UPLOAD_WAIT=0 …    the door's [cachegate] upload_wait (0: uploads over max_uploads refused at once, as before session 9)
 *   CACHEGATE_SEMI_SPACE_MIB=0 …   the doors with V8's default young generation instead of the launcher's 16 MiB cap (bin/cachegate.js)
 *   BENCH_MEM_PROBE=1 …      the door also logs process.memoryUsage(), its live handles and glibc's heap split (bench/door-memory-probe.ts): the mix reports them every 30 s
 *                            every mix longer than 2.5 min prints an "RSS flat" verdict (bench/rss-verdict.ts) and carries it in mix.rssVerdict
 *   BENCH_METHODS=PUT …      only these methods in the rounds (e.g. to profile one with NODE_OPTIONS=--cpu-prof)
 *   BENCH_TARGETS=frontDoor,rgwDirect …   only these targets;  BENCH_LAYOUTS=pinned …   only this layout
 *   BENCH_CLIENT=autocannon …             the load generator of the rounds and the mix (default node: bench/http-load.ts says why)
 * Prints one JSON object. Every answer must be 2xx: a run with errors or non-2xx answers fails.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import autocannon from 'autocannon';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import { httpLoad } from './http-load.ts';
import { rssVerdict } from './rss-verdict.ts';
import { AK, SK, verifyCost } from './s3api-verify.ts';
import { rgw } from '../test/support/rgw.ts';

const ROOT = resolve(import.meta.dirname, '..');
const seconds = Number(process.env.BENCH_SECONDS ?? 5);
const rounds = Number(process.env.BENCH_ROUNDS ?? 2);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 50);
const KEY = 'runner/benchfron/project/1/bench-1mb';
const LOCAL_AK = 'BENCHLOCALDOOR01';
const LOCAL_KEY = 'runner/benchloca/project/1/bench-1mb';

const loadAverageAtStart = loadavg().map((x) => Math.round(x * 100) / 100);
const server = await rgw();
const bucket = await server.bucket('s3apibench');
const dir = await mkdtemp(join(tmpdir(), 'cg-s3api-bench-'));
const config = (redirect: boolean): string => `
log_level = "${process.env.BENCH_LOG ? "info" : "warn"}"
${process.env.BENCH_UPLOAD_WAIT !== undefined ? `[cachegate]\nupload_wait = ${Number(process.env.BENCH_UPLOAD_WAIT)}\n` : ''}[[runners]]
  name = "bench"
  token = "glrt-benchfrontdoor"
  [runners.cache]
    Type = "s3"
${server.toml(bucket)}
[[runners]]
  name = "bench-local"
  token = "glrt-benchlocaldoor"
  [runners.cache]
    Type = "local"
[cachegate.s3_api]
  listen = "127.0.0.1:0"
  redirect_get = ${redirect}
  [[cachegate.s3_api.keys]]
    access_key = "${AK}"
    secret_key = "${SK}"
    runner = "bench"
  [[cachegate.s3_api.keys]]
    access_key = "${LOCAL_AK}"
    secret_key = "${SK}"
    runner = "bench-local"
`;
/** A `cachegate serve` child; its S3 front door and main listener URLs. */
async function startDoor(name: string, redirect: boolean): Promise<{ child: ReturnType<typeof spawn>; front: string; service: string; exited: () => string }> {
  await writeFile(join(dir, `${name}.toml`), config(redirect));
  // Through the launcher, as `npm start` and the image run it (its V8 flags for `serve` included).
  const probe = process.env.BENCH_MEM_PROBE ? { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import=./bench/door-memory-probe.ts` } : {};
  const child = spawn(join(ROOT, 'bin/cachegate.js'), ['serve', '--config', join(dir, `${name}.toml`), '--listen', '127.0.0.1:0', '--data-dir', join(dir, 'data')], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...probe, CACHEGATE_LOG_LEVEL: 'info', CACHEGATE_BENCH_MEMLOG: join(dir, `${name}-memory.jsonl`) } });
  let out = '';
  let exited = '';
  child.once('exit', (code, signal) => (exited = `cachegate serve (${name}) exited (${code ?? signal}): ${out.slice(-3000)}`));
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
  return { child, front, service, exited: () => exited };
}
type Target = 'rgwDirect' | 'frontDoor' | 'frontDoorLocal' | 'frontDoorRedirect';
const targetNames = (process.env.BENCH_TARGETS ?? 'rgwDirect,frontDoor,frontDoorLocal,frontDoorRedirect').split(',') as Target[];
const door = await startDoor('door', false);
const { child, front, service } = door;
// The redirect arm (redirect_get = true) is its own process, so that its CPU is counted apart.
const redirectDoor = targetNames.includes('frontDoorRedirect') ? await startDoor('redirect', true) : undefined;
const exited = (): string => door.exited() || (redirectDoor?.exited() ?? '');
// log_level warn: no access log line per request (the bench measures the door, not the log sink)
const presigner = (endpoint: string, accessKeyId: string, secretAccessKey: string): S3Client =>
  new S3Client({ endpoint, region: server.region, forcePathStyle: true, credentials: { accessKeyId, secretAccessKey }, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
const targets: Record<Target, { client: S3Client; bucket: string; key: string }> = {
  frontDoor: { client: presigner(front, AK, SK), bucket: 'runner-cache', key: KEY },
  frontDoorLocal: { client: presigner(front, LOCAL_AK, SK), bucket: 'runner-cache', key: LOCAL_KEY },
  frontDoorRedirect: { client: presigner(redirectDoor?.front ?? front, AK, SK), bucket: 'runner-cache', key: KEY },
  rgwDirect: { client: presigner(server.endpoint, server.accessKey, server.secretKey), bucket, key: KEY },
};
const body = randomBytes(1024 * 1024);
const urls = async (t: Target) => ({
  get: await getSignedUrl(targets[t].client, new GetObjectCommand({ Bucket: targets[t].bucket, Key: targets[t].key }), { expiresIn: 3600 }),
  put: await getSignedUrl(targets[t].client, new PutObjectCommand({ Bucket: targets[t].bucket, Key: targets[t].key, Metadata: { cachekey: 'bench' } }), { expiresIn: 3600, unhoistableHeaders: new Set(['x-amz-meta-cachekey']) }),
});
const u = { frontDoor: await urls('frontDoor'), frontDoorLocal: await urls('frontDoorLocal'), frontDoorRedirect: await urls('frontDoorRedirect'), rgwDirect: await urls('rgwDirect') };
// Both RGW targets reach the same object: PUT through the door, GET it straight from RGW.
assert.equal((await fetch(u.frontDoor.put, { method: 'PUT', body, headers: { 'x-amz-meta-cachekey': 'bench' } })).status, 200);
assert.ok(Buffer.from(await (await fetch(u.rgwDirect.get)).arrayBuffer()).equals(body));
assert.equal((await fetch(u.frontDoorLocal.put, { method: 'PUT', body, headers: { 'x-amz-meta-cachekey': 'bench' } })).status, 200);
assert.ok(Buffer.from(await (await fetch(u.frontDoorLocal.get)).arrayBuffer()).equals(body));
if (redirectDoor) assert.ok(Buffer.from(await (await fetch(u.frontDoorRedirect.get)).arrayBuffer()).equals(body)); // fetch follows the 307

/** Every thread of these processes on these cores (taskset -a: threads started later inherit it). */
function pin(pids: number[], cpus: string): void {
  for (const pid of pids) {
    const r = spawnSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { encoding: 'utf8' });
    assert.equal(r.status, 0, `taskset -a -p -c ${cpus} ${pid}: ${r.stderr}`);
  }
}
const cephPids = server.pids();
const cores = availableParallelism();
function layout(name: string): void {
  if (name === 'pinned') {
    assert.ok(cores >= 2 && cephPids.length > 0, 'the pinned layout needs 2 cores and a Ceph cluster started here (not CACHEGATE_TEST_S3_ENDPOINT)');
    pin(cephPids, '0');
    pin([child.pid!, ...(redirectDoor ? [redirectDoor.child.pid!] : []), process.pid], '1');
  } else {
    pin([...cephPids, child.pid!, ...(redirectDoor ? [redirectDoor.child.pid!] : []), process.pid], `0-${cores - 1}`);
  }
}

/**
 * CPU seconds (user + system) used so far by the door (the cachegate child), by Ceph (every
 * process of this cluster; of every radosgw/ceph-* on the machine for a server given by
 * CACHEGATE_TEST_S3_ENDPOINT) and by this process
 * (the load generator): the 2 cores are shared by all three, so what the door costs per request
 * bounds the ratio to RGW direct.
 */
type Cpu = { door: number; doorSystem: number; ceph: number; client: number };
async function cpuSeconds(doorPid: number): Promise<Cpu> {
  const stat = async (pid: number | string): Promise<string[]> => (await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '')).split(') ')[1]?.split(' ') ?? [];
  // utime, stime in clock ticks (USER_HZ 100)
  const ticks = async (pid: number | string): Promise<number> => {
    const f = await stat(pid);
    return (Number(f[11] ?? 0) + Number(f[12] ?? 0)) / 100;
  };
  let ceph = 0;
  if (cephPids.length > 0) {
    for (const pid of cephPids) ceph += await ticks(pid);
  } else {
    for (const pid of (await readdir('/proc')).filter((d) => /^\d+$/.test(d))) {
      const comm = (await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '')).trim();
      if (comm === 'radosgw' || comm.startsWith('ceph-')) ceph += await ticks(pid);
    }
  }
  const u = process.cpuUsage();
  return { door: await ticks(doorPid), doorSystem: Number((await stat(doorPid))[12] ?? 0) / 100, ceph, client: (u.user + u.system) / 1e6 };
}

interface Round { reqPerSec: number; mbPerSec: number; p99ms: number; cpuMsPerRequest: Cpu }
/** The rounds' load generator: node:http (bench/http-load.ts, default) or autocannon (BENCH_CLIENT=autocannon, what runs before 2026-12-04 used). */
const loadClient = process.env.BENCH_CLIENT ?? 'node';
async function load(url: string, method: 'GET' | 'PUT'): Promise<{ requests: number; reqPerSec: number; errors: number; non2xx: number; p99ms: number; detail?: object }> {
  const headers: Record<string, string> = method === 'PUT' ? { 'x-amz-meta-cachekey': 'bench', 'content-type': 'application/octet-stream' } : {};
  if (loadClient === 'node') return httpLoad({ url, method, connections, seconds, headers, ...(method === 'PUT' ? { body } : {}) });
  const r = await autocannon({ url, method, connections, duration: seconds, ...(method === 'PUT' ? { body, headers } : {}) });
  return { requests: r.requests.total, reqPerSec: r.requests.average, errors: r.errors, non2xx: r.non2xx, p99ms: r.latency.p99, detail: { timeouts: r.timeouts, resets: r.resets, mismatches: r.mismatches } };
}

async function round(url: string, method: 'GET' | 'PUT', name: Target): Promise<Round> {
  const doorPid = (name === 'frontDoorRedirect' ? redirectDoor?.child.pid : child.pid) as number;
  const cpu0 = await cpuSeconds(doorPid);
  const r = await load(url, method);
  assert.equal(exited(), '', exited());
  assert.equal(r.errors, 0, `${method} ${name}: ${r.errors} errors ${JSON.stringify(r.detail ?? {})}`);
  assert.equal(r.non2xx, 0, `${method} ${name}: ${r.non2xx} non-2xx answers`);
  const mb = (r.reqPerSec * body.length) / 1e6; // GET and PUT move one whole object per request
  const cpu1 = await cpuSeconds(doorPid);
  const per = (k: keyof Cpu): number => Math.round(((cpu1[k] - cpu0[k]) / Math.max(1, r.requests)) * 1e5) / 100;
  return { reqPerSec: r.reqPerSec, mbPerSec: Math.round(mb * 10) / 10, p99ms: r.p99ms, cpuMsPerRequest: { door: per('door'), doorSystem: per('doorSystem'), ceph: per('ceph'), client: per('client') } };
}

const methods = (process.env.BENCH_METHODS ?? 'GET,PUT').split(',') as ('GET' | 'PUT')[]; // e.g. BENCH_METHODS=PUT to profile one
const layouts = (process.env.BENCH_LAYOUTS ?? 'shared,pinned').split(',');
const best: Record<string, Record<string, Round>> = {};
for (const l of layouts) {
  layout(l);
  const b: Record<string, Round> = (best[l] = {});
  for (let i = 0; i < rounds; i++) {
    for (const method of methods) {
      for (const t of targetNames) {
        if (t === 'frontDoorRedirect' && method === 'PUT') continue; // PUTs are never redirected
        const r = await round(method === 'GET' ? u[t].get : u[t].put, method, t);
        const k = `${method} ${t}`;
        if (!b[k] || r.reqPerSec > b[k].reqPerSec) b[k] = r;
      }
    }
  }
}
layout('shared'); // the mix and the verification cost run as a shared machine would

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

// The mix: 200 connections for BENCH_MIX_SECONDS (default 0 = skipped; the issue's run is 60),
// presigned GET/PUT and header-signed GET/PUT of 1 MiB objects in turn; 0 errors, RSS compared.
const mixSeconds = Number(process.env.BENCH_MIX_SECONDS ?? 0);
let mix: Record<string, unknown> | undefined;
if (mixSeconds > 0) {
  const rss = async (): Promise<number> => Number(/VmRSS:\s+(\d+)/.exec(await readFile(`/proc/${child.pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;
  const path = (url: string): string => { const x = new URL(url); return x.pathname + x.search; };
  // BENCH_MIX_TARGET=frontDoorLocal: the same mix on the door's local backend (no backend client), to tell the door's own memory from its S3 client's.
  const local = process.env.BENCH_MIX_TARGET === 'frontDoorLocal';
  const f = local ? u.frontDoorLocal : u.frontDoor;
  const headerSigner = new SignatureV4({ credentials: { accessKeyId: local ? LOCAL_AK : AK, secretAccessKey: SK }, region: 'us-east-1', service: 's3', sha256: Hash.bind(null, 'sha256'), uriEscapePath: false });
  const fu = new URL(f.get);
  const hdr = async (method: 'GET' | 'PUT'): Promise<Record<string, string>> => {
    const h = (await headerSigner.sign({ method, protocol: 'http:', hostname: fu.hostname, port: Number(fu.port), path: fu.pathname, query: {}, headers: { host: fu.host, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD', ...(method === 'PUT' ? { 'x-amz-meta-cachekey': 'bench' } : {}) } })).headers;
    return Object.fromEntries(Object.entries(h).map(([k, v]) => [k, String(v)]));
  };
  // Header signatures hold 15 minutes: signed again every 5 minutes of the mix (below).
  const requests: Array<{ method: 'GET' | 'PUT'; path: string; headers?: Record<string, string>; body?: Buffer }> = [
    { method: 'GET' as const, path: path(f.get) },
    { method: 'PUT' as const, path: path(f.put), headers: { 'x-amz-meta-cachekey': 'bench', 'content-type': 'application/octet-stream' }, body },
    { method: 'GET' as const, path: fu.pathname, headers: await hdr('GET') },
    { method: 'PUT' as const, path: fu.pathname, headers: { ...(await hdr('PUT')), 'content-type': 'application/octet-stream' }, body },
  ];
  // node:http (bench/http-load.ts) by default: autocannon's JavaScript parser spends ~23 ms per 1 MiB
  // GET, and with 200 connections its own event loop lagged by seconds (a TimeoutNegativeWarning of
  // -3.6 s in its timers), so its "timeouts" were requests it had not sent: 7 of them in one loaded
  // run, each of which the door logged as arriving 29–126 ms before the client gave up at 30 s,
  // while the door's slowest answer of the run took 2.5 s. BENCH_CLIENT=autocannon keeps it.
  const nodeRequests = requests.map((r) => ({ ...r, url: front + r.path }));
  if (loadClient === 'node') await httpLoad({ url: front, method: 'GET', connections: 50, seconds: 3, requests: nodeRequests }); // warm-up
  else await autocannon({ url: front, connections: 50, duration: 3, requests }); // warm-up
  const before = await rss();
  const statusesBefore = await s3apiStatuses();
  const cpuBefore = await cpuSeconds(child.pid!);
  // The door's RSS every 5 s. Timeout 30 s: a 1 MiB PUT among 200 on two shared cores can take
  // more than autocannon's default 10 s (the previous quiet run's p99 was 7 s), and S3 clients wait longer.
  const resign = setInterval(() => void Promise.all([hdr('GET'), hdr('PUT')]).then(([g, p]) => {
    nodeRequests[2].headers = g;
    nodeRequests[3].headers = { ...p, 'content-type': 'application/octet-stream' };
  }), 300_000); // (autocannon copies its requests at start: BENCH_CLIENT=autocannon mixes stay under 15 minutes)
  const rssMiB: number[] = [];
  const sampler = setInterval(() => void rss().then((b) => rssMiB.push(Math.round(b / 2 ** 20))), 5000);
  let r: { requests: number; reqPerSec: number; errors: number; timeouts: number; non2xx: number; p99ms: number; clientErrors: Record<string, number>; clientErrorSecondsIntoRun: number[]; non2xxStatuses: Record<string, number>; timedOut?: object[] };
  if (loadClient === 'node') {
    const x = await httpLoad({ url: front, method: 'GET', connections: 200, seconds: mixSeconds, requests: nodeRequests, timeoutSeconds: 30 });
    r = { ...x, timeouts: x.errorKinds.timeout ?? 0, clientErrors: x.errorKinds, clientErrorSecondsIntoRun: x.errorSecondsIntoRun };
  } else {
    // What each client error was (autocannon counts them only) and the status of each non-2xx answer.
    const clientErrors: Record<string, number> = {};
    const non2xxStatuses: Record<string, number> = {};
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
    const x = await finished;
    r = {
      requests: x.requests.total, reqPerSec: x.requests.average, errors: x.errors, timeouts: x.timeouts, non2xx: x.non2xx, p99ms: x.latency.p99,
      clientErrors, clientErrorSecondsIntoRun: [...new Set(clientErrorTimes.map((ms) => Math.round(ms / 100) / 10))], non2xxStatuses,
    };
  }
  clearInterval(sampler);
  clearInterval(resign);
  const cpuAfter = await cpuSeconds(child.pid!);
  await new Promise((res) => setTimeout(res, 2000));
  const afterRss = await rss();
  // With BENCH_MEM_PROBE=1: the door's own split of its memory (bench/door-memory-probe.ts), one sample per 30 s.
  const probeLines = process.env.BENCH_MEM_PROBE ? (await readFile(join(dir, 'door-memory.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { s: number }) : [];
  const memoryEvery30s = probeLines.filter((_, i) => i % 6 === 5 || i === probeLines.length - 1);
  assert.equal(exited(), '', exited());
  mix = {
    connections: 200, seconds: mixSeconds, client: loadClient, requests: r.requests, reqPerSec: r.reqPerSec, errors: r.errors, timeouts: r.timeouts, non2xx: r.non2xx,
    clientErrors: r.clientErrors, clientErrorSecondsIntoRun: r.clientErrorSecondsIntoRun, ...(r.timedOut?.length ? { timedOut: r.timedOut } : {}), non2xxStatuses: r.non2xxStatuses, serviceStatuses: diffCounts(await s3apiStatuses(), statusesBefore),
    p99ms: r.p99ms, doorCpuMsPerRequest: Math.round(((cpuAfter.door - cpuBefore.door) / Math.max(1, r.requests)) * 1e5) / 100, rssAfterWarmUpMiB: Math.round(before / 2 ** 20), rssEvery5sMiB: rssMiB, rssAfterMiB: Math.round(afterRss / 2 ** 20), rssRatio: Math.round((afterRss / before) * 100) / 100,
    rssVerdict: rssVerdict(rssMiB),
    ...(probeLines.length ? { memoryEvery30s } : {}),
  };
  const v = mix.rssVerdict as ReturnType<typeof rssVerdict>;
  process.stderr.write(v ? `RSS ${v.flat ? 'flat' : 'NOT flat'}: slope ${v.slopeMiBPerMin} MiB/min after 2 min, last-half range ${v.lastHalfRangeMiB} MiB (${v.rule})\n` : 'RSS verdict: run too short (needs > 2.5 min)\n');
}
child.kill('SIGTERM');
redirectDoor?.child.kill('SIGTERM');

// Each door target against RGW direct, per layout and method (undefined when a side did not run).
const ratio: Record<string, Record<string, number | undefined>> = {};
for (const l of layouts) {
  for (const m of methods) {
    const direct = best[l]?.[`${m} rgwDirect`];
    for (const t of targetNames.filter((x) => x !== 'rgwDirect')) {
      const door = best[l]?.[`${m} ${t}`];
      (ratio[l] ??= {})[`${m} ${t}`] = door && direct ? Math.round((door.reqPerSec / direct.reqPerSec) * 100) / 100 : undefined;
    }
  }
}
const result = {
  bench: 's3api', date: new Date().toISOString(), seconds, rounds, connections, objectBytes: body.length, loadClient,
  loadAverageAtStart, loadAverageAtEnd: loadavg().map((x) => Math.round(x * 100) / 100),
  best, ratio,
  verifyMicroseconds: await verifyCost(),
  ...(mix ? { mix } : {}),
};
process.stdout.write(JSON.stringify(result, null, 2) + '\n');
await rm(dir, { recursive: true, force: true });
process.exit(0);
