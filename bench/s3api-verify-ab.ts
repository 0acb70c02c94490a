/**
 * bench/s3api-verify.ts for several versions of the code, alternating, so that a shared machine's
 * load falls on all of them alike: each round runs every arm once (a fresh process each), and the
 * medians over the rounds are printed with the load average seen before each round.
 *
 *   ./node_modules/.bin/node bench/s3api-verify-ab.ts [--rounds 5] ARM...
 *
 * An ARM is `worktree` (this checkout), `worktree:pure` (this checkout with CACHEGATE_NATIVE_SIGV4=0:
 * node:crypto instead of the native addon) or a git revision (its src/ and bench/, extracted into a
 * temporary directory next to this checkout's node_modules and native/).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..');
const args = process.argv.slice(2);
let rounds = 5;
const arms: string[] = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--rounds') rounds = Number(args[++i]);
  else arms.push(args[i]);
}
if (arms.length === 0 || !(rounds >= 1)) {
  process.stderr.write('usage: bench/s3api-verify-ab.ts [--rounds N] worktree|worktree:pure|<git revision>...\n');
  process.exit(2);
}

const temps: string[] = [];
function checkout(rev: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'cg-verify-ab-'));
  temps.push(dir);
  execFileSync('sh', ['-c', `git -C "${ROOT}" archive "${rev}" src bench | tar -x -C "${dir}"`]);
  for (const d of ['node_modules', 'native', 'package.json', 'adapters']) symlinkSync(join(ROOT, d), join(dir, d));
  return dir;
}
const where = new Map(arms.map((a) => [a, a.startsWith('worktree') ? ROOT : checkout(a)]));

const results = new Map<string, { presigned: number[]; headerSigned: number[] }>(arms.map((a) => [a, { presigned: [], headerSigned: [] }]));
const loads: number[] = [];
try {
  for (let r = 0; r < rounds; r++) {
    loads.push(Math.round(loadavg()[0] * 100) / 100);
    for (const arm of arms) {
      const env = { ...process.env, ...(arm === 'worktree:pure' ? { CACHEGATE_NATIVE_SIGV4: '0' } : {}) };
      const run = spawnSync(process.execPath, ['bench/s3api-verify.ts'], { cwd: where.get(arm), env, encoding: 'utf8' });
      if (run.status !== 0) throw new Error(`${arm}: ${run.stderr}`);
      const { microseconds } = JSON.parse(run.stdout) as { microseconds: { presigned: number; headerSigned: number } };
      results.get(arm)!.presigned.push(microseconds.presigned);
      results.get(arm)!.headerSigned.push(microseconds.headerSigned);
    }
  }
} finally {
  for (const t of temps) rmSync(t, { recursive: true, force: true });
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const out = Object.fromEntries([...results].map(([arm, r]) => [arm, { presigned: median(r.presigned), headerSigned: median(r.headerSigned), runs: r }]));
process.stdout.write(JSON.stringify({ bench: 's3api-verify-ab', date: new Date().toISOString(), rounds, loadAverageBeforeEachRound: loads, microsecondsMedian: out }, null, 2) + '\n');
