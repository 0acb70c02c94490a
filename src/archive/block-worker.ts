/**
 * The worker thread of block-workers.ts (loaded with `new Worker(new URL('./block-worker.ts', …))`;
 * Node strips the types): compresses one block of a large zip entry into the pooled output buffer
 * it is handed, and transfers both buffers back. Only the node:zlib path (no native addon) and
 * zipzstd come here.
 *
 * Deflate drives the zlib handle of a node:zlib stream (`_handle.writeSync`, `_writeState`: what
 * `deflateRawSync` uses inside) so that the output lands in the pooled buffer: node:zlib's public
 * one-shot API returns a fresh buffer per block, and those piled up to ~64 MB of resident garbage
 * (zip creation peaked at ~208 MB instead of ~150 MB, docs/archive.md). test/unit/zlib-internals
 * .test.ts fails if a Node upgrade removes what this relies on.
 */
import { parentPort, workerData } from 'node:worker_threads';
import zlib from 'node:zlib';
import { createRequire } from 'node:module';
import type { BlockJob, BlockReply, BlockWorkerData } from './block-workers.ts';

/** The private part of a node:zlib stream used here (pinned by test/unit/zlib-internals.test.ts). */
export interface ZlibInternals {
  _handle: {
    writeSync(flush: number, input: Uint8Array, inOff: number, inLen: number, out: Uint8Array, outOff: number, outLen: number): void;
    onerror: (message: string, errno: number) => void;
  };
  /** [availOutAfter, availInAfter] of the last writeSync. */
  _writeState: Uint32Array;
}

interface ZstdBinding {
  CCtx: new () => { setParameter(p: number, v: number): void; compress2(out: Uint8Array, input: Uint8Array): number };
  CParameter: { compressionLevel: number };
}

const data = workerData as BlockWorkerData;
const METHOD_DEFLATE = 8;
let cctx: InstanceType<ZstdBinding['CCtx']> | null = null;

/** Raw deflate of `input` into `out` with an optional dictionary; the bytes written. */
export function deflateInto(level: number, input: Uint8Array, out: Uint8Array, dict: Uint8Array | undefined, last: boolean): number {
  // chunkSize 64: the stream's own output buffer is never used (writeSync goes to out)
  const d = zlib.createDeflateRaw({ level, dictionary: dict, chunkSize: 64 }) as unknown as zlib.DeflateRaw & ZlibInternals;
  let error: string | null = null;
  d._handle.onerror = (message) => {
    error = message;
  };
  d._handle.writeSync(last ? zlib.constants.Z_FINISH : zlib.constants.Z_SYNC_FLUSH, input, 0, input.length, out, 0, out.length);
  const availOut = d._writeState[0];
  d.close();
  if (error !== null) throw new Error(error);
  if (availOut === 0) throw new Error('compressed block larger than its buffer');
  return out.length - availOut;
}

function zstd(input: Uint8Array, out: Uint8Array): number {
  if (cctx === null) {
    const b = createRequire(import.meta.url)('zstd-napi/binding') as ZstdBinding;
    cctx = new b.CCtx();
    cctx.setParameter(b.CParameter.compressionLevel, data.level);
  }
  return cctx.compress2(out, input);
}

parentPort?.on('message', (job: BlockJob) => {
  const transfer = job.dict ? [job.block, job.out, job.dict] : [job.block, job.out];
  const reply: BlockReply = { id: job.id, block: job.block, out: job.out, dict: job.dict };
  try {
    const input = new Uint8Array(job.block, 0, job.len);
    const out = new Uint8Array(job.out);
    const dict = job.dict ? new Uint8Array(job.dict, 0, job.dictLen) : undefined;
    reply.n = data.method === METHOD_DEFLATE ? deflateInto(data.level, input, out, dict, job.last) : zstd(input, out);
  } catch (err) {
    reply.error = err instanceof Error ? err.message : String(err);
  }
  parentPort!.postMessage(reply, transfer);
});
