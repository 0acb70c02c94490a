/** Binds the S3 front door ([cachegate.s3_api] listen) beside the service's own listener. */
import { createServer, type Server } from 'node:http';
import { CacheGateError } from '../errors.ts';
import { parseListen } from '../config/listen.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../service/metrics.ts';
import type { ServiceState } from '../service/state.ts';
import type { UploadSlots } from '../service/upload-slots.ts';
import { listenOn } from '../service/listen-on.ts';
import { DEFAULT_MULTIPART_MAX_AGE } from '../config/s3-api.ts';
import { createS3Listener, type OperationInput } from './listener.ts';
import { multipartOperation, sweepAbandoned } from './multipart.ts';
import type { Answer } from './object-ops.ts';
import { S3ApiMetrics } from './metrics.ts';

export interface RunningS3Api {
  url: string;
  port: number;
  /** The listener, for the service's connection cap and timeouts ([cachegate] headers_timeout … max_connections). */
  server: Server;
  close: () => Promise<void>;
}

export async function startS3Api(listen: string, deps: { state: () => ServiceState; metrics: Metrics; log: Logger; uploads?: UploadSlots }): Promise<RunningS3Api> {
  const addr = parseListen(listen);
  if (!addr) throw new CacheGateError('invalid_config', 400, `[cachegate.s3_api] listen "${listen}" is not HOST:PORT`);
  const s3Metrics = new S3ApiMetrics(deps.metrics.registry);
  const extra = (op: OperationInput, state: ServiceState): Promise<Answer> | undefined => multipartOperation(op, state.config.service.dataDir);
  const listener = createS3Listener({ ...deps, s3Metrics, extra });
  // Checked every second rather than Node's 30 s, so headers_timeout is what a slow client gets.
  const server = createServer({ connectionsCheckingInterval: 1000 }, listener);
  // Expect: 100-continue: the listener invites the body only once the request is authorized
  // (listener.ts), so a refused client is answered before it sends a byte of it.
  server.on('checkContinue', listener);
  // Unfinished multipart uploads: swept at start and then every quarter of their lifetime (at most hourly).
  const sweep = (): void => {
    const s = deps.state().config.service;
    void sweepAbandoned(s.dataDir, s.s3Api?.multipartMaxAge ?? DEFAULT_MULTIPART_MAX_AGE).then(
      (n) => n > 0 && deps.log.info({ removed: n }, 'removed abandoned multipart uploads of the S3 front door'),
      (err: unknown) => deps.log.warn({ err: (err as Error).message }, 'could not sweep abandoned multipart uploads'),
    );
  };
  sweep();
  const maxAge = deps.state().config.service.s3Api?.multipartMaxAge ?? DEFAULT_MULTIPART_MAX_AGE;
  const timer = setInterval(sweep, Math.min(3600, Math.max(15, maxAge / 4)) * 1000).unref();
  const { port, url } = await listenOn(server, addr.host, addr.port);
  deps.log.info({ address: url }, `S3 front door listening on ${url}`);
  return {
    url,
    port,
    server,
    close: () => new Promise<void>((resolve) => {
      clearInterval(timer);
      server.close(() => resolve());
      server.closeIdleConnections();
    }),
  };
}
