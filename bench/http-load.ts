/**
 * A closed-loop HTTP load generator on node:http: `connections` keep-alive connections, each sending
 * the same request again as soon as its answer has been read, for `seconds`. Why not autocannon for
 * 1 MB bodies: it parses answers with http-parser-js in JavaScript, and on this project's machine
 * that cost ~23 ms of CPU per 1 MB GET (measured 2026-12-04, bench/s3api.ts's cpuMsPerRequest.client),
 * more than the server under test spent: the load generator was the bottleneck of the GET rounds.
 * node:http parses with llhttp (native) and a discarded body is not copied or decoded.
 * A 307 is followed once (the front door's redirect_get arm), as the runner's helper does.
 */
import { Agent, type ClientRequest, request } from 'node:http';

export interface LoadResult {
  requests: number;
  reqPerSec: number;
  /** Bytes of answer bodies read. */
  bytesIn: number;
  errors: number;
  non2xx: number;
  p99ms: number;
  /** Client errors by kind (`timeout`, an errno code or the message). */
  errorKinds: Record<string, number>;
  /** When each client error happened, seconds into the run (0.1 s resolution, distinct values). */
  errorSecondsIntoRun: number[];
  /** Non-2xx answers by status. */
  non2xxStatuses: Record<string, number>;
  /** Each timed-out request (at most 200): when it started (s into the run), its method, whether it went on a new connection, and when its answer's head came (s after its start; undefined: never). */
  timedOut: Array<{ startS: number; method: string; newConnection: boolean; headS?: number }>;
}

/** One request of a rotation: each connection sends the next one of the list after each answer. */
export interface LoadRequest {
  method: 'GET' | 'PUT';
  url: string;
  headers?: Record<string, string>;
  body?: Buffer;
}

export interface LoadOptions {
  url: string;
  method: 'GET' | 'PUT';
  connections: number;
  seconds: number;
  body?: Buffer;
  headers?: Record<string, string>;
  /** Instead of url/method/headers/body: connection i starts at requests[i % n] and goes round the list. */
  requests?: LoadRequest[];
  /** A request unanswered (answer read whole) after this long is destroyed and counted as `timeout`. */
  timeoutSeconds?: number;
}

export async function httpLoad(o: LoadOptions): Promise<LoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: o.connections });
  const list = (o.requests ?? [{ method: o.method, url: o.url, headers: o.headers, body: o.body }]).map((r) => ({
    method: r.method,
    url: new URL(r.url),
    body: r.body,
    // Read at each send: a caller may replace r.headers during the run (the mix re-signs its
    // header-signed requests before their 15 minutes run out).
    headers: (): Record<string, string> => ({ ...r.headers, ...(r.body ? { 'content-length': String(r.body.length) } : {}) }),
  }));
  const latencies: number[] = [];
  let errors = 0;
  let non2xx = 0;
  let bytesIn = 0;
  const errorKinds: Record<string, number> = {};
  const errorTimes = new Set<number>();
  const non2xxStatuses: Record<string, number> = {};
  const timedOut: LoadResult['timedOut'] = [];
  const start = performance.now();
  const deadline = start + o.seconds * 1000;
  const one = (r: (typeof list)[number]): Promise<void> =>
    new Promise((resolve) => {
      const t0 = performance.now();
      let settled = false;
      let current: ClientRequest | undefined;
      let headAt: number | undefined;
      const fail = (err: NodeJS.ErrnoException): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        errors++;
        const kind = err.message === 'timeout' ? 'timeout' : (err.code ?? err.message);
        if (kind === 'timeout' && timedOut.length < 200) {
          const s3 = (ms: number): number => Math.round(ms / 100) / 10;
          timedOut.push({ startS: s3(t0 - start), method: r.method, newConnection: current?.reusedSocket === false, ...(headAt === undefined ? {} : { headS: s3(headAt - t0) }) });
        }
        errorKinds[kind] = (errorKinds[kind] ?? 0) + 1;
        errorTimes.add(Math.round((performance.now() - start) / 100) / 10);
        resolve();
      };
      // One request, following one 307 (the S3 front door's redirect_get) as Go's net/http does: the
      // same method, on the same agent (its sockets are per host).
      const send = (target: URL | string, hops: number): void => {
        const req = request(target, { method: r.method, agent, headers: r.headers() }, (res) => {
          headAt = performance.now();
          const location = res.headers.location;
          if (res.statusCode === 307 && location !== undefined && hops === 0) {
            res.resume();
            res.on('end', () => send(location, 1));
            return;
          }
          const status = res.statusCode ?? 0;
          if (status < 200 || status > 299) {
            non2xx++;
            non2xxStatuses[status] = (non2xxStatuses[status] ?? 0) + 1;
          }
          res.on('data', (c: Buffer) => (bytesIn += c.length));
          res.on('end', () => {
            if (settled) return;
            settled = true;
            clearTimeout(timer);
            latencies.push(performance.now() - t0);
            resolve();
          });
          res.on('error', fail);
        });
        current = req;
        req.on('error', fail);
        req.end(r.body);
      };
      const timer = o.timeoutSeconds ? setTimeout(() => current?.destroy(new Error('timeout')), o.timeoutSeconds * 1000) : undefined;
      send(r.url, 0);
    });
  const worker = async (i: number): Promise<void> => {
    for (let n = i; performance.now() < deadline; n++) await one(list[n % list.length]);
  };
  await Promise.all(Array.from({ length: o.connections }, (_, i) => worker(i)));
  const elapsed = (performance.now() - start) / 1000;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  return {
    requests: latencies.length, reqPerSec: Math.round((latencies.length / elapsed) * 10) / 10, bytesIn, errors, non2xx,
    p99ms: Math.round(latencies[Math.floor(latencies.length * 0.99)] ?? 0),
    errorKinds, errorSecondsIntoRun: [...errorTimes].sort((a, b) => a - b), non2xxStatuses, timedOut,
  };
}
