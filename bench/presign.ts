/**
 * bench/presign: requests per second of POST /v1/presign against a hono hello-world route (GET /),
 * measured in the same run (50 connections, loopback). Each server runs in its own process. Two load
 * generators: autocannon (Node, the issue's reference) and wrk (C, when installed: Debian's `wrk`).
 *
 *   npm run bench:presign [-- --cycles 10 --interval 1 --connections 50 --backends local,s3 --log-level info --clients autocannon,wrk --no-pin]
 *
 * Method (docs/performance.md): on a shared 2-core virtual machine, throughput drifts by up to 2x
 * over tens of seconds, so long runs measured one after the other compare noise. Instead each cycle
 * measures hello-world, then each backend, for `--interval` seconds each, back to back; the ratio of
 * a cycle is backend/hello, and the summary is the median over `--cycles` cycles. Both servers are
 * pinned to the last CPU and the load generator to the others (taskset; --no-pin turns it off), so
 * the ratio compares the servers' CPU cost per request instead of how the client and the server
 * happen to share two cores (unpinned, wrk and the hello-world server contend for the same cores,
 * which flatters the ratio). Each target gets 2 s of warm-up first.
 *
 * The S3 profile signs without network (static credentials, BucketLocation set), so it measures the
 * service's own presign path; the adapter is the real one.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir, cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';

const ROOT = resolve(import.meta.dirname, '..');
const { values } = parseArgs({
  options: {
    cycles: { type: 'string', default: '10' },
    interval: { type: 'string', default: '1' },
    'no-pin': { type: 'boolean', default: false },
    connections: { type: 'string', default: '50' },
    backends: { type: 'string', default: 'local,s3' },
    'log-level': { type: 'string', default: 'info' },
    clients: { type: 'string', default: 'autocannon,wrk' },
  },
});
const interval = Number(values.interval);
const cycles = Math.max(1, Number(values.cycles));
const lastCpu = cpus().length - 1;
const pin = !values['no-pin'] && lastCpu >= 1 && spawnSync('taskset', ['-V']).error === undefined;
const SERVER_CPUS = String(lastCpu);
const CLIENT_CPUS = lastCpu === 1 ? '0' : `0-${lastCpu - 1}`;
if (pin) spawnSync('taskset', ['-p', '-c', CLIENT_CPUS, String(process.pid)], { stdio: 'ignore' }); // autocannon runs here
const connections = Number(values.connections);
const TOKEN = 'glrt-benchbenchbench';

function startProcess(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ child: ChildProcess; url: string }> {
  return new Promise((res, rej) => {
    const [cmd, argv] = pin ? ['taskset', ['-c', SERVER_CPUS, process.execPath, ...args]] : [process.execPath, args];
    const child = spawn(cmd, argv, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
    let buf = '';
    const onData = (d: Buffer): void => {
      buf += d.toString();
      const m = /listening on (http:\/\/[0-9.:]+)/.exec(buf);
      if (m) {
        child.stdout?.off('data', onData);
        child.stdout?.resume(); // keep draining its log lines
        res({ child, url: m[1] });
      }
    };
    child.stdout?.on('data', onData);
    child.on('exit', (code) => rej(new Error(`${args.join(' ')} exited with ${code}: ${buf}`)));
  });
}

interface LoadOpts { method?: 'GET' | 'POST'; body?: string; headers?: Record<string, string> }
interface LoadResult { rps: number; p50: number; p99: number; errors: number; non2xx: number }

async function autocannonLoad(url: string, opts: LoadOpts, seconds: number): Promise<LoadResult> {
  const r = await autocannon({ url, connections, duration: seconds, method: opts.method ?? 'GET', body: opts.body, headers: opts.headers });
  return { rps: Math.round(r.requests.average), p50: r.latency.p50, p99: r.latency.p99, errors: r.errors + r.timeouts, non2xx: r.non2xx };
}

async function wrkLoad(url: string, opts: LoadOpts, seconds: number): Promise<LoadResult> {
  const script = join(dir, `wrk-${opts.method ?? 'GET'}-${opts.headers?.authorization ?? ''}.lua`.replace(/[^A-Za-z0-9.-]/g, '_'));
  const lua = [
    `wrk.method = ${JSON.stringify(opts.method ?? 'GET')}`,
    opts.body ? `wrk.body = ${JSON.stringify(opts.body)}` : '',
    ...Object.entries(opts.headers ?? {}).map(([k, v]) => `wrk.headers[${JSON.stringify(k)}] = ${JSON.stringify(v)}`),
    'done = function(summary, latency, requests)',
    '  io.write(string.format("JSON {\\"requests\\":%d,\\"seconds\\":%f,\\"p50\\":%f,\\"p99\\":%f,\\"errors\\":%d,\\"non2xx\\":%d}\\n",',
    '    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000,',
    '    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout, summary.errors.status))',
    'end',
  ].join('\n');
  await writeFile(script, lua);
  const wrk = ['wrk', '-t1', `-c${connections}`, `-d${seconds}s`, '-s', script, url];
  const [cmd, ...argv] = pin ? ['taskset', '-c', CLIENT_CPUS, ...wrk] : wrk;
  const m = /JSON (\{.*\})/.exec(spawnSync(cmd, argv, { encoding: 'utf8' }).stdout);
  if (!m) throw new Error('wrk gave no result');
  const r = JSON.parse(m[1]) as { requests: number; seconds: number; p50: number; p99: number; errors: number; non2xx: number };
  return { rps: Math.round(r.requests / r.seconds), p50: r.p50, p99: r.p99, errors: r.errors, non2xx: r.non2xx };
}

const haveWrk = spawnSync('wrk', ['--version']).error === undefined;
const clients = values.clients.split(',').filter((c) => c === 'autocannon' || (c === 'wrk' && haveWrk));

const dir = await mkdtemp(join(tmpdir(), 'cachegate-bench-'));
const toml = `
[cachegate]
log_format = "json"
log_level = "${values['log-level']}"
local_signing_key = "bench-signing-key"

[[runners]]
  name = "local"
  token = "${TOKEN}"
  [runners.cache]
    Type = "local"

[[runners]]
  name = "s3"
  token = "${TOKEN}-s3"
  [runners.cache]
    Type = "s3"
    [runners.cache.s3]
      ServerAddress = "s3.bench.invalid:9000"
      AccessKey = "AKIABENCHBENCHBENCH"
      SecretKey = "benchbenchbenchbenchbenchbenchbenchbench"
      BucketName = "bench-bucket"
      BucketLocation = "us-east-1"
      Insecure = true
`;
await writeFile(join(dir, 'config.toml'), toml);
await mkdir(join(ROOT, 'bench/results'), { recursive: true });

const hello = await startProcess(['bench/hello-server.ts']);
const svc = await startProcess(['bin/cachegate.js', 'serve', '--config', join(dir, 'config.toml'), '--listen', '127.0.0.1:0', '--data-dir', join(dir, 'data')]);
type Target = { name: string; url: string; opts: LoadOpts };
const targets: Target[] = [
  { name: 'hello', url: hello.url + '/', opts: {} },
  ...values.backends.split(',').map((backend) => ({
    name: `presign_${backend}`,
    url: svc.url + '/v1/presign',
    opts: {
      method: 'POST' as const,
      body: JSON.stringify({ operation: 'upload', key: 'bench/some-job/main', projectId: '42' }),
      headers: { 'content-type': 'application/json', authorization: `Bearer ${backend === 'local' ? TOKEN : `${TOKEN}-${backend}`}` },
    },
  })),
];
const results: Record<string, Array<Record<string, LoadResult>>> = {};
try {
  for (const client of clients) {
    const load = client === 'wrk' ? wrkLoad : autocannonLoad;
    for (const t of targets) await load(t.url, t.opts, 2); // warm-up
    for (let cycle = 0; cycle < cycles; cycle++) {
      const r: Record<string, LoadResult> = {};
      (results[client] ??= []).push(r);
      for (const t of targets) r[t.name] = await load(t.url, t.opts, interval);
      process.stderr.write(`${client} cycle ${cycle + 1}/${cycles}: ${Object.entries(r).map(([k, v]) => `${k} ${v.rps}`).join(', ')}\n`);
    }
  }
} finally {
  hello.child.kill();
  svc.child.kill();
  await rm(dir, { recursive: true, force: true });
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const round3 = (x: number): number => Math.round(x * 1000) / 1000;
const summaries = Object.fromEntries(Object.entries(results).map(([client, rs]) => [
  client,
  Object.fromEntries(targets.map((t) => [t.name, {
    rpsMedian: Math.round(median(rs.map((r) => r[t.name].rps))),
    ...(t.name === 'hello' ? {} : { ratioMedian: round3(median(rs.map((r) => r[t.name].rps / r.hello.rps))), ratios: rs.map((r) => round3(r[t.name].rps / r.hello.rps)) }),
    errors: rs.reduce((n, r) => n + r[t.name].errors + r[t.name].non2xx, 0),
  }])),
]));
const summary = {
  date: new Date().toISOString(),
  node: process.version,
  cpus: cpus().length,
  connections,
  interval,
  cycles,
  pinned: pin ? { servers: SERVER_CPUS, client: CLIENT_CPUS } : false,
  logLevel: values['log-level'],
  summaries,
  results,
};
const out = join(ROOT, 'bench/results', `presign-${summary.date.slice(0, 19).replace(/:/g, '')}.json`);
await writeFile(out, JSON.stringify(summary, null, 2) + '\n');
process.stdout.write(JSON.stringify(summaries, null, 2) + `\nwritten to ${out}\n`);
