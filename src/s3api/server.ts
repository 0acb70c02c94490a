/** Binds the S3 front door ([cachegate.s3_api] listen) beside the service's own listener. */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CacheGateError } from '../errors.ts';
import { parseListen } from '../config/listen.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../service/metrics.ts';
import type { ServiceState } from '../service/state.ts';
import { createS3Listener } from './listener.ts';
import { S3ApiMetrics } from './metrics.ts';

export interface RunningS3Api {
  url: string;
  port: number;
  close: () => Promise<void>;
}

export async function startS3Api(listen: string, deps: { state: () => ServiceState; metrics: Metrics; log: Logger }): Promise<RunningS3Api> {
  const addr = parseListen(listen);
  if (!addr) throw new CacheGateError('invalid_config', 400, `[cachegate.s3_api] listen "${listen}" is not HOST:PORT`);
  const s3Metrics = new S3ApiMetrics(deps.metrics.registry);
  const server = createServer(createS3Listener({ ...deps, s3Metrics }));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(addr.port, addr.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://${addr.host.includes(':') ? `[${addr.host}]` : addr.host}:${port}`;
  deps.log.info({ address: url }, `S3 front door listening on ${url}`);
  return {
    url,
    port,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
    }),
  };
}
