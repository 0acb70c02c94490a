/**
 * `cache-archiver --server`: the request for an upload URL (src/transfer/ask-server.ts) against a
 * hostile or misconfigured server (node:http servers on loopback): a redirect is not followed, so
 * the runner token never reaches another host or path, and an answer is read only up to a bound.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { presignUpload } from '../../src/transfer/ask-server.ts';

const TOKEN = 'glrt-ask-server-s3cr3t-token';

async function serve(answer: (url: string, res: ServerResponse) => void): Promise<{ url: string; seen: Array<{ url: string; headers: IncomingHttpHeaders }>; server: Server }> {
  const seen: Array<{ url: string; headers: IncomingHttpHeaders }> = [];
  const server = createServer((req, res) => {
    seen.push({ url: req.url ?? '', headers: req.headers });
    req.resume();
    req.on('end', () => answer(req.url ?? '', res));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, server };
}

const ask = (server: string, timeoutMs = 10_000) => presignUpload({ server, token: TOKEN, key: 'k', projectId: '1', size: 10 }, timeoutMs);
const signed = JSON.stringify({ url: 'http://127.0.0.1:1/x', headers: {} });

describe('cache-archiver --server: asking for the upload URL', () => {
  it('a redirect (301, 302, 303, 307, 308; to another host or another path) is not followed: the token stays with the server asked', async () => {
    const other = await serve((_u, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(signed));
    let location = '';
    const origin = await serve((url, res) => {
      if (url === '/elsewhere') res.writeHead(200, { 'content-type': 'application/json' }).end(signed);
      else res.writeHead(Number(/code=(\d+)/.exec(location)?.[1] ?? 302), { location }).end();
    });
    try {
      for (const code of [301, 302, 303, 307, 308]) {
        for (const to of [`${other.url}/v1/presign?code=${code}`, `/elsewhere?code=${code}`]) {
          location = to;
          await assert.rejects(ask(origin.url), (err: Error) => {
            assert.match(err.message, new RegExp(`answered ${code}`), err.message);
            assert.ok(!err.message.includes(TOKEN));
            return true;
          }, `${code} to ${to}`);
        }
      }
      assert.equal(other.seen.length, 0, 'the other host got no request');
      assert.ok(origin.seen.every((s) => s.url === '/v1/presign'), origin.seen.map((s) => s.url).join());
    } finally {
      other.server.close();
      origin.server.close();
    }
  });

  it('an answer is read up to 1 MiB: an endless or huge body fails at once with a clear error', async () => {
    let streamed = 0;
    const origin = await serve((url, res) => {
      res.writeHead(url.length > 0 ? 200 : 500, { 'content-type': 'application/json' });
      const chunk = Buffer.alloc(64 * 1024, 0x20); // JSON whitespace, forever
      const more = (): void => {
        while (streamed < 1 << 30 && !res.destroyed) {
          streamed += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', more);
        }
      };
      more();
    });
    try {
      await assert.rejects(ask(origin.url, 20_000), /an answer over 1048576 bytes/);
      assert.ok(streamed < 64 * 1024 * 1024, `${streamed} bytes were sent before the helper stopped reading`);
    } finally {
      origin.server.closeAllConnections();
      origin.server.close();
    }
  });
});
