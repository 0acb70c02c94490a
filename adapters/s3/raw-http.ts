/**
 * The proxied GET's backend request on a plain `net` socket with a minimal HTTP/1.1 reader: the
 * status line and headers, then exactly Content-Length bytes of body. Only a 200 or 206 with a
 * Content-Length and no Transfer-Encoding is read this way; anything else (an error answer, a
 * redirect, chunked, a 1xx) is reported as `undefined` and the socket closed, and the caller sends
 * the request again on node:http (direct-get.ts), which reads every answer. A cache GET through the
 * door usually follows a HEAD (the runner's helper), so misses rarely pay that second request.
 *
 * Why (docs/performance.md, "S3 front door, session 8"): node:http's client spends ~1.2–1.7 ms of
 * CPU per MiB more than a raw socket (llhttp, an IncomingMessage, a fresh 64 KiB Buffer per read), and
 * 64 KiB chunks piped into the door's response go out as one write each. Here the socket reads into
 * one shared 1 MiB buffer (`onread`), so a read takes whatever the kernel holds, and each read
 * becomes one chunk of the body: fewer, larger writes to the client.
 *
 * Memory: the shared read buffer (1 MiB for the process), plus at most the body's highWaterMark per
 * request before the socket is paused. Sockets: at most `maxSockets` per origin (busy + idle); past it
 * the caller uses node:http's agent. Idle sockets close after IDLE_MS. Plain http only: TLS backends
 * keep node:http (a `tls` socket has no `onread`).
 */
