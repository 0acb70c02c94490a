/**
 * A small verifying GCS XML-API endpoint on 127.0.0.1 for tests (no GCS emulator runs here).
 * Every request must carry a signed URL that passes ./gcs-verifier.ts; PUT enforces
 * x-goog-content-length-range like GCS (400 EntityTooLarge, nothing stored); objects live in memory
 * and come back on GET/HEAD with x-goog-meta-*; GET honours single byte ranges.
 * Expired URLs get 400 ExpiredToken (what GCS answers), bad signatures 403 SignatureDoesNotMatch.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { createHash, type KeyObject } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { verifySignedRequest, type Verdict } from './gcs-verifier.ts';

export interface StoredObject {
  body: Buffer;
  contentType: string;
  metadata: Record<string, string>;
  lastModified: Date;
  etag: string;
}

export interface GcsXmlServer {
  endpoint: string;
  port: number;
  /** bucket → object name → object */
  buckets: Map<string, Map<string, StoredObject>>;
  /** Every verdict, in order (for tests that want to see what was checked). */
  verdicts: Array<{ method: string; path: string; verdict: Verdict; status: number }>;
  keys: Map<string, KeyObject>;
  stop(): Promise<void>;
}

function xmlError(res: ServerResponse, status: number, code: string, message: string): void {
  const body = `<?xml version='1.0' encoding='UTF-8'?><Error><Code>${code}</Code><Message>${message.replace(/[<&]/g, '')}</Message></Error>`;
  res.writeHead(status, { 'content-type': 'application/xml; charset=UTF-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

export async function startGcsXmlServer(opts: { keys: Map<string, KeyObject>; buckets: string[] }): Promise<GcsXmlServer> {
  const buckets = new Map<string, Map<string, StoredObject>>(opts.buckets.map((b) => [b, new Map()]));
  const verdicts: GcsXmlServer['verdicts'] = [];
  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: Error) => {
      if (!res.headersSent) xmlError(res, 500, 'InternalError', err.message);
      else res.destroy();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const rawUrl = req.url ?? '/';
    const rawPath = rawUrl.split('?')[0];
    const segments = rawPath.split('/').slice(1);
    const bucketName = decodeURIComponent(segments[0] ?? '');
    const objectName = segments.slice(1).map(decodeURIComponent).join('/');
    const method = req.method ?? 'GET';
    const verdict = verifySignedRequest({ method, rawUrl, headers: req.headers }, opts.keys);
    const record = (status: number): void => {
      verdicts.push({ method, path: rawPath, verdict, status });
    };
    if (!verdict.ok) {
      req.resume();
      const status = verdict.code === 'ExpiredToken' || verdict.code === 'MalformedSecurityHeader' ? 400 : 403;
      record(status);
      return xmlError(res, status, verdict.code, verdict.reason);
    }
    const bucket = buckets.get(bucketName);
    if (!bucket) {
      req.resume();
      record(404);
      return xmlError(res, 404, 'NoSuchBucket', 'The specified bucket does not exist.');
    }
    if (!objectName) {
      req.resume();
      record(400);
      return xmlError(res, 400, 'InvalidArgument', 'bucket operations are not supported here');
    }

    if (method === 'PUT') {
      const range = req.headers['x-goog-content-length-range'];
      let min = 0;
      let max = Infinity;
      if (typeof range === 'string') {
        const m = /^\s*(\d+)\s*,\s*(\d+)\s*$/.exec(range);
        if (!m) {
          req.resume();
          record(400);
          return xmlError(res, 400, 'InvalidArgument', 'bad x-goog-content-length-range');
        }
        min = Number(m[1]);
        max = Number(m[2]);
      }
      const declared = req.headers['content-length'];
      if (declared !== undefined && (Number(declared) > max || Number(declared) < min)) {
        req.resume();
        record(400);
        return xmlError(res, 400, 'EntityTooLarge', 'Your proposed upload is larger than the maximum object size specified in your Policy Document.');
      }
      const chunks: Buffer[] = [];
      let size = 0;
      let tooBig = false;
      try {
        for await (const chunk of req) {
          size += (chunk as Buffer).length;
          if (size > max) tooBig = true;
          if (!tooBig) chunks.push(chunk as Buffer);
        }
      } catch {
        // Client aborted: like GCS, an incomplete single-request upload creates no object.
        record(499);
        return;
      }
      if (tooBig || size < min) {
        record(400);
        return xmlError(res, 400, 'EntityTooLarge', 'Your proposed upload is larger than the maximum object size specified in your Policy Document.');
      }
      const body = Buffer.concat(chunks);
      const metadata: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) {
        if (k.startsWith('x-goog-meta-') && typeof v === 'string') metadata[k.slice(12)] = v;
      }
      const etag = `"${createHash('md5').update(body).digest('hex')}"`;
      bucket.set(objectName, {
        body,
        contentType: String(req.headers['content-type'] ?? 'application/octet-stream'),
        metadata,
        lastModified: new Date(Math.floor(Date.now() / 1000) * 1000),
        etag,
      });
      record(200);
      res.writeHead(200, { etag, 'content-length': 0 });
      return void res.end();
    }

    if (method !== 'GET' && method !== 'HEAD') {
      req.resume();
      record(405);
      return xmlError(res, 405, 'MethodNotAllowed', 'method not allowed');
    }
    req.resume();
    const obj = bucket.get(objectName);
    if (!obj) {
      record(404);
      if (method === 'HEAD') {
        res.writeHead(404);
        return void res.end();
      }
      return xmlError(res, 404, 'NoSuchKey', 'The specified key does not exist.');
    }
    const headers: Record<string, string | number> = {
      'content-type': obj.contentType,
      etag: obj.etag,
      'last-modified': obj.lastModified.toUTCString(),
      'accept-ranges': 'bytes',
      'x-goog-stored-content-length': obj.body.length,
    };
    for (const [k, v] of Object.entries(obj.metadata)) headers[`x-goog-meta-${k}`] = v;
    let start = 0;
    let end = obj.body.length - 1;
    let status = 200;
    const range = req.headers.range;
    if (method === 'GET' && typeof range === 'string') {
      const m = /^bytes=(\d*)-(\d*)$/.exec(range.trim());
      if (m && (m[1] || m[2])) {
        if (m[1]) {
          start = Number(m[1]);
          if (m[2]) end = Math.min(Number(m[2]), end);
        } else {
          start = Math.max(0, obj.body.length - Number(m[2]));
        }
        if (start >= obj.body.length || start > end) {
          record(416);
          return xmlError(res, 416, 'InvalidRange', 'The requested range cannot be satisfied.');
        }
        status = 206;
        headers['content-range'] = `bytes ${start}-${end}/${obj.body.length}`;
      }
    }
    headers['content-length'] = end - start + 1;
    record(status);
    res.writeHead(status, headers);
    res.end(method === 'HEAD' ? undefined : obj.body.subarray(start, end + 1));
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    buckets,
    verdicts,
    keys: opts.keys,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
