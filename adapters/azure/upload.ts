/**
 * Proxy-mode upload to Azure as Put Block × n then Put Block List, every request under one abort
 * signal. The SDK's uploadStream() does the same but does not pass its abortSignal on to Put Block,
 * so a server that accepts a block and never answers would hold the upload (and its memory) forever.
 *
 * Memory bound: (concurrency + 1) × blockSize (blocks in flight, plus the one being filled).
 */
import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { BlockBlobClient, BlockBlobCommitBlockListOptions, BlockBlobCommitBlockListResponse } from '@azure/storage-blob';

export interface BlockUploadOptions {
  blockSize: number;
  concurrency: number;
  abortSignal: AbortSignal;
  /** Bytes the server has confirmed so far (after each block). */
  onProgress: (confirmedBytes: number) => void;
  commit: Omit<BlockBlobCommitBlockListOptions, 'abortSignal'>;
}

export async function uploadBlocks(blob: BlockBlobClient, body: Readable, opts: BlockUploadOptions): Promise<BlockBlobCommitBlockListResponse> {
  const { blockSize, concurrency, abortSignal } = opts;
  const prefix = randomUUID();
  const ids: string[] = [];
  const inflight = new Set<Promise<void>>();
  let confirmed = 0;

  const stage = (block: Buffer): void => {
    // Block ids: base64, all of the same length within a blob.
    const id = Buffer.from(`${prefix}-${String(ids.length).padStart(6, '0')}`).toString('base64');
    ids.push(id);
    const p: Promise<void> = blob.stageBlock(id, block, block.length, { abortSignal }).then(() => {
      confirmed += block.length;
      opts.onProgress(confirmed);
    });
    const tracked = p.finally(() => inflight.delete(tracked));
    tracked.catch(() => undefined); // awaited below; a failure while another is awaited is not unhandled
    inflight.add(tracked);
  };

  let chunks: Buffer[] = [];
  let filled = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    chunks.push(chunk);
    filled += chunk.length;
    if (filled < blockSize) continue;
    let all = Buffer.concat(chunks, filled);
    while (all.length >= blockSize) {
      while (inflight.size >= concurrency) await Promise.race(inflight);
      stage(all.subarray(0, blockSize));
      all = all.subarray(blockSize);
    }
    chunks = all.length > 0 ? [all] : [];
    filled = all.length;
  }
  if (filled > 0) stage(Buffer.concat(chunks, filled));
  await Promise.all(inflight);
  return blob.commitBlockList(ids, { ...opts.commit, abortSignal });
}
