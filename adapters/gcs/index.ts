/**
 * Google Cloud Storage adapter: V4 (default) or V2 signed URLs for the XML API, and proxy mode
 * through the same signed URLs. See docs/gcs.md.
 */
import type { OutgoingHttpHeaders } from 'node:http';
import type {
  AdapterContext,
  ByteRange,
  CacheAdapter,
  GetResult,
  ObjectInfo,
  PresignInput,
  PresignMethod,
  PresignedRequest,
  PutInput,
} from '../../src/adapter.ts';
import type { GcsSettings } from '../../src/config/types.ts';
import { CacheGateError, badRequest, tooLarge } from '../../src/errors.ts';
import { resolveSigner, type AdcOptions, type GcsSigner } from './credentials.ts';
import { DEFAULT_ENDPOINT, V4_MAX_EXPIRES, signUrl } from './sign.ts';
import { classify, failure, infoFromHeaders, readText, send, sendBody, xmlCode } from './xml-api.ts';
import { TIMEOUTS, bounded } from '../timeouts.ts';

export interface GcsAdapterOptions extends AdcOptions {}

/** Lifetime of the URLs the adapter signs for its own proxy-mode requests. */
const INTERNAL_URL_LIFETIME = 900;
const READY_PROBE_OBJECT = '.cachegate/ready-probe';

const invalidConfig = (message: string): CacheGateError => new CacheGateError('invalid_config', 500, message);

export function parseEndpoint(endpoint: string): URL {
  let url: URL;
  try {
    url = new URL(endpoint || DEFAULT_ENDPOINT);
  } catch {
    throw invalidConfig(`gcs: Endpoint "${endpoint}" is not a URL (expected scheme://host[:port])`);
  }
  if ((url.protocol !== 'https:' && url.protocol !== 'http:') || url.pathname !== '/' || url.search || url.username) {
    throw invalidConfig(`gcs: Endpoint "${endpoint}" must be http(s)://host[:port] with no path, query or credentials`);
  }
  return url;
}

export async function createGcsAdapter(ctx: AdapterContext, options: GcsAdapterOptions = {}): Promise<CacheAdapter> {
  const settings = ctx.profile.cache.gcs;
  if (!settings) throw invalidConfig('gcs: profile has no [runners.cache.gcs] section');
  if (!settings.bucketName) throw invalidConfig('gcs: BucketName is required');
  const signer = await resolveSigner(settings, options);
  ctx.log.debug({ source: signer.source, version: settings.signatureVersion }, 'gcs adapter ready to sign');
  return new GcsAdapter(settings, signer, parseEndpoint(settings.endpoint), ctx.profile.cache.maxUploadedArchiveSize);
}

/** Headers a PUT signs and the client must send. */
export function uploadHeaders(metadata: Record<string, string>, maxSize: number): Record<string, string> {
  const headers: Record<string, string> = { 'Content-Type': 'application/octet-stream' };
  for (const [k, v] of Object.entries(metadata)) headers[`x-goog-meta-${k.toLowerCase()}`] = v;
  if (maxSize > 0) headers['x-goog-content-length-range'] = `0,${maxSize}`;
  return headers;
}

class GcsAdapter implements CacheAdapter {
  readonly kind = 'gcs';
  readonly #settings: GcsSettings;
  readonly #signer: GcsSigner;
  readonly #endpoint: URL;
  readonly #maxSize: number;
  /** When the bucket was last seen to exist (performance.now()). */
  #bucketSeenAt = -Infinity;

  constructor(settings: GcsSettings, signer: GcsSigner, endpoint: URL, maxSize: number) {
    this.#settings = settings;
    this.#signer = signer;
    this.#endpoint = endpoint;
    this.#maxSize = maxSize;
  }

