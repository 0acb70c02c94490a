/**
 * A raw-deflate decoder driven synchronously, chunk by chunk, into the caller's own output buffer,
 * for the large-entry workers (entry-worker.ts). node:zlib has no public synchronous streaming
 * inflate: `inflateRawSync` needs the whole input, and the stream API returns a fresh buffer per
 * output chunk. This uses the zlib handle of one `createInflateRaw()` stream (`_handle.writeSync`,
 * `_handle.reset`, `_writeState`: what `inflateRawSync` does inside). Why a private API: large
 * entries as node:zlib streams made V8 run a mark-compact every 50–100 ms on their fresh 1 MiB
 * buffers and took 1.45 s per 100 MiB entry beside small files against 0.4 s alone (docs/archive.md,
 * "Extraction"). test/unit/archive-raw-inflate.test.ts pins the internals this needs, so a Node
 * upgrade that changes them fails there, not in a user's job.
 */
import zlib from 'node:zlib';

interface ZlibHandle {
  writeSync(flush: number, input: Uint8Array, inOff: number, inLen: number, out: Uint8Array, outOff: number, outLen: number): void;
  reset(): void;
  onerror: (message: string, errno: number) => void;
}

const { Z_NO_FLUSH, Z_FINISH } = zlib.constants;

export class StreamingRawInflater {
  private readonly handle: ZlibHandle;
  /** [avail_out, avail_in] after each writeSync. */
  private readonly state: Uint32Array;
  private error: string | null = null;

  constructor() {
    const stream = zlib.createInflateRaw() as unknown as { _handle?: ZlibHandle; _writeState?: Uint32Array };
    if (typeof stream._handle?.writeSync !== 'function' || typeof stream._handle.reset !== 'function' || !(stream._writeState instanceof Uint32Array)) {
      throw new Error(`node:zlib internals changed in Node ${process.version} (no _handle.writeSync/_writeState): large zip entries cannot be inflated`);
    }
    this.handle = stream._handle;
    this.state = stream._writeState;
    this.handle.onerror = (message) => {
      this.error = message;
    };
  }

  /** Starts a new deflate stream. */
  reset(): void {
    this.handle.reset();
    this.error = null;
  }

  /**
   * Inflates `input` (`last`: the end of the compressed stream) into `out`, calling `emit(n)` each
   * time `out` holds n new bytes (from offset 0; `out` is reused right after emit returns).
   */
  write(input: Uint8Array, last: boolean, out: Uint8Array, emit: (n: number) => void): void {
    let inOff = 0;
    let inLen = input.length;
    for (;;) {
      this.handle.writeSync(last ? Z_FINISH : Z_NO_FLUSH, input, inOff, inLen, out, 0, out.length);
      if (this.error !== null) throw new Error(this.error);
      const availOut = this.state[0];
      const availIn = this.state[1];
      if (out.length - availOut > 0) emit(out.length - availOut);
      inOff += inLen - availIn;
      inLen = availIn;
      if (availOut !== 0) return;
    }
  }
}
