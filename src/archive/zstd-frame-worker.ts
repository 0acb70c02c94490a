/**
 * The thread side of zstd-frames.ts: compresses each segment it is sent into one zstd frame (with
 * its checksum) straight into the output buffer sent with it, and sends both buffers back.
 * zstd-napi's `ZSTD_compress2`; node:zlib's `zstdCompressSync` when zstd-napi cannot load.
 * The level comes with each job, not at start: the threads are started before the archive's
 * level is known (zstd-frames.ts `prestartFrameWorkers`). node:zlib is loaded only for the
 * fallback (its modules are a share of a worker's start-up).
 */
import { createRequire } from 'node:module';
import { parentPort } from 'node:worker_threads';
import type { CCtx } from 'zstd-napi/binding.js';

interface Job {
  id: number;
  seg: ArrayBuffer;
  len: number;
  out: ArrayBuffer;
  level: number;
}

const port = parentPort!;
const require = createRequire(import.meta.url);
let binding: typeof import('zstd-napi/binding.js') | null = null;
try {
  binding = require('zstd-napi/binding') as typeof import('zstd-napi/binding.js');
} catch {
  binding = null;
}
let cctx: CCtx | null = null;
let cctxLevel = NaN;

function compress(seg: Uint8Array, out: ArrayBuffer, level: number): { out: ArrayBuffer; n: number } {
  if (binding !== null) {
    if (cctx === null || cctxLevel !== level) {
      cctx = new binding.CCtx();
      cctx.setParameter(binding.CParameter.compressionLevel, level);
      cctx.setParameter(binding.CParameter.checksumFlag, 1);
      cctxLevel = level;
    }
    return { out, n: cctx.compress2(new Uint8Array(out), seg) };
  }
  const zlib = require('node:zlib') as typeof import('node:zlib');
  const c = zlib.constants;
  const r = zlib.zstdCompressSync(seg, { params: { [c.ZSTD_c_compressionLevel]: level, [c.ZSTD_c_checksumFlag]: 1 } });
  const dst = r.length > out.byteLength ? new ArrayBuffer(r.length) : out;
  new Uint8Array(dst).set(r);
  return { out: dst, n: r.length };
}

port.on('message', (job: Job) => {
  try {
    const { out, n } = compress(new Uint8Array(job.seg, 0, job.len), job.out, job.level);
    port.postMessage({ id: job.id, seg: job.seg, out, n }, [job.seg, out]);
  } catch (err) {
    port.postMessage({ id: job.id, seg: job.seg, out: job.out, error: err instanceof Error ? err.message : String(err) }, [job.seg, job.out]);
  }
});
