/**
 * bench/owners-chown-calls — the cost of one chown call as the extractor makes them (docs/archive.md,
 * "Session 8: owners"): 42,000 fs.fchownSync on a descriptor and 42,000 fs.lchownSync of a name in
 * a directory handle (/proc/self/fd/<dir>/<name>), best of 5, on /dev/shm. Run as root.
 *
 *   node_modules/node/bin/node bench/owners-chown-calls.ts
 */
import fs from 'node:fs';
import os from 'node:os';

const dir = '/dev/shm/owners-chown-calls';
const N = 42_000;

function best(f: () => void): number {
  let b = Infinity;
  for (let r = 0; r < 5; r++) {
    const t = process.hrtime.bigint();
    f();
    b = Math.min(b, Number(process.hrtime.bigint() - t) / 1e6);
  }
  return b;
}

fs.rmSync(dir, { recursive: true, force: true });
fs.mkdirSync(dir);
try {
  for (let i = 0; i < N; i++) fs.writeFileSync(`${dir}/f${i}`, 'x');
  const dirFd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  const fd = fs.openSync(`${dir}/f0`, 'r');
  const f = best(() => {
    for (let i = 0; i < N; i++) fs.fchownSync(fd, 1234, 5678);
  });
  const l = best(() => {
    for (let i = 0; i < N; i++) fs.lchownSync(`/proc/self/fd/${dirFd}/f${i}`, 1234, 5678);
  });
  console.log(`${N} fchownSync: ${f.toFixed(1)} ms; ${N} lchownSync of /proc/self/fd/<dir>/<name>: ${l.toFixed(1)} ms (best of 5); load ${os.loadavg()[0].toFixed(2)}`);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
