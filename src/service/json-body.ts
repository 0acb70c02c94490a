/**
 * Reads a JSON request body with a size cap. On Node it reads the socket's IncomingMessage directly
 * (the web-stream path costs more than the presign itself); Content-Length is trusted only to refuse
 * early, and bytes are counted either way, so a chunked body cannot pass the cap.
 */
import type { IncomingMessage } from 'node:http';
import { CacheGateError } from '../errors.ts';

const tooBig = (max: number): CacheGateError => new CacheGateError('payload_too_large', 413, `request body is larger than ${max} bytes`);

export async function readJsonBody(incoming: IncomingMessage | undefined, fallback: () => Promise<ArrayBuffer>, max: number): Promise<unknown> {
  let text: string;
  if (incoming) {
    const declared = incoming.headers['content-length'];
    if (declared !== undefined && Number(declared) > max) throw tooBig(max);
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of incoming as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > max) throw tooBig(max);
      chunks.push(chunk);
    }
    text = chunks.length === 1 ? chunks[0].toString('utf8') : Buffer.concat(chunks, size).toString('utf8');
  } else {
    const buf = await fallback();
    if (buf.byteLength > max) throw tooBig(max);
    text = Buffer.from(buf).toString('utf8');
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new CacheGateError('invalid_request', 400, 'body: not valid JSON');
  }
}