  #sign(method: PresignMethod, objectName: string, headers: Record<string, string>, expiresIn: number, now: number): string | Promise<string> {
    return signUrl({
      version: this.#settings.signatureVersion === 'v2' ? 'v2' : 'v4',
      method,
      endpoint: this.#endpoint,
      bucket: this.#settings.bucketName,
      objectName,
      headers,
      expiresIn,
      now,
      email: this.#signer.email,
      sign: this.#signer.sign,
    });
  }

  async presign(input: PresignInput): Promise<PresignedRequest> {
    const now = input.now ?? Date.now();
    const expiresIn = Math.min(Math.floor(input.expiresIn), V4_MAX_EXPIRES);
    if (!(expiresIn >= 1)) throw badRequest(`URL lifetime must be at least 1 second, not ${input.expiresIn}`);
    let headers: Record<string, string> = {};
    if (input.method === 'PUT') {
      const max = this.#maxSize;
      if (max > 0 && input.contentLength !== undefined && input.contentLength > max) throw tooLarge(input.contentLength, max);
      headers = uploadHeaders(input.metadata, max);
    }
    const url = await this.#sign(input.method, input.objectName, headers, expiresIn, now);
    return { url, method: input.method, headers, expiresAt: new Date((Math.floor(now / 1000) + expiresIn) * 1000) };
  }

  async head(objectName: string): Promise<ObjectInfo | null> {
    const url = await this.#sign('HEAD', objectName, {}, INTERNAL_URL_LIFETIME, Date.now());
    const res = await send(url, 'HEAD', {});
    res.resume();
    if (res.statusCode === 200) return infoFromHeaders(res);
    if (res.statusCode === 404) {
      // A HEAD's 404 has no body to tell a missing object from a missing bucket: ask once a minute.
      if (performance.now() - this.#bucketSeenAt >= 60_000) await this.ready();
      return null;
    }
    throw await failure(res, 'HEAD', this.#settings.bucketName);
  }

  async get(objectName: string, range?: ByteRange): Promise<GetResult | null> {
    const url = await this.#sign('GET', objectName, {}, INTERNAL_URL_LIFETIME, Date.now());
    const headers: OutgoingHttpHeaders = {};
    if (range) headers.range = `bytes=${range.start}-${range.end ?? ''}`;
    const res = await send(url, 'GET', headers);
    if (res.statusCode === 404) {
      const code = xmlCode(await readText(res));
      if (code === 'NoSuchBucket') throw classify(404, code, 'GET', this.#settings.bucketName);
      return null;
    }
    if (res.statusCode === 200) return { info: infoFromHeaders(res), body: res };
    if (res.statusCode === 206) {
      const m = /bytes (\d+)-(\d+)\//.exec(String(res.headers['content-range'] ?? ''));
      const result: GetResult = { info: infoFromHeaders(res), body: res };
      if (m) result.range = { start: Number(m[1]), end: Number(m[2]) };
      return result;
    }
    throw await failure(res, 'GET', this.#settings.bucketName);
  }

  async put(objectName: string, input: PutInput): Promise<ObjectInfo> {
    const max = input.maxSize;
    if (max > 0 && input.contentLength !== undefined && input.contentLength > max) {
      input.body.resume();
      throw tooLarge(input.contentLength, max);
    }
    const signed = uploadHeaders(input.metadata, max);
    if (input.contentType) signed['Content-Type'] = input.contentType;
    const url = await this.#sign('PUT', objectName, signed, INTERNAL_URL_LIFETIME, Date.now());
    const headers: OutgoingHttpHeaders = { ...signed };
    if (input.contentLength !== undefined) headers['content-length'] = input.contentLength;
    else headers['transfer-encoding'] = 'chunked';
    const res = await sendBody(url, headers, input.body, { maxSize: max, declaredLength: input.contentLength });
    if (res.statusCode === 200 || res.statusCode === 201) {
      res.resume();
      return (await this.head(objectName)) ?? { size: input.contentLength ?? 0, lastModified: new Date(), metadata: { ...input.metadata } };
    }
    if (res.statusCode === 400 || res.statusCode === 413) {
      const code = xmlCode(await readText(res));
      if (code === 'EntityTooLarge' || res.statusCode === 413) throw tooLarge(input.contentLength ?? `more than ${max}`, max);
      throw new CacheGateError('backend_error', 502, `gcs: PUT failed (${res.statusCode}${code ? ' ' + code : ''})`);
    }
    throw await failure(res, 'PUT', this.#settings.bucketName);
  }

  /** One small signed GET (signing may call signBlob), its error body included, within TIMEOUTS.callMs. */
  ready(): Promise<void> {
    const bucket = this.#settings.bucketName;
    return bounded(`gcs: bucket ${bucket}`, TIMEOUTS.callMs, async () => {
      const url = await this.#sign('GET', READY_PROBE_OBJECT, {}, INTERNAL_URL_LIFETIME, Date.now());
      const res = await send(url, 'GET', {});
      if (res.statusCode === 200) {
        res.resume();
        this.#bucketSeenAt = performance.now();
        return;
      }
      const code = xmlCode(await readText(res));
      if (res.statusCode === 404 && code !== 'NoSuchBucket') {
        this.#bucketSeenAt = performance.now();
        return;
      }
      throw classify(res.statusCode ?? 0, code, `bucket ${bucket}`, bucket);
    });
  }
}
