/**
 * tar.zst writing: a Writable that cuts its input into segments (4 MiB) and compresses each into
 * an independent zstd frame (with its checksum) on worker threads, then writes the frames in order
 * to `out`. A sequence of frames is one valid zstd stream (`zstd -d`, GNU tar, klauspost/compress
 * used by GitLab Runner, and our reader decode it).
 *
 * Every segment and output buffer is an ArrayBuffer transferred to a worker and back, never copied
 * or reallocated: at most `parallel + 2` of each, allocated once. The worker compresses with
 * zstd-napi's `ZSTD_compress2` straight into the output buffer (node:zlib's `zstdCompressSync`
 * when zstd-napi cannot load). Why: the previous version compressed on the libuv threadpool with
 * node:zlib's asynchronous `zstdCompress`, which returns a fresh buffer per frame (and concatenates
 * when a frame outgrows its chunk size): ~7 MB of allocations per frame of the bench's binaries,
 * up to ~64 MB of them resident before V8 collected. zstd-napi's own multi-threaded streams were
 * measured too and rejected: they busy-wait the calling thread (see docs/archive.md).
 *
 * The threads' code is zstd-frame-worker.ts (started through worker-start.ts). The helper starts
 * them while it selects the files (`prestartFrameWorkers`): a thread's start-up (its isolate,
 * Node's bootstrap, the module) took ~0.1–0.3 s after the selection, with nothing compressing.
 *
 * Memory: buffers (default parallel + 2) × (4 MiB in + 4 MiB out) + one zstd context and one
 * isolate per worker; the helper's memory budget chooses both (memory-budget.ts).
 */
import os from 'node:os';
import { Writable } from 'node:stream';
import type { Worker } from 'node:worker_threads';
import { startWorker } from './worker-start.ts';

export interface ZstdFramesOptions {
  /** Bytes of input per frame (default 4 MiB). */
  segment?: number;
  /** Worker threads (default: CPUs, 2..4; the helper passes memory-budget.ts's choice). */
  parallel?: number;
  /** Segments in the pool, and as many output buffers (default parallel + 2; at least parallel + 1). */
  buffers?: number;
}

interface Result {
  id: number;
  seg: ArrayBuffer;
  out: ArrayBuffer;
  n?: number;
  error?: string;
}

/** A pool of ArrayBuffers with waiting takers. */
class Pool {
  private readonly free: ArrayBuffer[] = [];
  private readonly waiters: Array<(b: ArrayBuffer) => void> = [];
  private made = 0;
  private readonly size: number;
  private readonly max: number;

  constructor(size: number, max: number) {
    this.size = size;
    this.max = max;
  }

  take(): ArrayBuffer | Promise<ArrayBuffer> {
    const b = this.free.pop();
    if (b) return b;
    if (this.made < this.max) {
      this.made++;
      return new ArrayBuffer(this.size);
    }
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  give(b: ArrayBuffer): void {
    const w = this.waiters.shift();
    if (w) w(b);
    else this.free.push(b);
  }
}

const WORKER_URL = new URL('./zstd-frame-worker.ts', import.meta.url);
/** Threads started ahead of the writer, not yet taken by one (unref'd: they hold no process open). */
const prestarted: Worker[] = [];

/**
 * Starts `n` frame threads now for the next ZstdFrameWriter to take, so that they start up while
 * the caller does other work (the archiver: selecting the files). Threads nobody takes are ended
 * by `releasePrestartedFrameWorkers()` (or die with the process: they are unref'd).
 */
export function prestartFrameWorkers(n: number): void {
  while (prestarted.length < n) {
    const worker = startWorker(WORKER_URL, null);
    worker.unref();
    // a thread that fails before it is taken is dropped; the writer starts its own
    worker.on('error', () => {
      const i = prestarted.indexOf(worker);
      if (i >= 0) prestarted.splice(i, 1);
    });
    prestarted.push(worker);
  }
}

/** How many prestarted threads wait to be taken. */
export function prestartedFrameWorkers(): number {
  return prestarted.length;
}

/** Ends the threads prestartFrameWorkers started that no writer took. */
export async function releasePrestartedFrameWorkers(): Promise<void> {
  await Promise.all(prestarted.splice(0).map((w) => w.terminate()));
}

export class ZstdFrameWriter extends Writable {
  private readonly out: Writable;
  private readonly level: number;
  private readonly segSize: number;
  private readonly parallel: number;
  private readonly segs: Pool;
  private readonly outs: Pool;
  private readonly workers: Worker[] = [];
  private readonly idle: Worker[] = [];
  private readonly idleWaiters: Array<(w: Worker) => void> = [];
  private cur: Uint8Array | null = null;
  private used = 0;
  private submitted = 0;
  /** Frames submitted and not yet handed to `out`, in order; their results as they come. */
  private readonly order: number[] = [];
  private readonly results = new Map<number, Result>();
  private writing = 0;
  private settled: (() => void) | null = null;
  private failure: Error | null = null;

