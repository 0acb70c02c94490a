/**
 * bench/owners-cost — what restoring owners costs an extraction (docs/archive.md, "Session 8:
 * owners"): `cachegate cache-extractor` on this checkout's node_modules (the npm tree, ~42k
 * entries) as zip and tar.zst, with owners restored (default) and with CACHE_RESTORE_OWNERS=0,
 * interleaved A B, B A, …; medians of wall time and of CPU time (user + system, /usr/bin/time:
 * less disturbed than wall time when others load the machine). Run as root to measure the chown calls that are
 * made (as root every entry is chowned; otherwise only those that can succeed are).
 *
 *   node_modules/node/bin/node bench/owners-cost.ts [--reps N] [--dir DIR] [--formats zip,tarzstd]
 *
 * DIR (default /dev/shm/owners-cost) holds the archives and one extracted tree at a time; removed
 * at the end.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { createArchiveFile, selectFiles } from '../src/archive/index.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const { values } = parseArgs({ options: { reps: { type: 'string', default: '5' }, dir: { type: 'string', default: '/dev/shm/owners-cost' }, formats: { type: 'string', default: 'zip,tarzstd' } } });
const reps = Number(values.reps);
const dir = values.dir!;
const node = path.join(ROOT, 'node_modules/node/bin/node');
const cli = path.join(ROOT, 'bin/cachegate.js');

interface Run {
  wall: number;
  cpu: number;
}

function extractOnce(archive: string, restore: boolean): Run {
  const dest = path.join(dir, 'out');
  fs.rmSync(dest, { recursive: true, force: true });
  fs.mkdirSync(dest);
  spawnSync('sync');
  const r = spawnSync('/usr/bin/time', ['-f', 'TIME %e %U %S', node, cli, 'cache-extractor', '--file', archive], { cwd: dest, env: { ...process.env, CACHE_RESTORE_OWNERS: restore ? '1' : '0' }, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`cache-extractor failed: ${r.stderr}`);
  const [wall, user, sys] = /TIME (\S+) (\S+) (\S+)/.exec(r.stderr)!.slice(1).map(Number);
  return { wall, cpu: user + sys };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

fs.mkdirSync(dir, { recursive: true });
try {
  const sel = await selectFiles({ cwd: ROOT, paths: ['node_modules'] });
  console.log(`npm tree: ${sel.entries.length} entries; euid ${process.geteuid?.()}; load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  for (const format of values.formats!.split(',') as Array<'zip' | 'tarzstd'>) {
    const archive = path.join(dir, format === 'zip' ? 'a.zip' : 'a.tar.zst');
    await createArchiveFile(sel.entries, archive, format, 'fast');
    const on: Run[] = [];
    const off: Run[] = [];
    for (let i = 0; i < reps; i++) {
      const order = i % 2 === 0 ? [true, false] : [false, true];
      for (const restore of order) (restore ? on : off).push(extractOnce(archive, restore));
    }
    for (const k of ['wall', 'cpu'] as const) {
      const a = on.map((r) => r[k]);
      const b = off.map((r) => r[k]);
      console.log(`${format} ${k}: owners restored ${median(a).toFixed(2)} s, CACHE_RESTORE_OWNERS=0 ${median(b).toFixed(2)} s (medians of ${reps}), difference ${(median(a) - median(b)).toFixed(2)} s; on [${a.map((x) => x.toFixed(2)).join(' ')}] off [${b.map((x) => x.toFixed(2)).join(' ')}]`);
    }
  }
  console.log(`load after: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
