/**
 * Secrets while the backend fails (session 9 review): an S3 profile whose backend is down (refused
 * connections), hangs, or answers 5xx with an error that echoes the request it got (its Authorization
 * header with the signature, the presigned query, the session token: what a misconfigured proxy's
 * debug page or a hostile backend sends). The service's proxy routes, /v1/presign, /readyz and the
 * S3 front door run against it; then every log line (debug) and every answer (status, headers, body)
 * is searched for the backend's secret key, the front door's secret, the runner token, any signature
 * the backend was sent, and any `Signature=` / `X-Amz-Signature` / `Bearer` at all.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { CreateMultipartUploadCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { startTestService, type TestService } from '../support/service.ts';

const rnd = (): string => randomBytes(8).toString('hex');
const TOKEN = `glrt-outagerun-${rnd()}`;
const BACKEND_AK = `OUTAGEAK${rnd().toUpperCase()}`;
const BACKEND_SK = `outage-backend-secret-${rnd()}`;
const DOOR_AK = 'OUTAGEDOORKEY001';
const DOOR_SK = `outage-door-secret-${rnd()}`;
const KEY = 'runner/outagerun/project/1/k';

type Mode = 'echo-xml' | 'echo-html' | 'hang' | 'refuse';

/** A backend that fails in `mode`; in the echo modes its 5xx body repeats what it was sent. */
async function hostileBackend(): Promise<{ address: string; setMode: (m: Mode) => void; seen: string[]; close: () => Promise<void> }> {
  let mode: Mode = 'echo-xml';
  const seen: string[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    req.resume();
    const echo = `${req.method} ${req.url} authorization=${req.headers.authorization ?? ''} token=${req.headers['x-amz-security-token'] ?? ''} sha=${req.headers['x-amz-content-sha256'] ?? ''}`;
    seen.push(echo);
    if (mode === 'hang') return; // never answers
    if (mode === 'echo-xml') {
      res.writeHead(503, { 'content-type': 'application/xml', 'x-debug-request': echo.replace(/[^\x20-\x7e]/g, '?') });
      res.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>${echo.replace(/[<&]/g, '_')}</Message><Resource>${req.url}</Resource></Error>`);
    } else {
      res.writeHead(500, { 'content-type': 'text/html' });
      res.end(`<html><body><h1>upstream error</h1><pre>${echo}</pre></body></html>`);
    }
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    if (mode === 'refuse') s.destroy();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    setMode: (m) => {
      mode = m;
      for (const s of sockets) s.destroy();
    },
    seen,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

interface Answer { label: string; text: string }

function call(url: string, label: string, method: string, headers: Record<string, string> = {}, body?: Buffer): Promise<Answer> {
  return new Promise((res) => {
    const req = httpRequest(url, { method, headers }, (r) => {
      let text = `HTTP ${r.statusCode} ${r.statusMessage}\n${r.rawHeaders.join('\n')}\n`;
      r.on('data', (c: Buffer) => (text += c.toString('latin1')));
      r.on('end', () => res({ label, text }));
      r.on('error', () => res({ label, text }));
    });
    req.on('error', (e) => res({ label, text: `error ${e.message}` }));
    req.end(body);
  });
}

describe('secrets during a backend outage (down, hanging, 5xx that echoes the request)', () => {
  let svc: TestService;
  let backend: Awaited<ReturnType<typeof hostileBackend>>;
  let door: S3Client;
  const answers: Answer[] = [];

  before(async () => {
    backend = await hostileBackend();
    svc = await startTestService({
      toml: `
[cachegate]
  backend_timeout = 2
[[runners]]
  name = "o"
  token = "${TOKEN}"
  [runners.cache]
    Type = "s3"
    s3 = { ServerAddress = "${backend.address}", AccessKey = "${BACKEND_AK}", SecretKey = "${BACKEND_SK}", BucketName = "outage", BucketLocation = "us-east-1", Insecure = true }
[cachegate.s3_api]
  listen = "127.0.0.1:0"
  [[cachegate.s3_api.keys]]
    access_key = "${DOOR_AK}"
    secret_key = "${DOOR_SK}"
    runner = "o"
`,
    });
    door = new S3Client({ endpoint: svc.s3ApiUrl, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: DOOR_AK, secretAccessKey: DOOR_SK }, maxAttempts: 1, requestChecksumCalculation: 'WHEN_REQUIRED' });
  });
  after(async () => {
    door?.destroy();
    await svc?.stop();
    await backend?.close();
  });

  it('no secret or signature in any log line or answer', async () => {
    const bearer = { authorization: `Bearer ${TOKEN}` };
    const cache = `${svc.url}/v1/cache/1/k`;
    for (const mode of ['echo-xml', 'echo-html', 'refuse', 'hang'] as Mode[]) {
      backend.setMode(mode);
      answers.push(await call(cache, `${mode} proxy PUT`, 'PUT', { ...bearer, 'content-length': '1000' }, randomBytes(1000)));
      answers.push(await call(cache, `${mode} proxy GET`, 'GET', bearer));
      answers.push(await call(cache, `${mode} proxy HEAD`, 'HEAD', bearer));
      answers.push(await call(`${svc.url}/readyz`, `${mode} readyz`, 'GET'));
      const presign = JSON.stringify({ operation: 'download', key: 'k', projectId: '1' });
      answers.push(await call(`${svc.url}/v1/presign`, `${mode} presign`, 'POST', { ...bearer, 'content-type': 'application/json' }, Buffer.from(presign)));
      for (const [what, cmd] of [
        ['GET', new GetObjectCommand({ Bucket: 'runner-cache', Key: KEY })],
        ['HEAD', new HeadObjectCommand({ Bucket: 'runner-cache', Key: KEY })],
        ['PUT', new PutObjectCommand({ Bucket: 'runner-cache', Key: KEY, Body: randomBytes(1000) })],
        ['LIST', new ListObjectsV2Command({ Bucket: 'runner-cache', Prefix: 'runner/outagerun/' })],
        ['CreateMultipartUpload+PUT part', new CreateMultipartUploadCommand({ Bucket: 'runner-cache', Key: KEY })],
      ] as const) {
        const r = await door.send(cmd as never).then((x: unknown) => JSON.stringify(x), (e: Error & { $response?: { body?: unknown } }) => `${e.name} ${e.message} ${JSON.stringify(e)}`);
        answers.push({ label: `${mode} door ${what}`, text: String(r) });
      }
    }
    backend.setMode('echo-xml');
    assert.ok(backend.seen.some((s) => /Signature=[0-9a-f]{64}/.test(s)), 'the backend was sent signed requests (and echoed them)');

    const signatures = new Set<string>();
    for (const s of backend.seen) for (const m of s.matchAll(/Signature=([0-9a-f]{64})/g)) signatures.add(m[1]);
    const secrets: Array<[string, string]> = [['backend secret key', BACKEND_SK], ['door secret key', DOOR_SK], ['runner token', TOKEN.slice(5)]];
    for (const sig of signatures) secrets.push(['a signature the backend was sent', sig]);
    const places: Array<[string, string]> = [...svc.logs.map((l, i) => [`log line ${i}`, l] as [string, string]), ...answers.map((a) => [`answer: ${a.label}`, a.text] as [string, string])];
    const found: string[] = [];
    for (const [where, text] of places) {
      for (const [what, secret] of secrets) if (text.includes(secret)) found.push(`${where}: ${what}`);
      // A presign answer hands out a signed URL: that is its purpose (and it is not one the backend was sent).
      if (where.endsWith(' presign')) continue;
      for (const pattern of [/Signature=/i, /Credential=/i, /X-Amz-Security-Token=/i, /Bearer /]) if (pattern.test(text)) found.push(`${where}: ${pattern} in ${JSON.stringify(text.slice(0, 400))}`);
    }
    assert.deepEqual(found, []);
  });
});
