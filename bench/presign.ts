/**
 * bench/presign: requests per second of POST /v1/presign against a hono hello-world route, measured
 * in the same run (50 connections, loopback). Each server runs in its own process. Two load
 * generators: autocannon (Node, the issue's reference) and wrk (C, when installed: Debian's `wrk`).
 * On 2 cores autocannon itself is the bottleneck for the hello-world route, which flatters the ratio;
 * wrk leaves more of the machine to the server and shows the server's own cost.
 *
 *   npm run bench:presign [-- --duration 10 --rounds 3 --connections 50 --backends local,s3 --log-level info --clients autocannon,wrk]
 *
 * Each round measures hello-world then every backend back to back and takes their ratios; the
 * summary is the median ratio over the rounds (on a shared 2-core machine, absolute numbers move
 * from minute to minute; ratios measured seconds apart move much less).
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
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '50' },
    backends: { type: 'string', default: 'local,s3' },
    'log-level': { type: 'string', default: 'info' },
    clients: { type: 'string', default: 'autocannon,wrk' },
    rounds: { type: 'string', default: '3' },
  },
});
const duration = Number(values.duration);
const connections = Number(values.connections);
const TOKEN = 'glrt-benchbenchbench';

function startProcess(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ child: ChildProcess; url: string }> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
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

async function autocannonLoad(url: string, opts: LoadOpts): Promise<LoadResult> {
  const run = (d: number) =>
    autocannon({ url, connections, duration: d, method: opts.method ?? 'GET', body: opts.body, headers: opts.headers });
  await run(2); // warm-up
  const r = await run(duration);
  return { rps: Math.round(r.requests.average), p50: r.latency.p50, p99: r.latency.p99, errors: r.errors + r.timeouts, non2xx: r.non2xx };
}

async function wrkLoad(url: string, opts: LoadOpts): Promise<LoadResult> {
  const script = join(dir, 'wrk.lua');
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
  const run = (d: number): string =>
    spawnSync('wrk', ['-t1', `-c${connections}`, `-d${d}s`, '-s', script, url], { encoding: 'utf8' }).stdout;
  run(2);
  const m = /JSON (\{.*\})/.exec(run(duration));
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
const rounds = Math.max(1, Number(values.rounds));
const results: Record<string, Array<Record<string, LoadResult>>> = {};
try {
  for (let round = 0; round < rounds; round++) {
    for (const client of clients) {
      const load = client === 'wrk' ? wrkLoad : autocannonLoad;
      const r: Record<string, LoadResult> = {};
      (results[client] ??= []).push(r);
      r.hello = await load(hello.url + '/', {});
      for (const backend of values.backends.split(',')) {
        const token = backend === 'local' ? TOKEN : `${TOKEN}-${backend}`;
        const body = JSON.stringify({ operation: 'upload', key: 'bench/some-job/main', projectId: '42' });
        r[`presign_${backend}`] = await load(svc.url + '/v1/presign', {
          method: 'POST', body, headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        });
      }
      process.stderr.write(`round ${round + 1}/${rounds} ${client}: ${Object.entries(r).map(([k, v]) => `${k} ${v.rps}`).join(', ')}\n`);
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
const perRound = Object.fromEntries(Object.entries(results).map(([client, rs]) => [
  client,
  rs.map((r) => Object.fromEntries(Object.entries(r).filter(([k]) => k !== 'hello').map(([k, v]) => [k, round3(v.rps / r.hello.rps)]))),
]));
const ratios = Object.fromEntries(Object.entries(perRound).map(([client, rs]) => [
  client,
  Object.fromEntries(Object.keys(rs[0]).map((k) => [k, { median: round3(median(rs.map((r) => r[k]))), rounds: rs.map((r) => r[k]) }])),
]));
const summary = {
  date: new Date().toISOString(),
  node: process.version,
  cpus: cpus().length,
  connections,
  duration,
  rounds,
  logLevel: values['log-level'],
  results,
  ratios,
};
const out = join(ROOT, 'bench/results', `presign-${summary.date.slice(0, 19).replace(/:/g, '')}.json`);
await writeFile(out, JSON.stringify(summary, null, 2) + '\n');
process.stdout.write(JSON.stringify(summary, null, 2) + `\nwritten to ${out}\n`);
