/**
 * The thread side of zstd-worker.ts: decodes the tar.zst file `workerData.path` into the 1 MiB
 * buffers the main thread lends it (transferred back and forth, never reallocated).
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { parentPort, workerData } from 'node:worker_threads';

const port = parentPort!;
const { DCtx } = createRequire(import.meta.url)('zstd-napi/binding') as typeof import('zstd-napi/binding.js');
const free: ArrayBuffer[] = [];
let wake: (() => void) | null = null;

port.on('message', (ab: ArrayBuffer) => {
  free.push(ab);
  const w = wake;
  wake = null;
  w?.();
});

async function take(): Promise<Buffer> {
  while (free.length === 0) await new Promise<void>((resolve) => (wake = resolve));
  return Buffer.from(free.shift()!);
}

function send(out: Buffer, len: number): void {
  const ab = out.buffer as ArrayBuffer;
  port.postMessage({ buf: ab, len }, [ab]);
}

async function decode(path: string): Promise<void> {
  let fd = -1;
  try {
    fd = fs.openSync(path, 'r');
    const input = Buffer.allocUnsafe(1 << 20);
    const d = new DCtx();
    let out = await take();
    let fill = 0;
    let pos = 0;
    let inFrame = false;
    let any = false;
    for (;;) {
      const n = fs.readSync(fd, input, 0, input.length, pos);
      if (n === 0) break;
      pos += n;
      any = true;
      let src = input.subarray(0, n);
      for (;;) {
        const [ret, p, c] = d.decompressStream(out.subarray(fill), src);
        fill += p;
        src = src.subarray(c);
        inFrame = ret !== 0;
        if (fill === out.length) {
          send(out, fill);
          out = await take();
          fill = 0;
          continue;
        }
        if (src.length === 0) break;
        if (p === 0 && c === 0) throw new Error('the zstd data does not decode');
      }
    }
    if (fill > 0) send(out, fill);
    if (!any) port.postMessage({ error: 'empty file' });
    else if (inFrame) port.postMessage({ error: 'unexpected end of data inside a zstd frame (truncated?)' });
    else port.postMessage({ end: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException | null)?.code;
    port.postMessage({ error: err instanceof Error ? err.message : String(err), io: typeof code === 'string' && code.startsWith('E') });
  } finally {
    if (fd >= 0) fs.closeSync(fd);
  }
}

await decode((workerData as { path: string }).path);
