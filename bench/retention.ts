/**
 * bench/retention: what [cachegate.retention] and [cachegate.disk_cache] cost and give.
 *
 * 1. Presign (POST /v1/presign, download) and proxy GET (GET /v1/cache/…, a 100 KB object) requests
 *    per second on the local backend, retention off against on, in the same run: each cycle measures
 *    off then on for `--interval` seconds each (autocannon, `--connections`), and the summary is the
 *    median of the per-cycle ratios on/off (the method of bench/presign, docs/performance.md). Both
 *    servers are pinned to the last CPU and autocannon to the others when taskset exists.
 * 2. A 50 MB object read through the disk tier (a hit: validated by a HEAD, served from disk) against
 *    the same object read straight from Ceph RGW (GetObject), alternating, `--tier-rounds` each.
 *    RGW: CACHEGATE_TEST_S3_ENDPOINT, else one is started (scripts/start-rgw.sh).
 *
 *   node bench/retention.ts [--cycles 5 --interval 1 --connections 20 --tier-rounds 3 --no-tier]
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';

const ROOT = resolve(import.meta.dirname, '..');
const { values } = parseArgs({
  options: {
    cycles: { type: 'string', default: '5' },
    interval: { type: 'string', default: '1' },
    connections: { type: 'string', default: '20' },
    'tier-rounds': { type: 'string', default: '3' },
    'no-tier': { type: 'boolean', default: false },
    'no-pin': { type: 'boolean', default: false },
  },
});
const lastCpu = cpus().length - 1;
const pin = !values['no-pin'] && lastCpu >= 1 && spawnSync('taskset', ['-V']).error === undefined;
if (pin) spawnSync('taskset', ['-p', '-c', lastCpu === 1 ? '0' : `0-${lastCpu - 1}`, String(process.pid)], { stdio: 'ignore' });
const TOKEN = 'glrt-benchretention';
const dir = await mkdtemp(join(tmpdir(), 'cachegate-bench-retention-'));
const children: ChildProcess[] = [];
process.on('exit', () => children.forEach((c) => c.killed || c.kill('SIGTERM')));

function serve(name: string, toml: string): Promise<string> {
  return new Promise(async (res, rej) => {
    const conf = join(dir, `${name}.toml`);
    await mkdir(join(dir, name), { recursive: true });
    await writeFile(conf, toml);
    const args = [join(ROOT, 'bin/cachegate.js'), 'serve', '--config', conf, '--listen', '127.0.0.1:0', '--data-dir', join(dir, name)];
    const [cmd, argv] = pin ? ['taskset', ['-c', String(lastCpu), process.execPath, ...args]] : [process.execPath, args];
    const child = spawn(cmd, argv, { env: { ...process.env, CACHEGATE_LOG_FORMAT: 'json' }, stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(child);
    let buf = '';
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      const m = /listening on (http:\/\/[0-9.:]+)/.exec(buf);
      if (m) res(m[1]);
    });
    child.on('exit', (code) => rej(new Error(`${name} exited ${code}: ${buf}`)));
  });
}

const runner = `[[runners]]\nname = "bench"\ntoken = "${TOKEN}"\n[runners.cache]\nType = "local"\n`;
// Both at log level info (the access log costs both the same; the listening line is info).
const off = await serve('off', `log_level = "info"\n${runner}`);
const on = await serve('on', `log_level = "info"\n[cachegate.retention]\nmax_size = 10000000000\nmax_age = 1209600\n${runner}`);
const auth = { authorization: `Bearer ${TOKEN}` };
const object = randomBytes(100_000);
for (const url of [off, on]) {
  const r = await fetch(`${url}/v1/cache/1/bench-object`, { method: 'PUT', headers: auth, body: object });
  if (r.status !== 200) throw new Error(`upload to ${url}: ${r.status}`);
}

async function rps(url: string, kind: 'presign' | 'get', seconds: number): Promise<number> {
  const opts = kind === 'presign'
    ? { url: `${url}/v1/presign`, method: 'POST' as const, headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ operation: 'download', key: 'bench-object', projectId: '1' }) }
    : { url: `${url}/v1/cache/1/bench-object`, method: 'GET' as const, headers: auth };
  const r = await autocannon({ ...opts, connections: Number(values.connections), duration: seconds });
  if (r.non2xx > 0 || r.errors > 0) throw new Error(`${kind} ${url}: ${r.non2xx} non-2xx, ${r.errors} errors`);
  return r.requests.average;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const result: Record<string, unknown> = { date: new Date().toISOString(), load: spawnSync('cat', ['/proc/loadavg'], { encoding: 'utf8' }).stdout.trim(), pinned: pin };
for (const kind of ['presign', 'get'] as const) {
  await rps(off, kind, 1);
  await rps(on, kind, 1); // warm-up
  const ratios: number[] = [];
  const rows: Array<[number, number]> = [];
  for (let c = 0; c < Number(values.cycles); c++) {
    const a = await rps(off, kind, Number(values.interval));
    const b = await rps(on, kind, Number(values.interval));
    rows.push([a, b]);
    ratios.push(b / a);
  }
  result[kind] = { offRps: median(rows.map((r) => r[0])), onRps: median(rows.map((r) => r[1])), medianRatio: Number(median(ratios).toFixed(3)), ratios: ratios.map((x) => Number(x.toFixed(3))) };
  process.stdout.write(`${kind}: retention off ${median(rows.map((r) => r[0])).toFixed(0)} req/s, on ${median(rows.map((r) => r[1])).toFixed(0)} req/s, median ratio on/off ${median(ratios).toFixed(3)} (cycles: ${ratios.map((x) => x.toFixed(2)).join(' ')})\n`);
}

if (!values['no-tier']) {
  const { rgw } = await import('../test/support/rgw.ts');
  const { GetObjectCommand } = await import('@aws-sdk/client-s3');
  const s3 = await rgw();
  const bucket = await s3.bucket('bench');
  const tier = await serve('tier', `log_level = "info"\n[cachegate.disk_cache]\ndir = "${join(dir, 'tier-cache')}"\nmax_size = 1000000000\n` +
    `[[runners]]\nname = "bench"\ntoken = "${TOKEN}"\n[runners.cache]\nType = "s3"\n${s3.toml(bucket)}`);
  const big = randomBytes(50 * 1024 * 1024);
  const put = await fetch(`${tier}/v1/cache/1/big`, { method: 'PUT', headers: auth, body: big });
  if (put.status !== 200) throw new Error(`tier upload: ${put.status}`);
  const drain = async (body: AsyncIterable<Uint8Array>): Promise<number> => {
    let n = 0;
    for await (const c of body) n += c.length;
    return n;
  };
  const viaTier: number[] = [];
  const direct: number[] = [];
  for (let i = 0; i < Number(values['tier-rounds']); i++) {
    let t = performance.now();
    const r = await fetch(`${tier}/v1/cache/1/big`, { headers: auth });
    if ((await drain(r.body as unknown as AsyncIterable<Uint8Array>)) !== big.length) throw new Error('short tier read');
    viaTier.push(performance.now() - t);
    t = performance.now();
    const o = await s3.client.send(new GetObjectCommand({ Bucket: bucket, Key: 'runner/benchrete/project/1/big' }));
    if ((await drain(o.Body as AsyncIterable<Uint8Array>)) !== big.length) throw new Error('short RGW read');
    direct.push(performance.now() - t);
  }
  const mbps = (ms: number): number => Number((50 / (ms / 1000)).toFixed(0));
  result.tier = { objectMiB: 50, tierHitMs: viaTier.map((x) => Math.round(x)), directRgwMs: direct.map((x) => Math.round(x)), tierHitMiBps: mbps(median(viaTier)), directRgwMiBps: mbps(median(direct)) };
  process.stdout.write(`50 MiB object: disk-tier hit through the service ${median(viaTier).toFixed(0)} ms (${mbps(median(viaTier))} MiB/s), direct RGW GetObject ${median(direct).toFixed(0)} ms (${mbps(median(direct))} MiB/s)\n`);
}

await mkdir(join(ROOT, 'bench/results'), { recursive: true });
const file = join(ROOT, 'bench/results', `retention-${new Date().toISOString().replace(/[:.]/g, '').slice(0, 17)}.json`);
await writeFile(file, JSON.stringify(result, null, 2) + '\n');
process.stdout.write(`machine load at start: ${result.load}\nwritten: ${file}\n`);
children.forEach((c) => c.kill('SIGTERM'));
await rm(dir, { recursive: true, force: true });
process.exit(0);
