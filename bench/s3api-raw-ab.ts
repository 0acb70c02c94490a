/**
 * A/B of the proxied GET's raw-socket backend reader (adapters/s3/raw-http.ts) against node:http
 * (CACHEGATE_RAW_HTTP=0), interleaved: `--pairs N` runs of bench/s3api.ts per arm, alternating
 * A B A B…, shared cores, door on RGW and RGW direct only. Prints each run and the medians of the
 * door's CPU ms per GET and of the ratio to RGW direct.
 *
 *   ./node_modules/.bin/node bench/s3api-raw-ab.ts --pairs 3
 *   BENCH_METHODS=GET,PUT BENCH_SECONDS=5 … (passed on to bench/s3api.ts)
 */
import { spawnSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { resolve } from 'node:path';

const pairs = Number(process.argv[process.argv.indexOf('--pairs') + 1] || 3);
const ROOT = resolve(import.meta.dirname, '..');
const methods = (process.env.BENCH_METHODS ?? 'GET').split(',');
const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
type Best = Record<string, { reqPerSec: number; cpuMsPerRequest: { door?: number } }>;
const runs: Array<{ arm: string; load: number[]; ratio: Record<string, number>; doorMs: Record<string, number> }> = [];
for (let i = 0; i < pairs * 2; i++) {
  const arm = i % 2 === 0 ? 'nodeHttp' : 'raw';
  const r = spawnSync(process.execPath, ['bench/s3api.ts'], {
    cwd: ROOT, encoding: 'utf8', maxBuffer: 64 << 20,
    env: { BENCH_METHODS: 'GET', BENCH_LAYOUTS: 'shared', BENCH_ROUNDS: '2', BENCH_SECONDS: '4', BENCH_TARGETS: 'rgwDirect,frontDoor', ...process.env, CACHEGATE_RAW_HTTP: arm === 'raw' ? '1' : '0' },
  });
  if (r.status !== 0) throw new Error(`bench/s3api.ts failed: ${r.stderr.slice(-3000)}`);
  const out = JSON.parse(r.stdout) as { best: { shared: Best }; loadAverageAtStart: number[] };
  const ratio: Record<string, number> = {};
  const doorMs: Record<string, number> = {};
  for (const m of methods) {
    const door = out.best.shared[`${m} frontDoor`];
    ratio[m] = Math.round((door.reqPerSec / out.best.shared[`${m} rgwDirect`].reqPerSec) * 100) / 100;
    doorMs[m] = door.cpuMsPerRequest.door ?? NaN;
  }
  runs.push({ arm, load: out.loadAverageAtStart, ratio, doorMs });
  process.stderr.write(JSON.stringify(runs.at(-1)) + '\n');
}
const summary: Record<string, unknown> = {};
for (const arm of ['nodeHttp', 'raw']) {
  const mine = runs.filter((r) => r.arm === arm);
  summary[arm] = Object.fromEntries(methods.map((m) => [m, { doorMsPerRequest: median(mine.map((r) => r.doorMs[m])), ratio: median(mine.map((r) => r.ratio[m])) }]));
}
process.stdout.write(JSON.stringify({ bench: 's3api-raw-ab', date: new Date().toISOString(), pairs, loadAverageAtEnd: loadavg().map((x) => Math.round(x * 100) / 100), runs, medians: summary }, null, 2) + '\n');
