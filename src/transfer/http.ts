/**
 * One HTTP request over node:http / node:https with a streamed body. fetch is not used: its request
 * bodies need duplex streams and its responses hide backpressure, and a transfer wants both.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Readable } from 'node:stream';
import { writeFileRange, type FileRange } from './file-body.ts';

export interface Agents {
  http: HttpAgent;
  https: HttpsAgent;
  destroy(): void;
}

/** Keep-alive agents for one transfer, at most `maxSockets` connections per host. */
export function createAgents(maxSockets: number): Agents {
  const opts = { keepAlive: true, maxSockets: Math.max(1, maxSockets) };
  const http = new HttpAgent(opts);
  const https = new HttpsAgent(opts);
  return { http, https, destroy: () => (http.destroy(), https.destroy()) };
}

export interface SendOptions {
  method: string;
  url: URL;
  headers: Record<string, string>;
  /** A buffer, a byte range of a file (file-body.ts), or a factory for a fresh stream (called once per request). */
  body?: Buffer | string | FileRange | (() => Readable);
  signal?: AbortSignal;
  agents?: Agents;
}

/** Resolves with the response as soon as its head arrives; the caller consumes or discards the body. */
export function send(opts: SendOptions): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const https = opts.url.protocol === 'https:';
    if (!https && opts.url.protocol !== 'http:') {
      reject(new Error(`unsupported URL scheme ${opts.url.protocol}`));
      return;
    }
    const req = (https ? httpsRequest : httpRequest)(opts.url, {
      method: opts.method,
      headers: opts.headers,
      agent: opts.agents ? (https ? opts.agents.https : opts.agents.http) : undefined,
      signal: opts.signal,
    });
    let source: Readable | undefined;
    let refused = false;
    req.once('error', (err) => {
      source?.destroy();
      reject(err);
    });
    req.once('response', (res) => {
      // The body may be consumed only after a few awaits (a truncate, an mkdir): a connection that
      // drops meanwhile must not crash the process as an unhandled 'error' ('aborted'); whoever
      // reads the body still sees the failure.
      res.on('error', () => {});
      // A refusal can arrive before the body is sent: stop reading the file.
      if ((res.statusCode ?? 0) >= 300) {
        refused = true;
        if (source && !source.readableEnded) source.destroy();
      }
      resolve(res);
    });
    const body = opts.body;
    if (body === undefined) req.end();
    else if (typeof body === 'string' || Buffer.isBuffer(body)) req.end(body);
    else if (typeof body === 'object') writeFileRange(req, body, () => refused).catch((err: unknown) => req.destroy(err as Error));
    else {
      source = body();
      source.once('error', (err) => req.destroy(err));
      source.pipe(req);
    }
  });
}

/** Reads a (small) body as text, at most `limit` bytes; the rest is discarded. */
export async function readText(res: IncomingMessage, limit = 64 * 1024): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  try {
    for await (const chunk of res as AsyncIterable<Buffer>) {
      if (n < limit) chunks.push(chunk.subarray(0, limit - n));
      n += chunk.length;
    }
  } catch {
    // An error body cut short is still worth what arrived.
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Throws the body away without keeping it. */
export function discard(res: IncomingMessage): void {
  res.resume();
  res.on('error', () => {});
}

export function header(res: IncomingMessage, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

/** Combines an optional caller signal with a deadline. */
export function deadline(timeoutMs: number | undefined, signal?: AbortSignal): AbortSignal | undefined {
  const signals = [signal, timeoutMs && timeoutMs > 0 ? AbortSignal.timeout(timeoutMs) : undefined].filter((s) => s !== undefined);
  if (signals.length === 0) return undefined;
  return signals.length === 1 ? signals[0] : AbortSignal.any(signals);
}
