/**
 * SigV4 query presigning for GET/HEAD/PUT with @smithy/signature-v4 used directly (no S3Client, no
 * middleware stack): about 15× the throughput of getSignedUrl from @aws-sdk/s3-request-presigner.
 *
 * PUT signs, and returns as headers the client must send: x-amz-meta-*, the SSE headers and, when the
 * caller states the size, content-length. Content-Type is not signed. The payload is UNSIGNED-PAYLOAD.
 */
import { Sha256 } from './sha256.ts';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import type { PresignInput, PresignedRequest } from '../../src/adapter.ts';
import type { S3Settings } from '../../src/config/types.ts';
import { badRequest, tooLarge } from '../../src/errors.ts';
import type { CredentialProvider } from './credentials.ts';
import { encodeKeySegment, encodeObjectPath } from './endpoint.ts';
import type { Target } from './endpoint.ts';

/** SigV4's limit for presigned URLs: 7 days. */
export const MAX_PRESIGN_SECONDS = 604_800;

const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD';
const SHA256_HEADER = 'x-amz-content-sha256';
const UNSIGNABLE = new Set([SHA256_HEADER]);

export interface PresignerOptions {
  s3: S3Settings;
  credentials: CredentialProvider;
  /** Resolves (and caches) where requests go; the region may need GetBucketLocation the first time. */
  target: () => Target | Promise<Target>;
  maxUploadedArchiveSize: number;
}

export class S3Presigner {
  readonly #opts: PresignerOptions;
  readonly #signer: SignatureV4;
  /** SSE headers every PUT carries (signed, sent by the client). */
  readonly #sseHeaders: Record<string, string>;

  constructor(opts: PresignerOptions) {
    this.#opts = opts;
    this.#signer = new SignatureV4({
      credentials: opts.credentials,
      region: 'us-east-1', // always overridden per request by signingRegion
      service: 's3',
      sha256: Sha256,
      uriEscapePath: false, // S3: the path is already URI-encoded once, and never normalized
      applyChecksum: false,
    });
    const sse: Record<string, string> = {};
    if (opts.s3.serverSideEncryption !== '') {
      sse['x-amz-server-side-encryption'] = opts.s3.serverSideEncryption;
      if (opts.s3.serverSideEncryption !== 'AES256' && opts.s3.serverSideEncryptionKeyId !== '') {
        sse['x-amz-server-side-encryption-aws-kms-key-id'] = opts.s3.serverSideEncryptionKeyId;
      }
    }
    this.#sseHeaders = sse;
  }

  async presign(input: PresignInput): Promise<PresignedRequest> {
    const { method, objectName } = input;
    if (method !== 'GET' && method !== 'HEAD' && method !== 'PUT') throw badRequest(`cannot presign method ${String(method)}`);
    if (typeof objectName !== 'string' || objectName === '' || objectName.startsWith('/')) throw badRequest('invalid object name');
    let expiresIn = Math.floor(input.expiresIn);
    if (!Number.isFinite(expiresIn) || expiresIn < 1) throw badRequest('URL lifetime must be at least 1 second');
    if (expiresIn > MAX_PRESIGN_SECONDS) expiresIn = MAX_PRESIGN_SECONDS;

    const send: Record<string, string> = {};
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
    }

    const t = await this.#opts.target();
    const now = input.now ?? Date.now();
    const request = new HttpRequest({
      method,
      protocol: t.protocol,
      hostname: t.hostname,
      port: t.port,
      path: t.pathPrefix + encodeObjectPath(objectName),
      headers: { ...send, host: t.host, [SHA256_HEADER]: UNSIGNED_PAYLOAD },
      query: {},
    });
    const signed = await this.#signer.presign(request, {
      expiresIn,
      signingDate: new Date(now),
      signingRegion: t.region,
      signingService: t.signingName,
      unsignableHeaders: UNSIGNABLE,
      // x-amz-* headers stay headers (the client sends them) instead of moving into the query.
      unhoistableHeaders: new Set(Object.keys(send).concat(SHA256_HEADER)),
    });

    const query = signed.query as Record<string, string>;
    let qs = '';
    for (const k of Object.keys(query).sort()) qs += `${qs === '' ? '' : '&'}${encodeKeySegment(k)}=${encodeKeySegment(query[k])}`;
    const url = `${t.protocol}//${t.host}${request.path}?${qs}`;

    let expiresAt = now + expiresIn * 1000;
    const creds = await this.#opts.credentials();
    if (creds.expiration !== undefined && creds.expiration.getTime() < expiresAt) expiresAt = creds.expiration.getTime();
    return { url, method, headers: send, expiresAt: new Date(expiresAt) };
  }
}
