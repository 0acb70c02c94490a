/**
 * bench/download-memory — one download() in this process (no verification, no extraction): time,
 * peak RSS, and at that peak the anonymous pages and glibc's brk heap from /proc/self/smaps.
 *
 *   node --semi-space-growth-factor=1 bench/download-memory.ts URL [concurrency=16] [chunkMiB=16]
 *
 * URL: any presigned GET, e.g. from a local `cachegate serve` (POST /v1/presign) after uploading a
 * few hundred MB. Run it the way the helper runs (MALLOC_MMAP_THRESHOLD_=65536, as bin/cachegate.js
 * sets for the helper commands) and without, interleaved; docs/transfer.md "Memory bound".
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { download } from '../src/transfer/index.ts';

const [url, conc = '16', chunk = '16'] = process.argv.slice(2);
if (!url) throw new Error('usage: bench/download-memory.ts URL [concurrency] [chunkMiB]');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cg-bench-download-memory-'));
let peak = 0;
let smaps = '';
const timer = setInterval(() => {
  const rss = process.memoryUsage().rss;
  if (rss > peak + (1 << 20)) {
    peak = rss;
    smaps = fs.readFileSync('/proc/self/smaps', 'utf8');
  }
}, 10);
const t0 = performance.now();
try {
  const r = await download({ file: path.join(dir, 'cache.zip'), url, concurrency: Number(conc), chunkSize: Number(chunk) << 20, metadataFile: false });
  const seconds = (performance.now() - t0) / 1000;
  clearInterval(timer);
  let anon = 0;
  let brk = 0;
  let mapping = '';
  for (const line of smaps.split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) mapping = head[1];
    const m = /^Anonymous:\s+(\d+) kB/.exec(line);
    if (m) {
      anon += Number(m[1]);
      if (mapping === '[heap]') brk += Number(m[1]);
    }
  }
  const mb = (kB: number): string => (kB / 1024).toFixed(0);
  console.log(JSON.stringify({ status: r.status, parts: r.status === 'downloaded' ? r.parts : 0, seconds: Number(seconds.toFixed(2)), peakMB: mb(peak / 1024), anonMB: mb(anon), brkMB: mb(brk), load1: os.loadavg()[0] }));
} finally {
  clearInterval(timer);
  fs.rmSync(dir, { recursive: true, force: true });
}