import { connect, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { TIMEOUTS, timedOut } from '../timeouts.ts';

/** The answer's headers, lower-cased, repeated ones joined with ", " (as node:http does for most). */
export type RawHeaders = Record<string, string>;
export interface RawAnswer {
  status: number;
  headers: RawHeaders;
  body: Readable;
}

const MAX_HEAD = 64 * 1024;
/** Below common servers' keep-alive timeouts (RGW's beast: 5 s? nginx 75 s), so the pool rarely hands out a socket the server is closing. */
const IDLE_MS = 4_000;
const READ_BUFFER = Buffer.allocUnsafe(1024 * 1024);
const HEADER_SAFE = /^[^\r\n]*$/;

/** A pooled socket and what its current reader does with its bytes, errors and close. */
interface Conn {
  socket: Socket;
  /** A read's bytes (only valid during the call); false pauses the socket. */
  onBytes: (buf: Buffer) => boolean;
  onEnd: (err: Error) => void;
  /** Destroys the socket and frees its place in the pool at once (not at its 'close' event, which comes a tick later). */
  close: () => void;
}

const idleHooks = (conn: Conn): void => {
  // A byte on an idle socket is a protocol error (or the server's close): drop the socket.
  conn.onBytes = () => {
    conn.close();
    return false;
  };
  conn.onEnd = () => undefined;
};

export class RawHttpPool {
  private readonly idle = new Map<string, Conn[]>();
  private readonly open = new Map<string, number>();
  readonly maxSockets: number;
  constructor(maxSockets: number) {
    this.maxSockets = maxSockets;
  }

  /** Sockets open to `origin` (host:port; busy and idle): for tests and bounds. */
  sockets(origin: string): number {
    return this.open.get(origin) ?? 0;
  }

  /**
   * GET `url` with `headers`; the answer once its head has arrived, or undefined when it is not a
   * 200/206 with a Content-Length (or the pool is full, or a header could not be sent as is): then
   * the caller may send the request by other means. `signal` aborts until the head has arrived;
   * afterwards the body fails when nothing moves for TIMEOUTS.idleMs, and a connection lost before
   * Content-Length bytes fails the body (the client's answer is cut short, never complete-looking).
   */
  async get(url: URL, headers: Record<string, string>, signal: AbortSignal): Promise<RawAnswer | undefined> {
    if (url.protocol !== 'http:') return undefined;
    let head = `GET ${url.pathname}${url.search} HTTP/1.1\r\nhost: ${url.host}\r\n`;
    for (const name in headers) {
      const v = headers[name];
      if (name === 'host' || !HEADER_SAFE.test(name) || !HEADER_SAFE.test(v)) return undefined;
      head += `${name}: ${v}\r\n`;
    }
    head += '\r\n';
    signal.throwIfAborted();
    const conn = this.take(url);
    if (conn === undefined) return undefined;
    const { socket } = conn;
    return new Promise<RawAnswer | undefined>((resolve, reject) => {
      let pending: Buffer | undefined;
      let body: Readable | undefined;
      let left = 0;
      let keepAlive = false;
      const onAbort = (): void => conn.onEnd(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
      const settle = (): void => {
        signal.removeEventListener('abort', onAbort);
        socket.setTimeout(0);
      };
      /** Pushes body bytes; at Content-Length ends the body and frees the socket (unless more bytes came than the body has). */
      const push = (chunk: Buffer): boolean => {
        const n = Math.min(chunk.length, left);
        left -= n;
        const more = (body as Readable).push(Buffer.from(chunk.subarray(0, n)));
        if (left > 0) return more;
        (body as Readable).push(null);
        settle();
        if (keepAlive && chunk.length === n) this.release(url.host, conn);
        else {
          idleHooks(conn);
          conn.close();
        }
        return true;
      };
      conn.onEnd = (err) => {
        settle();
        idleHooks(conn);
        conn.close();
        if (body !== undefined) body.destroy(err);
        else reject(err);
      };
      conn.onBytes = (chunk) => {
        if (body !== undefined) return push(chunk);
        pending = pending === undefined ? Buffer.from(chunk) : Buffer.concat([pending, chunk]);
        const end = pending.indexOf('\r\n\r\n');
        if (end < 0) {
          if (pending.length > MAX_HEAD) conn.onEnd(new Error('the backend answer head is too large'));
          return true;
        }
        const parsed = parseHead(pending.subarray(0, end).toString('latin1'));
        const rest = pending.subarray(end + 4);
        pending = undefined;
        signal.removeEventListener('abort', onAbort);
        const length = parsed?.headers['content-length'];
        if (parsed === undefined || (parsed.status !== 200 && parsed.status !== 206) || length === undefined || !/^[0-9]{1,16}$/.test(length) || parsed.headers['transfer-encoding'] !== undefined) {
          settle();
          idleHooks(conn);
          conn.close();
          resolve(undefined);
          return false;
        }
        left = Number(length);
        keepAlive = parsed.keepAlive;
        body = new Readable({
          read: () => void socket.resume(),
          destroy: (err, cb) => {
            if (left > 0) {
              // The reader went away (the client disconnected): this connection is mid-answer.
              settle();
              idleHooks(conn);
              conn.close();
            }
            cb(err);
          },
        });
        // The body's idle bound from here on (the caller's signal bounded the wait for the head).
        socket.setTimeout(TIMEOUTS.idleMs);
        resolve({ status: parsed.status, headers: parsed.headers, body });
        return push(rest);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      socket.write(head);
    });
  }

  private take(url: URL): Conn | undefined {
    const origin = url.host;
    const reused = this.idle.get(origin)?.pop();
    if (reused !== undefined) {
      if (this.idle.get(origin)?.length === 0) this.idle.delete(origin);
      reused.socket.setTimeout(0);
      return reused;
    }
    const n = this.open.get(origin) ?? 0;
    if (n >= this.maxSockets) return undefined;
    this.open.set(origin, n + 1);
    let counted = true;
    const conn = { onBytes: () => true, onEnd: () => undefined } as unknown as Conn;
    conn.close = () => {
      if (counted) {
        counted = false;
        const left = (this.open.get(origin) ?? 1) - 1;
        if (left > 0) this.open.set(origin, left);
        else this.open.delete(origin);
        this.drop(origin, conn);
      }
      conn.socket.destroy();
    };
    const socket = connect({
      host: url.hostname.replace(/^\[|\]$/g, ''),
      port: Number(url.port || 80),
      noDelay: true,
      onread: { buffer: READ_BUFFER, callback: (nread) => conn.onBytes(READ_BUFFER.subarray(0, nread)) },
    });
    conn.socket = socket;
    socket.on('error', (err) => conn.onEnd(err));
    socket.on('timeout', () => conn.onEnd(timedOut('S3 GetObject (no byte moved)', TIMEOUTS.idleMs)));
    socket.on('close', () => {
      conn.onEnd(new Error('the backend closed the connection before the answer was complete'));
      conn.close();
    });
    return conn;
  }

  private release(origin: string, conn: Conn): void {
    idleHooks(conn);
    conn.socket.setTimeout(IDLE_MS);
    conn.onEnd = () => conn.close(); // idle timeout or error
    let list = this.idle.get(origin);
    if (list === undefined) this.idle.set(origin, (list = []));
    list.push(conn);
  }

  private drop(origin: string, conn: Conn): void {
    const list = this.idle.get(origin);
    if (list === undefined) return;
    const i = list.indexOf(conn);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.idle.delete(origin);
  }
}

/** Status line and headers; undefined when the status line is not HTTP/1.x. */
function parseHead(text: string): { status: number; headers: RawHeaders; keepAlive: boolean } | undefined {
  const lines = text.split('\r\n');
  const m = /^HTTP\/1\.([01]) (\d{3})(?: |$)/.exec(lines[0]);
  if (m === null) return undefined;
  const headers: RawHeaders = {};
  for (let i = 1; i < lines.length; i++) {
    const colon = lines[i].indexOf(':');
    if (colon <= 0) return undefined;
    const name = lines[i].slice(0, colon).trim().toLowerCase();
    const value = lines[i].slice(colon + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  const connection = (headers.connection ?? '').toLowerCase();
  const keepAlive = m[1] === '1' ? !connection.includes('close') : connection.includes('keep-alive');
  return { status: Number(m[2]), headers, keepAlive };
}
