/**
 * SigV4 query presigning for GET/HEAD/PUT without S3Client or its middleware stack (sigv4.ts, checked
 * byte for byte against @smithy/signature-v4): see bench/presign-s3.ts for the throughput against
 * getSignedUrl from @aws-sdk/s3-request-presigner.
 *
 * PUT signs, and returns as headers the client must send: x-amz-meta-*, the SSE headers and, when the
 * caller states the size, content-length. Content-Type is not signed. The payload is UNSIGNED-PAYLOAD.
 */
import type { PresignInput, PresignedRequest } from '../../src/adapter.ts';
import type { S3Settings } from '../../src/config/types.ts';
import { badRequest, tooLarge } from '../../src/errors.ts';
import { REFRESH_MARGIN_MS } from './credentials.ts';
import type { CredentialProvider, Credentials } from './credentials.ts';
import { encodeObjectPath } from './endpoint.ts';
import type { Target } from './endpoint.ts';
import { presignQuery } from '../../src/sign/sigv4.ts';

/** SigV4's limit for presigned URLs: 7 days. */
export const MAX_PRESIGN_SECONDS = 604_800;

export interface PresignerOptions {
  s3: S3Settings;
  credentials: CredentialProvider;
  /** Resolves (and caches) where requests go; the region may need GetBucketLocation the first time. */
  target: () => Target | Promise<Target>;
  maxUploadedArchiveSize: number;
  /** S3 named the bucket's region in a redirect (direct-get.ts, direct-put.ts): sign for it from now on. */
  regionMoved?: (region: string) => void;
}

export class S3Presigner {
  readonly #opts: PresignerOptions;
  /** SSE headers every PUT carries (signed, sent by the client). */
  readonly #sseHeaders: Record<string, string>;

  constructor(opts: PresignerOptions) {
    this.#opts = opts;
    const sse: Record<string, string> = {};
    if (opts.s3.serverSideEncryption !== '') {
      sse['x-amz-server-side-encryption'] = opts.s3.serverSideEncryption;
      if (opts.s3.serverSideEncryption !== 'AES256' && opts.s3.serverSideEncryptionKeyId !== '') {
        sse['x-amz-server-side-encryption-aws-kms-key-id'] = opts.s3.serverSideEncryptionKeyId;
      }
    }
    this.#sseHeaders = sse;
  }

  #creds: Credentials | undefined;

  /** Whether a request signed by this presigner has been answered 2xx yet (so its region is right). */
  regionConfirmed = false;

  /** The region S3 named in a redirect answer (x-amz-bucket-region) replaces the configured or detected one. */
  regionMoved(region: string): void {
    this.#opts.regionMoved?.(region);
  }

  /**
   * Fast path without any await once the target and credentials are known (the common case): the
   * work is validation, one SHA-256 and one HMAC.
   */
  presign(input: PresignInput): Promise<PresignedRequest> {
    try {
      const t = this.#opts.target();
      const c = this.#creds;
      if (!(t instanceof Promise) && c !== undefined && fresh(c, Date.now())) return Promise.resolve(this.#sign(input, t, c));
      return this.#presignSlow(input, t);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  async #presignSlow(input: PresignInput, target: Target | Promise<Target>): Promise<PresignedRequest> {
    const t = await target;
    const c = await this.#opts.credentials();
    this.#creds = c;
    return this.#sign(input, t, c);
  }

  #sign(input: PresignInput, t: Target, creds: Credentials): PresignedRequest {
    const { method, objectName } = input;
    if (method !== 'GET' && method !== 'HEAD' && method !== 'PUT') throw badRequest(`cannot presign method ${String(method)}`);
    if (typeof objectName !== 'string' || objectName === '' || objectName.startsWith('/')) throw badRequest('invalid object name');
    let expiresIn = Math.floor(input.expiresIn);
    if (!Number.isFinite(expiresIn) || expiresIn < 1) throw badRequest('URL lifetime must be at least 1 second');
    if (expiresIn > MAX_PRESIGN_SECONDS) expiresIn = MAX_PRESIGN_SECONDS;

    const send: Record<string, string> = {};
    const signed: Record<string, string> = { host: t.host };
    if (method === 'PUT') {
      const len = input.contentLength;
      if (len !== undefined) {
        if (!Number.isSafeInteger(len) || len < 0) throw badRequest('contentLength must be a non-negative integer');
        const max = this.#opts.maxUploadedArchiveSize;
        if (max > 0 && len > max) throw tooLarge(len, max);
      }
      for (const k in input.metadata) send[`x-amz-meta-${k.toLowerCase()}`] = input.metadata[k];
      for (const k in this.#sseHeaders) send[k] = this.#sseHeaders[k];
      if (len !== undefined) send['content-length'] = String(len);
      for (const k in send) signed[k] = send[k];
    }

    const now = input.now ?? Date.now();
    const path = t.pathPrefix + encodeObjectPath(objectName);
    const query = presignQuery({ method, path, headers: signed, credentials: creds, region: t.region, service: t.signingName, now, expiresIn });
    let expiresAt = now + expiresIn * 1000;
    if (creds.expiration !== undefined && creds.expiration.getTime() < expiresAt) expiresAt = creds.expiration.getTime();
    return { url: `${t.protocol}//${t.host}${path}?${query}`, method, headers: send, expiresAt: new Date(expiresAt) };
  }
}

/** Cached credentials are used without asking the provider while they stay valid past the margin. */
function fresh(c: Credentials, now: number): boolean {
  return c.expiration === undefined || c.expiration.getTime() - REFRESH_MARGIN_MS > now;
}
