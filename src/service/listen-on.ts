/** Binds an HTTP server (the service's, the S3 front door's) and says where it listens. */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { acceptInBursts } from './accept-burst.ts';

/** Resolves once `server` listens on host:port (port 0: a free one); rejects on a bind error. */
export async function listenOn(server: Server, host: string, port: number): Promise<{ port: number; url: string }> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  acceptInBursts(server);
  const bound = (server.address() as AddressInfo).port;
  return { port: bound, url: `http://${host.includes(':') ? `[${host}]` : host}:${bound}` };
}
