/**
 * The embedded local-disk backend: what cachegate runs on with no configuration. One machine only
 * (the data directory is not shared between replicas). Its presigned URLs point back at this service
 * (/v1/blob/…) and are verified by the service itself.
 */
import { createSecretKey } from 'node:crypto';
import type { AdapterContext, ByteRange, ListOptions, PresignInput, PresignedRequest, PutInput, SelfServedAdapter, SignedRequest } from '../../src/adapter.ts';
import { CacheGateError, backendUnavailable, tooLarge } from '../../src/errors.ts';
import { decodePath, encodePath, sign, verify } from './signer.ts';
import { openRetained } from './retention.ts';
import { FileStore } from './store.ts';
import { misconfigured } from '../backend-fault.ts';

export const URL_PREFIX = '/v1/blob/';
export const META_PREFIX = 'x-amz-meta-';

/**
 * A file system error, classified as every adapter does (../backend-fault.ts): a directory this
 * process may not write is a configuration fault (502, check data_dir); anything else (disk full,
 * I/O error) may pass: 503.
 */
function fail(root: string): (err: unknown) => never {
  return (err: unknown) => {
    if (err instanceof CacheGateError) throw err;
    const code = (err as NodeJS.ErrnoException).code ?? '';
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS' || code === 'ENOTDIR') {
      throw misconfigured(`local data directory ${root} is not usable (${code})`, '[cachegate] data_dir (or --data-dir / CACHEGATE_DATA_DIR) and its owner and mode', err);
    }
    throw backendUnavailable(`local data directory ${root} is not usable: ${(err as Error).message}`, err);
  };
}

export async function createLocalAdapter(ctx: AdapterContext): Promise<SelfServedAdapter> {
  // With [cachegate.retention], one size-bounded store per data directory, shared by the profiles.
  const retained = ctx.retention ? await openRetained(ctx.dataDir, ctx.retention) : undefined;
  const store = retained?.store ?? new FileStore(ctx.dataDir);
  const key = createSecretKey(ctx.signingKey);
  const maxSize = ctx.profile.cache.maxUploadedArchiveSize;

  return {
    kind: 'local',
    urlPrefix: URL_PREFIX,

    async presign(input: PresignInput): Promise<PresignedRequest> {
      const now = input.now ?? Date.now();
      const expires = Math.floor(now / 1000) + input.expiresIn;
      const headers: Record<string, string> = {};
      if (input.method === 'PUT') {
        if (maxSize > 0 && input.contentLength !== undefined && input.contentLength > maxSize) throw tooLarge(input.contentLength, maxSize);
        for (const [k, v] of Object.entries(input.metadata)) headers[META_PREFIX + k.toLowerCase()] = v;
        if (input.contentLength !== undefined) headers['content-length'] = String(input.contentLength);
      }
      const q = sign(key, { method: input.method, objectName: input.objectName, expires, maxSize: input.method === 'PUT' ? maxSize : 0, headers });
      return {
        url: `${ctx.publicUrl()}${URL_PREFIX}${encodePath(input.objectName)}?${q}`,
        method: input.method,
        headers,
        expiresAt: new Date(expires * 1000),
      };
    },

    verifySigned(req: SignedRequest): { objectName: string; maxSize: number; signedHeaders: string[] } {
      const objectName = decodePath(req.path.slice(URL_PREFIX.length));
      if (objectName === undefined) throw new CacheGateError('forbidden', 403, 'request signature is not valid: malformed object path');
      const { maxSize: signedMax, signedHeaders } = verify(key, { method: req.method, objectName, query: req.query, header: req.header }, req.now ?? Date.now());
      return { objectName, maxSize: signedMax, signedHeaders };
    },

    head: (objectName: string) =>
      store.head(objectName).then((h) => (h ? { size: h.size, lastModified: h.lastModified, etag: h.etag, contentType: h.contentType, metadata: h.metadata } : null), fail(store.root)),
    get: (objectName: string, range?: ByteRange) => store.get(objectName, range).catch(fail(store.root)),
    put: (objectName: string, input: PutInput) => store.put(objectName, input).catch(fail(store.root)),
    delete: (objectName: string) => store.delete(objectName).catch(fail(store.root)),
    list: (prefix: string, opts: ListOptions) => store.list(prefix, opts).catch(fail(store.root)),

    ready: () => store.ready().catch(fail(store.root)),

    retained: retained?.store,

    close: async () => retained?.release(),
  };
}
