/**
 * Takes a listener's whole accept queue at once instead of one connection per event-loop iteration.
 *
 * libuv accepts a single connection each time the loop polls (libuv PR #3696, in Node since 20;
 * nodejs/node#57364). Under load an iteration of this service can take a second: with 200 busy
 * clients each poll hands every active socket its turn, ~5 ms of work each. New connections then
 * came in at about one a second, so 200 clients connecting at once waited in the kernel's accept
 * queue for minutes, and those waiting over their 30 s timeout gave up and reconnected, to wait
 * again: the 200-client mix's timeouts in waves at 30, 60, 90 s (docs/performance.md, "S3 front
 * door, session 9: the waves were the accept queue"). Each time libuv hands over a connection, the
 * rest of the queue (up to BURST) is taken too, through the native addon's accept4() loop, and each
 * is given to the server as libuv's own would be (net's onconnection, mirrored below).
 *
 * Without the addon (not built, or not Linux) the server keeps libuv's pace.
 */
import type { Server } from 'node:http';
import { Socket } from 'node:net';
import { sigv4Addon } from '../sign/native-sigv4.ts';

/** At most this many more connections per connection libuv accepts. */
export const BURST = 64;

const acceptPending = process.env.CACHEGATE_ACCEPT_BURST === '0' ? undefined : sigv4Addon()?.acceptPending;

/** The fields of net.Server that its onconnection reads, and its connection count. */
interface NetServerFields {
  _handle?: { fd?: number } | null;
  _connections: number;
  allowHalfOpen?: boolean;
  highWaterMark?: number;
  noDelay?: boolean;
  keepAlive?: boolean;
  keepAliveInitialDelay?: number;
}

/** Whether `server` takes its accept queue in bursts (false: no addon, or turned off). */
export function acceptInBursts(server: Server): boolean {
  if (!acceptPending) return false;
  const fields = server as unknown as NetServerFields;
  let draining = false;
  server.on('connection', () => {
    if (draining) return; // the connections handed over below emit 'connection' too
    const fd = fields._handle?.fd;
    if (typeof fd !== 'number' || fd < 0) return;
    draining = true;
    try {
      for (const c of acceptPending(fd, BURST)) adopt(server, fields, c);
    } finally {
      draining = false;
    }
  });
  return true;
}

function adopt(server: Server, fields: NetServerFields, fd: number): void {
  const socket = new Socket({
    fd,
    readable: true,
    writable: true,
    allowHalfOpen: fields.allowHalfOpen ?? false,
    ...(fields.highWaterMark !== undefined ? { readableHighWaterMark: fields.highWaterMark, writableHighWaterMark: fields.highWaterMark } : {}),
  });
  if (fields.noDelay) socket.setNoDelay(true);
  if (fields.keepAlive) socket.setKeepAlive(true, fields.keepAliveInitialDelay ?? 0);
  // As net's onconnection does: counted, so close() waits for it and getConnections() sees it.
  fields._connections++;
  Object.assign(socket, { server, _server: server });
  server.emit('connection', socket);
}
