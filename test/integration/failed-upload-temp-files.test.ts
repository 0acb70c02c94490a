/**
 * A refused or failed upload leaves no temporary file by the time its error is answered, while its
 * client keeps the connection open: the front door's PutObject and UploadPart (bad chunk signature
 * mid-body, a malformed chunk, BadDigest, EntityTooLarge), and the service's proxy and /v1/blob PUTs
 * (over the size cap mid-body). Local backend, raw sockets, real signatures.
 */
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import { startTestService, type TestService } from '../support/service.ts';

const AK = 'TEMPFILEKEY00001';
const SK = 'tempfile-secret-0001';
const TOKEN = 'glrt-tempfiles1';
const NS = 'runner/tempfiles/project/1'; // the short token: 9 characters after glrt-
const CAP = 1_000_000;

async function tempFiles(dir: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      if (e.isDirectory()) await walk(join(d, e.name));
      else if (e.name.startsWith('.tmp-')) found.push(join(d, e.name));
    }
  };
  await walk(dir);
  return found;
}

interface Sent {
  /** The answer's status line and headers. */
  head: string;
  /** The temporary files found the moment the answer's head arrived. */
  atAnswer: string[];
  socket: Socket;
}

/** Sends `head` and `body` on a fresh connection that this side never closes; resolves at the answer. */
function send(svc: TestService, url: string, head: string, body: Buffer): Promise<Sent> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(u.port), u.hostname);
    let got = '';
    socket.on('error', reject);
    socket.on('data', (d: Buffer) => {
      if (got.includes('\r\n\r\n')) return;
      got += d.toString('latin1');
      if (got.includes('\r\n\r\n') && !got.startsWith('HTTP/1.1 100')) {
        socket.pause();
        void tempFiles(svc.dataDir).then((atAnswer) => resolve({ head: got.slice(0, got.indexOf('\r\n\r\n')), atAnswer, socket }));
      } else if (got.startsWith('HTTP/1.1 100') && got.endsWith('\r\n\r\n')) got = '';
    });
    socket.write(head);
    socket.write(body);
  });
}