  constructor(out: Writable, level: number, opts: ZstdFramesOptions = {}) {
    super({ highWaterMark: 1 << 20 });
    this.out = out;
    this.level = level;
    this.segSize = opts.segment ?? 4 << 20;
    this.parallel = opts.parallel ?? Math.min(4, Math.max(2, os.availableParallelism()));
    // compressBound(segment) = segment + segment/256 + a little: one output buffer always fits a frame
    const outSize = this.segSize + (this.segSize >> 8) + (64 << 10);
    // one segment filling while `parallel` compress, plus one spare to overlap a frame's write
    const buffers = Math.max(this.parallel + 1, opts.buffers ?? this.parallel + 2);
    this.segs = new Pool(this.segSize, buffers);
    this.outs = new Pool(outSize, buffers);
    out.on('error', (err) => this.fail(err));
  }

  private fail(err: Error): void {
    this.failure ??= err;
    this.notify();
  }

  private notify(): void {
    const s = this.settled;
    this.settled = null;
    s?.();
  }

  private worker(): Worker | Promise<Worker> {
    const w = this.idle.pop();
    if (w) return w;
    if (this.workers.length < this.parallel) {
      const worker = prestarted.shift() ?? startWorker(WORKER_URL, null);
      worker.ref();
      worker.on('message', (r: Result) => this.done(worker, r));
      worker.on('error', (err) => this.fail(err));
      this.workers.push(worker);
      return worker;
    }
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private done(worker: Worker, r: Result): void {
    const next = this.idleWaiters.shift();
    if (next) next(worker);
    else this.idle.push(worker);
    this.segs.give(r.seg);
    this.results.set(r.id, r);
    // hand finished frames to `out` strictly in order
    while (this.order.length > 0 && this.results.has(this.order[0])) {
      const id = this.order.shift()!;
      const res = this.results.get(id)!;
      this.results.delete(id);
      if (res.error !== undefined) {
        this.outs.give(res.out);
        this.fail(new Error(`zstd compression failed: ${res.error}`));
        continue;
      }
      this.writing++;
      this.out.write(Buffer.from(res.out, 0, res.n), () => {
        this.writing--;
        this.outs.give(res.out);
        this.notify();
      });
    }
    this.notify();
  }

  private async submit(): Promise<void> {
    const seg = this.cur ? (this.cur.buffer as ArrayBuffer) : await this.segs.take();
    const len = this.used;
    this.cur = null;
    this.used = 0;
    const out = await this.outs.take();
    const worker = await this.worker();
    const id = this.submitted++;
    this.order.push(id);
    worker.postMessage({ id, seg, len, out, level: this.level }, [seg, out]);
  }

  private async take(chunk: Buffer): Promise<void> {
    let off = 0;
    while (off < chunk.length) {
      if (this.failure) throw this.failure;
      if (this.cur === null) this.cur = new Uint8Array(await this.segs.take());
      const n = Math.min(this.segSize - this.used, chunk.length - off);
      this.cur.set(chunk.subarray(off, off + n), this.used);
      this.used += n;
      off += n;
      if (this.used === this.segSize) await this.submit();
    }
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.take(chunk).then(() => cb(this.failure), cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    (async () => {
      if (this.used > 0 || this.submitted === 0) await this.submit(); // an empty input still makes one frame
      while ((this.order.length > 0 || this.writing > 0) && this.failure === null) await new Promise<void>((resolve) => (this.settled = resolve));
      if (this.failure) throw this.failure;
      await new Promise<void>((resolve, reject) => {
        this.out.once('error', reject);
        this.out.end(() => {
          this.out.off('error', reject);
          resolve();
        });
      });
    })().then(
      () => this.stop().then(() => cb(), cb),
      (err: Error) => this.stop().then(() => cb(err), () => cb(err)),
    );
  }

  private async stop(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers.length = 0;
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.stop().then(() => {
      if (err) this.out.destroy(err);
      cb(err);
    }, cb);
  }
}
