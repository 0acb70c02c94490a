/**
 * Keeps the service reachable when clients hold connections open without using them (issue 14.5:
 * 1,100 connections that never finished their headers made /healthz fail under `ulimit -n 1024`,
 * because every descriptor was taken and new connections were dropped at accept).
 *
 * Connections are counted; over `max`, the one idle the longest (no request in progress: its headers
 * are not complete yet, or it waits between keep-alive requests) is closed to make room for the new
 * one. Connections with a request in progress are never chosen; when all are busy, the new one is
 * closed. Timeouts (headers, idle) bound how long any of them lasts; this bounds how many.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

export class ConnectionGuard {
  #max: number;
  /** Sockets without a request in progress, the longest-idle first (a Set keeps insertion order). */
  readonly #idle = new Set<Socket>();
  #open = 0;

  constructor(server: Server, max: number) {
    this.#max = max;
    this.attach(server);
  }

  /** Counts another listener's connections (the S3 front door's) against the same cap: they share the process's descriptors. */
  attach(server: Server): void {
    server.on('connection', (socket: Socket) => this.#opened(socket));
    const busy = (req: IncomingMessage, res: ServerResponse): void => this.#busy(req.socket, res);
    server.on('request', busy);
    server.on('checkContinue', busy); // (emitted instead of 'request' for Expect: 100-continue)
  }

  set max(n: number) {
    this.#max = n;
  }

  #opened(socket: Socket): void {
    this.#open++;
    this.#idle.add(socket);
    socket.once('close', () => {
      this.#open--;
      this.#idle.delete(socket);
    });
    if (this.#open <= this.#max) return;
    for (const victim of this.#idle) {
      if (victim === socket) continue;
      this.#idle.delete(victim);
      victim.destroy();
      return;
    }
    this.#idle.delete(socket);
    socket.destroy();
  }

  #busy(socket: Socket, res: ServerResponse): void {
    this.#idle.delete(socket);
    res.once('close', () => {
      if (!socket.destroyed) this.#idle.add(socket); // to the end: idle from now
    });
  }
}
