/**
 * The blocks of a large zip entry compressed by worker threads (the pigz scheme of compress.ts:
 * deflate blocks primed with the previous block's last 32 KiB and ended with a sync flush, the last
 * one finished; zstd blocks as separate frames). The input block and a pooled output buffer are
 * transferred to the worker (block-worker.ts) and back; the worker drives a zlib handle (or a
 * zstd-napi context) straight into the output buffer. With the native deflate addon, deflate blocks
 * go to native-stream.ts instead (no worker threads). Why: node:zlib's asynchronous one-shot `deflateRaw` returns a
 * fresh buffer per 1 MiB block, and those piled up to ~64 MB of resident garbage while the bench's
 * 100 MiB files were compressed (zip creation peaked at ~208 MB, ~150 MB the rest of the time).
 *
 * Memory: (parallel + 2) output buffers of 1 MiB + 64 KiB, one isolate per worker; the input blocks
 * are the writer's own pool.
 */
import type { Worker } from 'node:worker_threads';
import { METHOD_DEFLATE, METHOD_ZSTD, type ZipMethod } from './compress.ts';
import { startWorker } from './worker-start.ts';

/** What the worker (block-worker.ts) is started with. */
export interface BlockWorkerData {
  method: ZipMethod;
  level: number;
}

/** One block to compress; the three buffers are transferred to the worker and back. */
export interface BlockJob {
  id: number;
  block: ArrayBuffer;
  len: number;
  out: ArrayBuffer;
  dict?: ArrayBuffer;
  dictLen: number;
  last: boolean;
}

export interface BlockReply {
  id: number;
  block: ArrayBuffer;
  out: ArrayBuffer;
  dict?: ArrayBuffer;
  n?: number;
  error?: string;
}

export interface CompressedBlock {
  /** The compressed bytes (valid until release()). */
  data: Buffer;
  /** The input block, usable again (the one passed in was transferred away). */
  block: Buffer;
  release(): void;
}

/** Deflate primes each block with the previous block's last 32 KiB. */
const DICT = 32 * 1024;

export class BlockCompressor {
  private readonly method: ZipMethod;
  private readonly level: number;
  private readonly parallel: number;
  private readonly outSize: number;
  private readonly workers: Worker[] = [];
  private readonly idle: Worker[] = [];
  private readonly outs: ArrayBuffer[] = [];
  private readonly dicts: ArrayBuffer[] = [];
  /** The tail of the entry's previous block (deflate), copied before that block went to a worker. */
  private prev: { dict: ArrayBuffer; len: number } | null = null;
  private readonly waiting: Array<() => void> = [];
  private readonly pending = new Map<number, { resolve: (r: BlockReply) => void; reject: (e: Error) => void }>();
  private nextId = 0;

  constructor(method: ZipMethod, level: number, parallel: number, blockSize: number) {
    this.method = method;
    this.level = level;
    this.parallel = Math.max(1, parallel);
    this.outSize = blockSize + (64 << 10);
  }

  private async slot(): Promise<{ worker: Worker; out: ArrayBuffer }> {
    for (;;) {
      let worker = this.idle.pop();
      if (!worker && this.workers.length < this.parallel) {
        const workerData: BlockWorkerData = { level: this.level, method: this.method };
        const w = startWorker(new URL('./block-worker.ts', import.meta.url), workerData);
        w.on('message', (r: BlockReply) => {
          const p = this.pending.get(r.id);
          this.pending.delete(r.id);
          this.idle.push(w);
          this.waiting.shift()?.();
          p?.resolve(r);
        });
        w.on('error', (err) => {
          for (const p of this.pending.values()) p.reject(err);
          this.pending.clear();
        });
        this.workers.push(w);
        worker = w;
      }
      if (worker) return { worker, out: this.outs.pop() ?? new ArrayBuffer(this.outSize) };
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
  }

  /** Before the first block of an entry. */
  begin(): void {
    if (this.prev) this.dicts.push(this.prev.dict);
    this.prev = null;
  }

  /**
   * Compresses the entry's next block (a view of a whole ArrayBuffer of its own: it is transferred
   * to a worker; use the returned `block` afterwards). Call in order: deflate primes each block with
   * the tail of the one before.
   */
  compress(block: Buffer, last: boolean): Promise<CompressedBlock> {
    if (this.method !== METHOD_DEFLATE && this.method !== METHOD_ZSTD) throw new Error(`method ${this.method} is not compressed in blocks`);
    if (block.byteOffset !== 0) throw new Error('BlockCompressor: the block must start its ArrayBuffer');
    // synchronously, before the block is transferred: its tail primes the next block
    const dict = this.prev;
    if (this.method === METHOD_DEFLATE && !last) {
      const tail = new Uint8Array(this.dicts.pop() ?? new ArrayBuffer(DICT));
      const len = Math.min(DICT, block.length);
      tail.set(block.subarray(block.length - len));
      this.prev = { dict: tail.buffer as ArrayBuffer, len };
    } else {
      this.prev = null;
    }
    return this.send(block, dict, last);
  }

  private async send(block: Buffer, dict: { dict: ArrayBuffer; len: number } | null, last: boolean): Promise<CompressedBlock> {
    const { worker, out } = await this.slot();
    const id = this.nextId++;
    const reply = await new Promise<BlockReply>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      const ab = block.buffer as ArrayBuffer;
      const transfer = dict ? [ab, out, dict.dict] : [ab, out];
      const job: BlockJob = { id, block: ab, len: block.length, out, dict: dict?.dict, dictLen: dict?.len ?? 0, last };
      worker.postMessage(job, transfer);
    });
    if (reply.dict) this.dicts.push(reply.dict);
    const back = Buffer.from(reply.block);
    if (reply.error !== undefined) {
      this.outs.push(reply.out);
      throw new Error(`compressing a block failed: ${reply.error}`);
    }
    return {
      data: Buffer.from(reply.out, 0, reply.n),
      block: back,
      release: () => void this.outs.push(reply.out),
    };
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers.length = 0;
    this.idle.length = 0;
  }
}
