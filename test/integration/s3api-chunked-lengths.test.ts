/**
 * aws-chunked bodies whose `x-amz-decoded-content-length` lies (session 9 review): declared smaller
 * or larger than the chunks carry, 0, missing, not a number, negative, past 2^53; the Content-Length
 * of the framing short; on PutObject and UploadPart, signed chunks (STREAMING-AWS4-HMAC-SHA256-PAYLOAD)
 * and unsigned ones with a trailer (STREAMING-UNSIGNED-PAYLOAD-TRAILER). Each is refused with an S3
 * error, MaxUploadedArchiveSize holds, and afterwards the store holds no object, temporary file or
 * staged part of it. Raw signed requests against the front door, local backend and Ceph RGW.
 */
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CreateMultipartUploadCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { SignatureV4 } from '@smithy/signature-v4';
import { Hash } from '@smithy/hash-node';
import { stagingRoot } from '../../src/s3api/multipart.ts';
import { rgw, type Rgw } from '../support/rgw.ts';
import { startTestService, type TestService } from '../support/service.ts';

const AK = 'CHUNKLIESKEY0001';
const SK = 'chunk-lies-secret-0001';
const CAP = 100_000;
const BUCKET = 'runner-cache';
const NS = 'runner/chunklies/project/1';
const EMPTY = createHash('sha256').digest('hex');
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const hmac = (k: Buffer | string, s: string): Buffer => createHmac('sha256', k).update(s).digest();

type Mode = 'signed' | 'unsigned-trailer';

/** The chunks as the client frames them (signed with the chain that starts at `seed`). */
function frame(chunks: Buffer[], mode: Mode, seed: string, amzDate: string, scope: string, key: Buffer): Buffer {
  const out: Buffer[] = [];
  let prev = seed;
  for (const c of [...chunks, Buffer.alloc(0)]) {
    if (mode === 'signed') {
      const sig = hmac(key, `AWS4-HMAC-SHA256-PAYLOAD\n${amzDate}\n${scope}\n${prev}\n${EMPTY}\n${sha(c)}`).toString('hex');
      prev = sig;
      out.push(Buffer.from(`${c.length.toString(16)};chunk-signature=${sig}\r\n`));
    } else out.push(Buffer.from(`${c.length.toString(16)}\r\n`));
    if (c.length > 0) out.push(c, Buffer.from('\r\n'));
  }
  out.push(Buffer.from('\r\n'));
  return Buffer.concat(out);
}

interface Sent { status: number; body: string }

/** A PUT of `chunks` aws-chunked, `decoded` as x-amz-decoded-content-length (undefined: none). */
async function chunkedPut(url: string, chunks: Buffer[], mode: Mode, decoded: string | undefined, contentLength?: (framed: number) => number): Promise<Sent> {
  const u = new URL(url);
  const signer = new SignatureV4({ credentials: { accessKeyId: AK, secretAccessKey: SK }, region: 'us-east-1', service: 's3', sha256: Hash.bind(null, 'sha256'), uriEscapePath: false });
  const payload = mode === 'signed' ? 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD' : 'STREAMING-UNSIGNED-PAYLOAD-TRAILER';
  // Content-Length is not signed: its framing length is known only after the seed signature.
  const headers: Record<string, string> = { host: u.host, 'x-amz-content-sha256': payload, 'content-encoding': 'aws-chunked' };
  if (decoded !== undefined) headers['x-amz-decoded-content-length'] = decoded;
  const query: Record<string, string> = {};
  u.searchParams.forEach((v, k) => (query[k] = v));
  const signed = await signer.sign({ method: 'PUT', protocol: 'http:', hostname: u.hostname, port: Number(u.port), path: u.pathname, query, headers });
  const h = signed.headers as Record<string, string>;
  const amzDate = h['x-amz-date'];
  const seed = /Signature=([0-9a-f]{64})/.exec(h.authorization)?.[1] as string;
  const day = amzDate.slice(0, 8);
  const scope = `${day}/us-east-1/s3/aws4_request`;
  const key = hmac(hmac(hmac(hmac(`AWS4${SK}`, day), 'us-east-1'), 's3'), 'aws4_request');
  const body = frame(chunks, mode, seed, amzDate, scope, key);
  const length = contentLength ? contentLength(body.length) : body.length;
  return new Promise((res, rej) => {
    const req = httpRequest(url, { method: 'PUT', headers: { ...h, 'content-length': String(length) } }, (r) => {
      let text = '';
      r.on('data', (c: Buffer) => (text += c.toString()));
      r.on('end', () => res({ status: r.statusCode ?? 0, body: text }));
    });
    req.on('error', rej);
    req.end(body.subarray(0, Math.min(length, body.length)));
  });
}

