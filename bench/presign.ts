/**
 * bench/presign: requests per second of POST /v1/presign against a hono hello-world route, measured
 * in the same run with autocannon (50 connections, loopback). Each server runs in its own process.
 *
 *   npm run bench:presign [-- --duration 10 --connections 50 --backends local,s3 --log-level info]
 *
 * The S3 profile signs without network (static credentials, BucketLocation set), so it measures the
 * service's own presign path; the adapter is the real one.
 */
import { spawn, type ChildProcess } from 'node:child_process';
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

async function load(url: string, opts: { method?: 'GET' | 'POST'; body?: string; headers?: Record<string, string> }): Promise<{ rps: number; p50: number; p99: number; errors: number; non2xx: number }> {
  const run = (d: number) =>
    autocannon({ url, connections, duration: d, method: opts.method ?? 'GET', body: opts.body, headers: opts.headers });
  await run(2); // warm-up
  const r = await run(duration);
  return { rps: Math.round(r.requests.average), p50: r.latency.p50, p99: r.latency.p99, errors: r.errors + r.timeouts, non2xx: r.non2xx };
}

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
const results: Record<string, unknown> = {};
try {
  results.hello = await load(hello.url + '/', {});
  for (const backend of values.backends.split(',')) {
    const token = backend === 'local' ? TOKEN : `${TOKEN}-${backend}`;
    const body = JSON.stringify({ operation: 'upload', key: 'bench/some-job/main', projectId: '42' });
    results[`presign_${backend}`] = await load(svc.url + '/v1/presign', {
      method: 'POST', body, headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    });
  }
} finally {
  hello.child.kill();
  svc.child.kill();
  await rm(dir, { recursive: true, force: true });
}

const helloRps = (results.hello as { rps: number }).rps;
const summary = {
  date: new Date().toISOString(),
  node: process.version,
  cpus: cpus().length,
  connections,
  duration,
  logLevel: values['log-level'],
  results,
  ratios: Object.fromEntries(Object.entries(results).filter(([k]) => k !== 'hello').map(([k, v]) => [k, Math.round(((v as { rps: number }).rps / helloRps) * 1000) / 1000])),
};
const out = join(ROOT, 'bench/results', `presign-${summary.date.slice(0, 19).replace(/:/g, '')}.json`);
await writeFile(out, JSON.stringify(summary, null, 2) + '\n');
process.stdout.write(JSON.stringify(summary, null, 2) + `\nwritten to ${out}\n`);
