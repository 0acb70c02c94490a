/**
 * src/service/accept-burst.ts: a listener bound by listenOn (the service's and the S3 front door's)
 * takes every connection waiting in its accept queue when libuv hands over the first one, instead of
 * one per event-loop iteration; the connections it takes serve requests like any other.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { connect, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { listenOn } from '../../src/service/listen-on.ts';

const N = 40;

describe('accept bursts', () => {
  it(`${N} connections waiting at once are all accepted in the poll that accepts the first`, async () => {
    const peers: string[] = [];
    const server = createServer((req, res) => {
      peers.push(req.socket.remoteAddress ?? '');
      res.end('ok');
    });
    const { port } = await listenOn(server, '127.0.0.1', 0);
    let seen = 0;
    server.on('connection', () => seen++);
    const clients: Socket[] = Array.from({ length: N }, () => connect(port, '127.0.0.1'));
    // The handshakes complete in the kernel (loopback) while this thread sleeps, so all N wait in the
    // accept queue when the loop next polls.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 300);
    const atFirstCheck = await new Promise<number>((resolve) => server.once('connection', () => setImmediate(() => resolve(seen))));
    if (atFirstCheck !== N) {
      for (const c of clients) c.destroy();
      server.close();
    }
    // libuv alone: 1 here (one accept per poll; setImmediate runs right after that poll).
    assert.equal(atFirstCheck, N);

    // Each taken connection is a working HTTP connection with its peer's address.
    const answers = await Promise.all(clients.map((c) => new Promise<string>((resolve, reject) => {
      let got = '';
      c.on('data', (d: Buffer) => (got += d.toString()));
      c.on('end', () => resolve(got));
      c.on('error', reject);
      c.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    })));
    assert.equal(answers.filter((a) => a.startsWith('HTTP/1.1 200') && a.endsWith('ok')).length, N);
    assert.deepEqual([...new Set(peers)], ['127.0.0.1']);
    // close() waits for them and then completes (they are counted as the server's connections).
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
});
