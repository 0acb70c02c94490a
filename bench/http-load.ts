/**
 * A closed-loop HTTP load generator on node:http: `connections` keep-alive connections, each sending
 * the same request again as soon as its answer has been read, for `seconds`. Why not autocannon for
 * 1 MB bodies: it parses answers with http-parser-js in JavaScript, and on this project's machine
 * that cost ~23 ms of CPU per 1 MB GET (measured 2026-12-04, bench/s3api.ts's cpuMsPerRequest.client),
 * more than the server under test spent: the load generator was the bottleneck of the GET rounds.
 * node:http parses with llhttp (native) and a discarded body is not copied or decoded.
 * A 307 is followed once (the front door's redirect_get arm), as the runner's helper does.
 */
import { Agent, request } from 'node:http';

export interface LoadResult {
  requests: number;
  reqPerSec: number;
  /** Bytes of answer bodies read. */
  bytesIn: number;
  errors: number;
  non2xx: number;
  p99ms: number;
}

export interface LoadOptions {
  url: string;
  method: 'GET' | 'PUT';
  connections: number;
  seconds: number;
  body?: Buffer;
  headers?: Record<string, string>;
}

export async function httpLoad(o: LoadOptions): Promise<LoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: o.connections });
  const url = new URL(o.url);
  const headers = { ...o.headers, ...(o.body ? { 'content-length': String(o.body.length) } : {}) };
  const latencies: number[] = [];
  let errors = 0;
  let non2xx = 0;
  let bytesIn = 0;
  const start = performance.now();
  const deadline = start + o.seconds * 1000;
  // One request, following one 307 (the S3 front door's redirect_get) as Go's net/http does: the
  // same method, on the same agent (its sockets are per host).
  const send = (target: URL | string, t0: number, resolve: () => void, hops: number): void => {
    const req = request(target, { method: o.method, agent, headers }, (res) => {
      const location = res.headers.location;
      if (res.statusCode === 307 && location !== undefined && hops === 0) {
        res.resume();
        res.on('end', () => send(location, t0, resolve, 1));
        return;
      }
      if (res.statusCode === undefined || res.statusCode < 200 || res.statusCode > 299) non2xx++;
      res.on('data', (c: Buffer) => (bytesIn += c.length));
      res.on('end', () => {
        latencies.push(performance.now() - t0);
        resolve();
      });
      res.on('error', () => {
        errors++;
        resolve();
      });
    });
    req.on('error', () => {
      errors++;
      resolve();
    });
    req.end(o.body);
  };
  const one = (): Promise<void> => new Promise((resolve) => send(url, performance.now(), resolve, 0));
  const worker = async (): Promise<void> => {
    while (performance.now() < deadline) await one();
  };
  await Promise.all(Array.from({ length: o.connections }, worker));
  const elapsed = (performance.now() - start) / 1000;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  return {
    requests: latencies.length, reqPerSec: Math.round((latencies.length / elapsed) * 10) / 10, bytesIn, errors, non2xx,
    p99ms: Math.round(latencies[Math.floor(latencies.length * 0.99)] ?? 0),
  };
}
