/**
 * The thread side of entry-workers.ts: decodes one large zip entry per message (see there), all
 * synchronously, into one reused 1 MiB buffer.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import zlib from 'node:zlib';
import { parentPort } from 'node:worker_threads';
import type { DCtx } from 'zstd-napi/binding.js';
import type { EntryJob, EntryResult } from './entry-workers.ts';
import { StreamingRawInflater } from './raw-inflate.ts';

const BUF = 1 << 20;
const inBuf = Buffer.allocUnsafe(BUF);
const outBuf = Buffer.allocUnsafe(BUF);
let inflater: StreamingRawInflater | null = null;
let dctx: DCtx | null = null;

function readAt(fd: number, len: number, pos: number): number {
  let off = 0;
  while (off < len) {
    const n = fs.readSync(fd, inBuf, off, len - off, pos + off);
    if (n === 0) throw new Error('archive is truncated (unexpected end of file)');
    off += n;
  }
  return len;
}

function run(job: EntryJob): EntryResult {
  const { archiveFd, start, csize, method, size, outFd } = job;
  let crc = 0;
  let produced = 0;
  const emit = (buf: Buffer, n: number): void => {
    if (produced + n > size) throw new Error(`more data than the ${size} bytes announced`);
    crc = zlib.crc32(buf.subarray(0, n), crc);
    if (outFd >= 0) {
      let off = 0;
      while (off < n) off += fs.writeSync(outFd, buf, off, n - off, produced + off);
    }
    produced += n;
  };
  let pos = 0;
  if (method === 0) {
    while (pos < csize) {
      const n = readAt(archiveFd, Math.min(BUF, csize - pos), start + pos);
      pos += n;
      emit(inBuf, n);
    }
  } else if (method === 8) {
    inflater ??= new StreamingRawInflater();
    inflater.reset();
    while (pos < csize) {
      const n = readAt(archiveFd, Math.min(BUF, csize - pos), start + pos);
      pos += n;
      inflater.write(inBuf.subarray(0, n), pos === csize, outBuf, (k) => emit(outBuf, k));
    }
  } else if (method === 93) {
    if (dctx === null) {
      const binding = createRequire(import.meta.url)('zstd-napi/binding') as typeof import('zstd-napi/binding.js');
      dctx = new binding.DCtx();
    }
    dctx.reset(1);
    let rest = 0;
    while (pos < csize) {
      const n = readAt(archiveFd, Math.min(BUF, csize - pos), start + pos);
      pos += n;
      let src = inBuf.subarray(0, n);
      for (;;) {
        const [r, p, c] = dctx.decompressStream(outBuf, src);
        rest = r;
        if (p > 0) emit(outBuf, p);
        src = src.subarray(c);
        if (src.length === 0 && p < BUF) break;
        if (p === 0 && c === 0) throw new Error('the zstd data does not decode');
      }
    }
    if (rest !== 0) throw new Error('the zstd data ends inside a frame');
  } else {
    throw new Error(`unsupported compression method ${method}`);
  }
  return { crc, size: produced };
}

parentPort!.on('message', (job: EntryJob & { id: number }) => {
  try {
    parentPort!.postMessage({ id: job.id, ...run(job) });
  } catch (err) {
    parentPort!.postMessage({ id: job.id, error: err instanceof Error ? err.message : String(err) });
  }
});
