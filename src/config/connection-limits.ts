/**
 * [cachegate] settings that bound what one client can hold of the service: how long it may take to
 * send its headers and its request, how long an upload body may stall, how long an idle keep-alive
 * connection stays, how many uploads stream at once, and how many connections are kept.
 * Defaults are documented in docs/configuration.md.
 */
import { readFileSync } from 'node:fs';
import type { RawCachegate } from './schema.ts';

export interface ConnectionLimits {
  /** Seconds to receive the request line and all headers; then 408 and the connection is closed. */
  headersTimeout: number;
  /** Seconds to receive a whole request, body included (0 = no limit). Bounds a steady trickle. */
  requestTimeout: number;
  /** Seconds a connection may pass without a byte either way (an upload body that stalls): then it is cut. */
  idleTimeout: number;
  /** Seconds an idle keep-alive connection is kept open between requests. */
  keepAliveTimeout: number;
  /** Uploads (proxy and /v1/blob PUT, the front door's PUTs) streaming at once; more wait (uploadWait), then 503 too_many_uploads. */
  maxUploads: number;
  /** Seconds an upload over max_uploads waits for a slot before its 503 (0 = refused at once). */
  uploadWait: number;
  /** Connections kept open; over it, the longest-idle connection is closed to make room (0 = from the descriptor limit). */
  maxConnections: number;
}

export const DEFAULT_LIMITS: ConnectionLimits = {
  headersTimeout: 10,
  requestTimeout: 3600,
  idleTimeout: 30,
  keepAliveTimeout: 5,
  maxUploads: 128,
  uploadWait: 10,
  maxConnections: 0,
};

export function connectionLimits(cg: RawCachegate | undefined): ConnectionLimits {
  return {
    headersTimeout: cg?.headers_timeout ?? DEFAULT_LIMITS.headersTimeout,
    requestTimeout: cg?.request_timeout ?? DEFAULT_LIMITS.requestTimeout,
    idleTimeout: cg?.idle_timeout ?? DEFAULT_LIMITS.idleTimeout,
    keepAliveTimeout: cg?.keep_alive_timeout ?? DEFAULT_LIMITS.keepAliveTimeout,
    maxUploads: cg?.max_uploads ?? DEFAULT_LIMITS.maxUploads,
    uploadWait: cg?.upload_wait ?? DEFAULT_LIMITS.uploadWait,
    maxConnections: cg?.max_connections ?? DEFAULT_LIMITS.maxConnections,
  };
}

/**
 * max_connections = 0: what the process's descriptor limit leaves after a reserve for everything
 * else (64 for Node, logs, the config watcher, backend pools) and two more descriptors per upload
 * (its temporary file and its backend connection), at least 16. Without a readable limit, 1024.
 */
export function effectiveMaxConnections(limits: ConnectionLimits, nofile = openFileLimit()): number {
  if (limits.maxConnections > 0) return limits.maxConnections;
  return Math.max(16, (nofile ?? 1024) - 64 - 2 * limits.maxUploads);
}

/** The soft RLIMIT_NOFILE, from /proc/self/limits (Linux); undefined elsewhere or when unlimited. */
export function openFileLimit(): number | undefined {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}