const code = (xml: string): string | undefined => /<Code>([^<]+)<\/Code>/.exec(xml)?.[1];
const hundredK = (): Buffer[] => [Buffer.alloc(60_000, 1), Buffer.alloc(40_000, 2)];

/** Each lie: what the client sends and the S3 error code(s) it must get. */
const LIES: Array<{ name: string; chunks: () => Buffer[]; decoded: string | undefined; codes: string[]; cl?: (n: number) => number }> = [
  { name: 'declared smaller than the chunks carry', chunks: hundredK, decoded: '10', codes: ['IncompleteBody'] },
  { name: 'declared larger than the chunks carry', chunks: () => [Buffer.alloc(50_000, 1)], decoded: '99000', codes: ['IncompleteBody'] },
  { name: 'declared 0', chunks: hundredK, decoded: '0', codes: ['IncompleteBody'] },
  { name: 'not a number', chunks: hundredK, decoded: '1e5', codes: ['InvalidArgument'] },
  { name: 'negative', chunks: hundredK, decoded: '-1', codes: ['InvalidArgument'] },
  { name: 'hexadecimal', chunks: hundredK, decoded: '0x186a0', codes: ['InvalidArgument'] },
  { name: 'two values', chunks: hundredK, decoded: '100000, 100000', codes: ['InvalidArgument'] },
  { name: 'past 2^53', chunks: hundredK, decoded: '9007199254740993', codes: ['InvalidArgument'] },
  { name: 'over the cap, under 2^53', chunks: hundredK, decoded: '9007199254740991', codes: ['EntityTooLarge'] },
  { name: '20 digits', chunks: hundredK, decoded: '18446744073709551616', codes: ['InvalidArgument', 'EntityTooLarge'] },
  // Under the cap as declared, over it as sent: 150,000 bytes declared as 50,000.
  { name: 'under the cap as declared, over it in the chunks', chunks: () => [Buffer.alloc(75_000, 1), Buffer.alloc(75_000, 2)], decoded: '50000', codes: ['IncompleteBody', 'EntityTooLarge'] },
  // No declared length at all: the cap is counted on the bytes.
  { name: 'missing, chunks over the cap', chunks: () => [Buffer.alloc(75_000, 1), Buffer.alloc(75_000, 2)], decoded: undefined, codes: ['EntityTooLarge', 'MissingContentLength'] },
  // The framing cut short by its Content-Length: the final chunk never comes.
  { name: 'Content-Length shorter than the framing', chunks: hundredK, decoded: '100000', codes: ['IncompleteBody'], cl: (n) => n - 200 },
];

