/**
 * The thread side of zstd-frames.ts: compresses each segment it is sent into one zstd frame (with
 * its checksum) straight into the output buffer sent with it, and sends both buffers back.
 * zstd-napi's `ZSTD_compress2`; node:zlib's `zstdCompressSync` when zstd-napi cannot load.
 */
import { createRequire } from 'node:module';
import zlib from 'node:zlib';
import { parentPort, workerData } from 'node:worker_threads';
import type { CCtx } from 'zstd-napi/binding.js';

interface Job {
  id: number;
  seg: ArrayBuffer;
  len: number;
  out: ArrayBuffer;
}

const port = parentPort!;
const { level } = workerData as { level: number };
let cctx: CCtx | null = null;
try {
  const b = createRequire(import.meta.url)('zstd-napi/binding') as typeof import('zstd-napi/binding.js');
  cctx = new b.CCtx();
  cctx.setParameter(b.CParameter.compressionLevel, level);
  cctx.setParameter(b.CParameter.checksumFlag, 1);
} catch {
  cctx = null;
}

function compress(seg: Uint8Array, out: ArrayBuffer): { out: ArrayBuffer; n: number } {
  if (cctx !== null) return { out, n: cctx.compress2(new Uint8Array(out), seg) };
  const c = zlib.constants;
  const r = zlib.zstdCompressSync(seg, { params: { [c.ZSTD_c_compressionLevel]: level, [c.ZSTD_c_checksumFlag]: 1 } });
  const dst = r.length > out.byteLength ? new ArrayBuffer(r.length) : out;
  new Uint8Array(dst).set(r);
  return { out: dst, n: r.length };
}

port.on('message', (job: Job) => {
  try {
    const { out, n } = compress(new Uint8Array(job.seg, 0, job.len), job.out);
    port.postMessage({ id: job.id, seg: job.seg, out, n }, [job.seg, out]);
  } catch (err) {
    port.postMessage({ id: job.id, seg: job.seg, out: job.out, error: err instanceof Error ? err.message : String(err) }, [job.seg, job.out]);
  }
});
