/**
 * Reads a JSON request body with a size cap, from the socket's IncomingMessage directly (the web-stream
 * path costs more than the presign itself); Content-Length is trusted only to refuse
 * early, and bytes are counted either way, so a chunked body cannot pass the cap.
 */
import type { IncomingMessage } from 'node:http';
import { CacheGateError } from '../errors.ts';

const tooBig = (max: number): CacheGateError => new CacheGateError('payload_too_large', 413, `request body is larger than ${max} bytes`);

export async function readJsonBody(incoming: IncomingMessage, max: number): Promise<unknown> {
  const declared = incoming.headers['content-length'];
  if (declared !== undefined && Number(declared) > max) throw tooBig(max);
  const text = await readText(incoming, max);
  try {
    return JSON.parse(text);
  } catch {
    throw new CacheGateError('invalid_request', 400, 'body: not valid JSON');
  }
}

/** Events rather than an async iterator: the iterator's setup costs more than a small body's read. */
function readText(incoming: IncomingMessage, max: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > max) {
        cleanup();
        incoming.pause();
        reject(tooBig(max));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(chunks.length === 1 ? chunks[0].toString('utf8') : Buffer.concat(chunks, size).toString('utf8'));
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(new CacheGateError('invalid_request', 400, `body: could not be read (${err.message})`));
    };
    const onClose = (): void => onError(new Error('connection closed'));
    const cleanup = (): void => {
      incoming.off('data', onData);
      incoming.off('end', onEnd);
      incoming.off('error', onError);
      incoming.off('close', onClose);
    };
    incoming.on('data', onData);
    incoming.on('end', onEnd);
    incoming.on('error', onError);
    incoming.on('close', onClose);
  });
}