describe('a failed upload leaves no temporary file when its error is answered', () => {
  let svc: TestService;
  const signer = new SignatureV4({ credentials: { accessKeyId: AK, secretAccessKey: SK }, region: 'us-east-1', service: 's3', sha256: Hash.bind(null, 'sha256'), uriEscapePath: false });
  const open: Socket[] = [];
  before(async () => {
    svc = await startTestService({
      toml: `
[[runners]]
  name = "r1"
  token = "${TOKEN}"
  [runners.cache]
    Type = "local"
    MaxUploadedArchiveSize = ${CAP}
[cachegate.s3_api]
  listen = "127.0.0.1:0"
  [[cachegate.s3_api.keys]]
    access_key = "${AK}"
    secret_key = "${SK}"
    runner = "r1"
`,
    });
  });
  after(async () => {
    for (const s of open) s.destroy();
    await svc.stop();
  });

  /** A header-signed request to the door: its request line and headers. */
  const signed = async (method: string, path: string, headers: Record<string, string>, query: Record<string, string> = {}): Promise<{ url: string; head: string }> => {
    const u = new URL(`${svc.s3ApiUrl}/runner-cache/${NS}/${path}`);
    const s = await signer.sign({ method, protocol: 'http:', hostname: u.hostname, port: Number(u.port), path: u.pathname, query, headers: { host: u.host, ...headers } });
    const qs = Object.keys(query).length ? `?${new URLSearchParams(query).toString()}` : '';
    return { url: u.href, head: `${method} ${u.pathname}${qs} HTTP/1.1\r\n${Object.entries(s.headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n` };
  };
  const expectClean = (what: string, r: Sent, status: RegExp): void => {
    open.push(r.socket);
    assert.match(r.head, status, `${what}: ${r.head}`);
    assert.deepEqual(r.atAnswer, [], `${what}: temporary files when the error was answered`);
  };
  const data = Buffer.alloc(300_000, 7);

  it('front door PutObject: a bad chunk signature mid-body, a malformed chunk, BadDigest, EntityTooLarge', async () => {
    // signed aws-chunked: the first chunk's data reaches the temporary file before its signature is checked
    const chunk = Buffer.concat([Buffer.from(`${data.length.toString(16)};chunk-signature=${'0'.repeat(64)}\r\n`), data, Buffer.from('\r\n')]);
    let req = await signed('PUT', 'badsig', { 'x-amz-content-sha256': 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD', 'content-encoding': 'aws-chunked', 'x-amz-decoded-content-length': String(3 * data.length), 'content-length': String(3 * chunk.length + 200) });
    expectClean('bad chunk signature', await send(svc, req.url, req.head, chunk), /^HTTP\/1\.1 403/);
    // unsigned trailer form: a good chunk, then a chunk header that is not one (the rest never sent)
    const good = Buffer.concat([Buffer.from(`${data.length.toString(16)}\r\n`), data, Buffer.from('\r\nzz\r\n')]);
    req = await signed('PUT', 'malformed', { 'x-amz-content-sha256': 'STREAMING-UNSIGNED-PAYLOAD-TRAILER', 'content-encoding': 'aws-chunked', 'x-amz-trailer': 'x-amz-checksum-crc32', 'x-amz-decoded-content-length': String(2 * data.length), 'content-length': String(2 * good.length + 100) });
    expectClean('malformed chunk', await send(svc, req.url, req.head, good), /^HTTP\/1\.1 400/);
    // a whole body whose checksum does not match (the connection may stay open: the body was read)
    req = await signed('PUT', 'baddigest', { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD', 'x-amz-checksum-crc32': 'AAAAAA==', 'content-length': String(data.length) });
    expectClean('BadDigest', await send(svc, req.url, req.head, data), /^HTTP\/1\.1 400/);
    // HTTP-chunked without a length, past MaxUploadedArchiveSize
    const over = Buffer.alloc(CAP + 100_000, 1);
    req = await signed('PUT', 'toolarge', { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD', 'transfer-encoding': 'chunked' });
    expectClean('EntityTooLarge', await send(svc, req.url, req.head, Buffer.concat([Buffer.from(`${over.length.toString(16)}\r\n`), over])), /^HTTP\/1\.1 400/);
  });

  it('front door UploadPart: BadDigest and a bad chunk signature leave no staged temporary file', async () => {
    const create = await signed('POST', 'multi', { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' }, { uploads: '' });
    const r = await fetch(create.url + '?uploads=', { method: 'POST', headers: Object.fromEntries(create.head.split('\r\n').slice(1).filter((l) => l.includes(': ') && !l.startsWith('host')).map((l) => [l.slice(0, l.indexOf(': ')), l.slice(l.indexOf(': ') + 2)])) });
    const uploadId = /<UploadId>([^<]+)</.exec(await r.text())?.[1];
    assert.ok(uploadId, 'CreateMultipartUpload');
    let req = await signed('PUT', 'multi', { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD', 'x-amz-checksum-crc32': 'AAAAAA==', 'content-length': String(data.length) }, { partNumber: '1', uploadId });
    expectClean('UploadPart BadDigest', await send(svc, req.url, req.head, data), /^HTTP\/1\.1 400/);
    const chunk = Buffer.concat([Buffer.from(`${data.length.toString(16)};chunk-signature=${'0'.repeat(64)}\r\n`), data, Buffer.from('\r\n')]);
    req = await signed('PUT', 'multi', { 'x-amz-content-sha256': 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD', 'content-encoding': 'aws-chunked', 'x-amz-decoded-content-length': String(3 * data.length), 'content-length': String(3 * chunk.length + 200) }, { partNumber: '2', uploadId });
    expectClean('UploadPart bad chunk signature', await send(svc, req.url, req.head, chunk), /^HTTP\/1\.1 403/);
  });

  it('service proxy PUT and /v1/blob PUT over the size cap mid-body', async () => {
    const over = Buffer.alloc(CAP + 100_000, 1);
    const chunked = Buffer.concat([Buffer.from(`${over.length.toString(16)}\r\n`), over]);
    const proxy = `PUT /v1/cache/1/toolarge HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nTransfer-Encoding: chunked\r\n\r\n`;
    expectClean('proxy PUT', await send(svc, svc.url, proxy, chunked), /^HTTP\/1\.1 413/);
    // HTTP chunk framing that breaks mid-body (a chunk size `zz`): Node's parser answers 400 and closes
    // the connection itself, so the upload ends with it (its file is removed as the socket closes)
    const framed = Buffer.concat([Buffer.from(`${data.length.toString(16)}\r\n`), data, Buffer.from('\r\nzz\r\n')]);
    const f = await send(svc, svc.url, proxy.replace('toolarge', 'framing'), framed);
    assert.match(f.head, /^HTTP\/1\.1 400/);
    f.socket.resume();
    if (!f.socket.destroyed) await new Promise((r) => f.socket.once('close', r));
    for (let i = 0; i < 1200 && (await tempFiles(svc.dataDir)).length > 0; i++) await new Promise((r) => setTimeout(r, 50)); // a hang guard, not a timing claim
    assert.deepEqual(await tempFiles(svc.dataDir), []);
    const presigned = await fetch(`${svc.url}/v1/presign`, {
      method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: JSON.stringify({ operation: 'upload', key: 'toolarge-blob', projectId: '1' }),
    }).then((x) => x.json() as Promise<{ url: string; headers: Record<string, string> }>);
    const blob = `PUT ${presigned.url.slice(svc.url.length)} HTTP/1.1\r\nHost: x\r\n${Object.entries(presigned.headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}Transfer-Encoding: chunked\r\n\r\n`;
    expectClean('/v1/blob PUT', await send(svc, svc.url, blob, chunked), /^HTTP\/1\.1 413/);
  });
});
