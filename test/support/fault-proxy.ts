/**
 * A TCP proxy on 127.0.0.1:0 in front of a real server (RGW, Azurite), with a switchable fault:
 *
 *   pass     bytes go through both ways
 *   refuse   the port stops listening (ECONNREFUSED), as a backend that is down
 *   hang     connections are accepted and read, and never answered
 *   slow     bytes go through, each chunk delayed by `slowMs` (both ways)
 *   http5xx  every request is answered `status` (503 by default) by the proxy itself
 *
 * Switching modes closes every open connection, so clients with pooled keep-alive sockets meet the
 * new mode on their next request instead of going on through an old connection.
 */
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { Transform, type TransformCallback } from 'node:stream';

export type FaultMode = 'pass' | 'refuse' | 'hang' | 'slow' | 'http5xx';

export interface FaultProxyOptions {
  /** The real server. */
  target: { host: string; port: number };
  /** Delay per chunk in `slow` mode. */
  slowMs?: number;
  /** Status answered in `http5xx` mode. */
  status?: number;
}

export interface FaultProxy {
  /** 127.0.0.1:PORT (a ServerAddress). */
  readonly address: string;
  readonly port: number;
  readonly mode: FaultMode;
  /** Connections accepted so far (all modes but refuse). */
  readonly connections: number;
  setMode(mode: FaultMode, options?: { slowMs?: number; status?: number }): Promise<void>;
  close(): Promise<void>;
}

/** Delays every chunk by `ms`, keeping their order. */
function delay(ms: number): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
      setTimeout(() => cb(null, chunk), ms);
    },
  });
}

const REASONS: Record<number, string> = { 500: 'Internal Server Error', 502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout' };

/** A complete HTTP answer with an S3/Azure-style XML error body, then the connection is closed. */
function errorAnswer(status: number): string {
  const body = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>ServiceUnavailable</Code><Message>fault proxy answers ${status}</Message></Error>`;
  return [
    `HTTP/1.1 ${status} ${REASONS[status] ?? 'Error'}`,
    'Content-Type: application/xml',
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Connection: close',
    '',
    body,
  ].join('\r\n');
}

export async function startFaultProxy(opts: FaultProxyOptions): Promise<FaultProxy> {
  let mode: FaultMode = 'pass';
  let slowMs = opts.slowMs ?? 2000;
  let status = opts.status ?? 503;
  let accepted = 0;
  const open = new Set<Socket>();
  const track = (s: Socket): void => {
    open.add(s);
    s.on('close', () => open.delete(s));
    s.on('error', () => undefined); // resets are the point here
  };

  const onConnection = (client: Socket): void => {
    accepted++;
    track(client);
    if (mode === 'hang') {
      client.resume(); // read and discard: the request goes out in full, the answer never comes
      return;
    }
    if (mode === 'http5xx') {
      let head = '';
      const onData = (chunk: Buffer): void => {
        head += chunk.toString('latin1');
        if (!head.includes('\r\n\r\n')) return;
        client.off('data', onData);
        client.resume(); // discard a request body that may still come
        client.end(errorAnswer(status));
      };
      client.on('data', onData);
      return;
    }
    const upstream = connect(opts.target.port, opts.target.host);
    track(upstream);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    if (mode === 'slow') {
      client.pipe(delay(slowMs)).pipe(upstream);
      upstream.pipe(delay(slowMs)).pipe(client);
    } else {
      client.pipe(upstream);
      upstream.pipe(client);
    }
  };

  let server: Server = createServer(onConnection);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  const closeServer = (): Promise<void> => new Promise((resolve) => server.close(() => resolve()));
  const dropConnections = (): void => {
    for (const s of open) s.destroy();
    open.clear();
  };

  return {
    address: `127.0.0.1:${port}`,
    port,
    get mode() {
      return mode;
    },
    get connections() {
      return accepted;
    },
    async setMode(next, options = {}) {
      slowMs = options.slowMs ?? slowMs;
      status = options.status ?? status;
      if (next === mode) return;
      const wasRefusing = mode === 'refuse';
      mode = next;
      dropConnections();
      if (next === 'refuse') {
        await closeServer();
      } else if (wasRefusing) {
        // Listen again on the same port (loopback, freed a moment ago): fail loudly if it was taken.
        server = createServer(onConnection);
        await new Promise<void>((resolve, reject) => {
          server.once('error', (err) => reject(new Error(`fault proxy: cannot listen on ${port} again: ${err.message}`)));
          server.listen(port, '127.0.0.1', () => resolve());
        });
      }
    },
    async close() {
      dropConnections();
      if (mode !== 'refuse') await closeServer();
    },
  };
}