function suite(name: string, backend: () => Promise<{ cache: string; list: (svc: TestService) => Promise<string[]> }>): void {
  describe(`aws-chunked lengths that lie: ${name}`, () => {
    let svc: TestService;
    let s3: S3Client;
    let listBackend: (svc: TestService) => Promise<string[]>;
    const url = (key: string, query = ''): string => `${svc.s3ApiUrl}/${BUCKET}/${NS}/${key}${query}`;

    before(async () => {
      const b = await backend();
      listBackend = b.list;
      const door = `[cachegate.s3_api]\n  listen = "127.0.0.1:0"\n  [[cachegate.s3_api.keys]]\n    access_key = "${AK}"\n    secret_key = "${SK}"\n    runner = "r1"\n`;
      svc = await startTestService({ toml: `[[runners]]\n  name = "r1"\n  token = "glrt-chunklies-token"\n  [runners.cache]\n    MaxUploadedArchiveSize = ${CAP}\n${b.cache}\n${door}` });
      s3 = new S3Client({ endpoint: svc.s3ApiUrl, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: AK, secretAccessKey: SK }, maxAttempts: 1 });
    });
    after(async () => {
      s3?.destroy();
      await svc?.stop();
    });

    /** Nothing of the refused requests: no object through the door, none on the backend, no staged part. */
    async function nothingLeft(what: string): Promise<void> {
      const listed = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: `${NS}/` }));
      assert.deepEqual((listed.Contents ?? []).map((o) => o.Key), [], `${what}: listed through the door`);
      assert.deepEqual(await listBackend(svc), [], `${what}: on the backend`);
      const staged = await readdir(stagingRoot(svc.state().config.service.dataDir), { recursive: true }).catch(() => []);
      assert.deepEqual(staged.filter((f) => !/^[0-9a-f]{32}(\/upload\.json)?$/.test(String(f))), [], `${what}: staged parts or temporary files`);
    }

    it('the control: a truthful signed and unsigned-trailer PUT is stored', async () => {
      for (const mode of ['signed', 'unsigned-trailer'] as const) {
        const r = await chunkedPut(url(`ok-${mode}`), hundredK(), mode, '100000');
        assert.equal(r.status, 200, r.body);
        await s3.send(new (await import('@aws-sdk/client-s3')).DeleteObjectCommand({ Bucket: BUCKET, Key: `${NS}/ok-${mode}` }));
      }
      await nothingLeft('after the control');
    });

    for (const op of ['PutObject', 'UploadPart'] as const) {
      it(`${op}: every lie is refused with an S3 error and leaves nothing behind`, async () => {
        for (const mode of ['signed', 'unsigned-trailer'] as const) {
          for (const lie of LIES) {
            const key = `lie-${op}-${mode}`;
            let target = url(key);
            if (op === 'UploadPart') {
              const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: `${NS}/${key}` }));
              target = url(key, `?partNumber=1&uploadId=${UploadId}`);
            }
            const r = await chunkedPut(target, lie.chunks(), mode, lie.decoded, lie.cl);
            const what = `${op} ${mode} ${lie.name}: ${r.status} ${r.body.slice(0, 200)}`;
            assert.ok(r.status >= 400 && r.status < 500, what);
            assert.ok(lie.codes.includes(code(r.body) ?? ''), what);
            await nothingLeft(what);
          }
        }
      });
    }
  });
}

suite('local backend', async () => ({
  cache: '    Type = "local"',
  // Every file under the objects directory: objects (named by hash) and temporary files alike.
  list: async (svc) => (await readdir(join(svc.dataDir, 'data', 'objects'), { recursive: true, withFileTypes: true }).catch(() => [])).filter((d) => d.isFile()).map((d) => d.name),
}));

suite('Ceph RGW', async () => {
  const server: Rgw = await rgw();
  const bucket = await server.bucket('chunklies');
  return {
    cache: `    Type = "s3"\n${server.toml(bucket)}`,
    list: async () => {
      const listed = await server.client.send(new ListObjectsV2Command({ Bucket: bucket }));
      const { ListMultipartUploadsCommand } = await import('@aws-sdk/client-s3');
      const uploads = await server.client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
      return [...(listed.Contents ?? []).map((o) => `object ${o.Key}`), ...(uploads.Uploads ?? []).map((u) => `upload ${u.Key}`)];
    },
  };
});
