/**
 * Azure Blob Storage adapter: service SAS for one blob (account key or user-delegation key via
 * DefaultAzureCredential), and proxy mode through @azure/storage-blob. See docs/azure.md.
 *
 * Time bounds (adapters/timeouts.ts, docs/faults.md): the delegation key (token included), readiness,
 * HEAD, and GET until the answer's headers within TIMEOUTS.callMs, retries included; a GET body that
 * stalls for TIMEOUTS.idleMs fails; a PUT is aborted when nothing moves for TIMEOUTS.idleMs or when
 * the blocks still in flight are not committed in time after the last byte.
 */
import { Transform, type Readable } from 'node:stream';
import type { TokenCredential } from '@azure/identity';
import type { BlobServiceClient, ContainerClient, StorageSharedKeyCredential, UserDelegationKey } from '@azure/storage-blob';
import type {
  AdapterContext,
  ByteRange,
  CacheAdapter,
  ListOptions,
  ListPage,
  GetResult,
  ObjectInfo,
  PresignInput,
  PresignedRequest,
  PutInput,
} from '../../src/adapter.ts';
import type { AzureSettings } from '../../src/config/types.ts';
import { CacheGateError, backendUnavailable, badRequest, tooLarge } from '../../src/errors.ts';
import { blobPath, blobSas, type SasKey, type SasSdk } from './sas.ts';
import { uploadBlocks } from './upload.ts';
import { misconfigured } from '../backend-fault.ts';
import { TIMEOUTS, UploadWatch, bounded, idleGuard } from '../timeouts.ts';

export interface AzureAdapterOptions {
  /** Token credential for user delegation when AccountKey is empty (default: DefaultAzureCredential). */
  credential?: TokenCredential;
}

export const DEFAULT_STORAGE_DOMAIN = 'blob.core.windows.net';
/** SAS start = now − 1 h (clock skew between us, the client and Azure). */
const START_SKEW_MS = 3_600_000;
/** A user-delegation key may be valid for at most 7 days from now. */
const DELEGATION_KEY_LIFETIME_MS = 7 * 24 * 3_600_000 - 10 * 60_000;
/** A cached delegation key is reused while it outlives the URL (at most this much of it) plus the margin. */
const DELEGATION_KEY_REUSE_MS = 6 * 24 * 3_600_000;
/** Refresh the cached delegation key when it would expire within the URL lifetime plus this margin. */
const DELEGATION_KEY_MARGIN_MS = 5 * 60_000;
/** Proxy-mode upload: block size and parallel blocks (memory bound ≈ size × (concurrency + 1)). */
const UPLOAD_BLOCK_SIZE = 4 * 1024 * 1024;
const UPLOAD_CONCURRENCY = 2;

const invalidConfig = (message: string): CacheGateError => new CacheGateError('invalid_config', 500, message);

export function azureServiceUrl(settings: AzureSettings): string {
  const raw = settings.serviceUrl || `https://${settings.accountName}.${settings.storageDomain || DEFAULT_STORAGE_DOMAIN}`;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw invalidConfig(`azure: ServiceURL "${raw}" is not a URL`);
  }
  if ((url.protocol !== 'https:' && url.protocol !== 'http:') || url.search || url.username) {
    throw invalidConfig(`azure: ServiceURL "${raw}" must be http(s)://host[:port][/path] without query or credentials`);
  }
  return raw.replace(/\/+$/, '');
}

export function uploadHeaders(metadata: Record<string, string>): Record<string, string> {
  const headers: Record<string, string> = { 'x-ms-blob-type': 'BlockBlob' };
  for (const [k, v] of Object.entries(metadata)) headers[`x-ms-meta-${k.toLowerCase()}`] = v;
  return headers;
}

export async function createAzureAdapter(ctx: AdapterContext, options: AzureAdapterOptions = {}): Promise<CacheAdapter> {
  const settings = ctx.profile.cache.azure;
  if (!settings) throw invalidConfig('azure: profile has no [runners.cache.azure] section');
  if (!settings.accountName) throw invalidConfig('azure: AccountName is required');
  if (!settings.containerName) throw invalidConfig('azure: ContainerName is required');
  const serviceUrl = azureServiceUrl(settings);
  const sdk = await import('@azure/storage-blob');
  // The SDK's own tryTimeoutInMs only asks the server to give up; the client-side bounds are ours.
  const pipelineOptions = { retryOptions: { maxTries: TIMEOUTS.attempts, retryDelayInMs: 500, maxRetryDelayInMs: 2000 } };
  let service: BlobServiceClient;
  let accountKey: StorageSharedKeyCredential | undefined;
  if (settings.accountKey) {
    if (Buffer.from(settings.accountKey, 'base64').length === 0) throw invalidConfig('azure: AccountKey is not base64');
    accountKey = new sdk.StorageSharedKeyCredential(settings.accountName, settings.accountKey);
    service = new sdk.BlobServiceClient(serviceUrl, accountKey, pipelineOptions);
  } else {
    let credential = options.credential;
    if (!credential) {
      const identity = await import('@azure/identity');
      credential = new identity.DefaultAzureCredential();
    }
    service = new sdk.BlobServiceClient(serviceUrl, credential, pipelineOptions);
  }
  ctx.log.debug({ signing: accountKey ? 'account-key' : 'user-delegation' }, 'azure adapter ready to sign');
  return new AzureAdapter(settings, serviceUrl, sdk, service, accountKey, ctx.profile.cache.maxUploadedArchiveSize);
}

interface RestErrorLike {
  statusCode?: number;
  code?: string;
  message: string;
}

function asRest(err: unknown): RestErrorLike {
  return (typeof err === 'object' && err !== null ? err : { message: String(err) }) as RestErrorLike;
}

class AzureAdapter implements CacheAdapter {
  readonly kind = 'azure';
  readonly #settings: AzureSettings;
  readonly #serviceUrl: string;
  readonly #protocol: 'https' | 'https,http';
  readonly #sdk: SasSdk;
  readonly #service: BlobServiceClient;
  readonly #container: ContainerClient;
  readonly #accountKey: StorageSharedKeyCredential | undefined;
  readonly #maxSize: number;
  #delegation: UserDelegationKey | undefined;
  #delegationPending: Promise<UserDelegationKey> | undefined;

  constructor(settings: AzureSettings, serviceUrl: string, sdk: SasSdk, service: BlobServiceClient, accountKey: StorageSharedKeyCredential | undefined, maxSize: number) {
    this.#settings = settings;
    this.#serviceUrl = serviceUrl;
    this.#sdk = sdk;
    this.#protocol = serviceUrl.startsWith('http:') ? 'https,http' : 'https';
    this.#service = service;
    this.#container = service.getContainerClient(settings.containerName);
    this.#accountKey = accountKey;
    this.#maxSize = maxSize;
  }

  /**
   * The account key, or the cached user-delegation key while it covers the URL (up to
   * DELEGATION_KEY_REUSE_MS of it) plus a margin; URLs longer than a key's life end with the key.
   */
  async #sasKey(until: number): Promise<SasKey> {
    if (this.#accountKey) return { kind: 'account', credential: this.#accountKey };
    const now = Date.now();
    const need = Math.min(until, now + DELEGATION_KEY_REUSE_MS) + DELEGATION_KEY_MARGIN_MS;
    const cached = this.#delegation;
    const accountName = this.#settings.accountName;
    if (cached && cached.signedExpiresOn.getTime() >= need) return { kind: 'delegation', key: cached, accountName };
    this.#delegationPending ??= this.#fetchDelegationKey(now).finally(() => {
      this.#delegationPending = undefined;
    });
    return { kind: 'delegation', key: await this.#delegationPending, accountName };
  }

  async #fetchDelegationKey(now: number): Promise<UserDelegationKey> {
    const startsOn = new Date(now - START_SKEW_MS - 60_000);
    const expiresOn = new Date(now + DELEGATION_KEY_LIFETIME_MS);
    let key: UserDelegationKey;
    try {
      key = await bounded('azure: user delegation key', TIMEOUTS.callMs, (abortSignal) =>
        this.#service.getUserDelegationKey(startsOn, expiresOn, { abortSignal }));
    } catch (err) {
      if (err instanceof CacheGateError) throw err;
      const e = asRest(err);
      if (e.statusCode === 401 || e.statusCode === 403) {
        throw new CacheGateError(
          'backend_error',
          502,
          `azure: cannot get a user delegation key (${e.statusCode} ${e.code ?? ''}): the identity needs ` +
            'Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey (e.g. Storage Blob Delegator), or set AccountKey',
          { cause: err },
        );
      }
      throw backendUnavailable(`azure: cannot get a user delegation key: ${e.message}`, err);
    }
    this.#delegation = key;
    return key;
  }

  async presign(input: PresignInput): Promise<PresignedRequest> {
    const now = input.now ?? Date.now();
    const expiresIn = Math.floor(input.expiresIn);
    if (!(expiresIn >= 1)) throw badRequest(`URL lifetime must be at least 1 second, not ${input.expiresIn}`);
    let headers: Record<string, string> = {};
    if (input.method === 'PUT') {
      const max = this.#maxSize;
      if (max > 0 && input.contentLength !== undefined && input.contentLength > max) throw tooLarge(input.contentLength, max);
      headers = uploadHeaders(input.metadata);
    }
    let expiresAt = Math.floor(now / 1000) * 1000 + expiresIn * 1000;
    const key = await this.#sasKey(expiresAt);
    if (key.kind === 'delegation') expiresAt = Math.min(expiresAt, key.key.signedExpiresOn.getTime());
    const sas = blobSas(this.#sdk, {
      containerName: this.#settings.containerName,
      blobName: input.objectName,
      permissions: input.method === 'PUT' ? 'w' : 'r',
      startsOn: new Date(now - START_SKEW_MS),
      expiresOn: new Date(expiresAt),
      protocol: this.#protocol,
      key,
    });
    const url = `${this.#serviceUrl}${blobPath(this.#settings.containerName, input.objectName)}?${sas}`;
    return { url, method: input.method, headers, expiresAt: new Date(expiresAt) };
  }

  /** Classified as every adapter does (backend-fault.ts): 401/403 and a missing container → 502 naming the setting. */
  #fail(err: unknown, what: string, code = asRest(err).code): CacheGateError {
    const e = asRest(err);
    if (err instanceof CacheGateError) return err;
    if (e.statusCode === 416) return new CacheGateError('range_not_satisfiable', 416, 'requested range not satisfiable');
    const container = this.#settings.containerName;
    const detail = `azure: ${what} refused (${e.statusCode ?? ''} ${code ?? ''})`;
    if (code === 'ContainerNotFound') return misconfigured(detail, `ContainerName (container "${container}" does not exist in account ${this.#settings.accountName})`, err);
    if (e.statusCode === 401 || e.statusCode === 403) {
      // Azure says AuthenticationFailed for a wrong key, Azurite AuthorizationFailure: either way the
      // request signed with the configured key was refused.
      const check = this.#accountKey
        ? `AccountKey and AccountName (the request signed with them was refused by account ${this.#settings.accountName})`
        : `the identity's (DefaultAzureCredential) role on container ${container} and AccountName`;
      return misconfigured(detail, check, err);
    }
    if (e.statusCode !== undefined && e.statusCode < 500 && e.statusCode !== 429) {
      return new CacheGateError('backend_error', 502, `azure: ${what} failed (${e.statusCode} ${e.code ?? ''})`, { cause: err });
    }
    return backendUnavailable(`azure: ${what} failed: ${e.message}`, err);
  }

  /** A 404 that is a miss (the blob), not a missing container. */
  #isMiss(err: unknown): boolean {
    const e = asRest(err);
    return e.statusCode === 404 && e.code !== 'ContainerNotFound';
  }

  /** When the container was last seen to exist (performance.now()). */
  #containerSeenAt = -Infinity;

  /** S3 front door: DeleteObject. */
  async delete(objectName: string): Promise<boolean> {
    try {
      const r = await bounded('azure: DELETE', TIMEOUTS.callMs, (abortSignal) => this.#container.getBlobClient(objectName).deleteIfExists({ abortSignal }));
      return r.succeeded;
    } catch (err) {
      throw this.#fail(err, 'DELETE');
    }
  }

  /**
   * S3 front door: ListObjects. Azure lists in name order but has no "start after": names up to
   * startAfter are skipped page by page (fine for the few lists a cache sees).
   */
  async list(prefix: string, opts: ListOptions): Promise<ListPage> {
    const objects: ListPage['objects'] = [];
    try {
      return await bounded('azure: LIST', TIMEOUTS.callMs, async (abortSignal) => {
        for await (const b of this.#container.listBlobsFlat({ prefix, abortSignal })) {
          if (opts.startAfter !== undefined && b.name <= opts.startAfter) continue;
          if (objects.length === opts.max) return { objects, truncated: true };
          objects.push({ name: b.name, size: b.properties.contentLength ?? 0, lastModified: b.properties.lastModified, ...(b.properties.etag ? { etag: b.properties.etag } : {}) });
        }
        return { objects, truncated: false };
      });
    } catch (err) {
      throw this.#fail(err, 'LIST');
    }
  }

  async head(objectName: string): Promise<ObjectInfo | null> {
    try {
      const blob = this.#container.getBlobClient(objectName);
      const p = await bounded('azure: HEAD', TIMEOUTS.callMs, (abortSignal) => blob.getProperties({ abortSignal }));
      return {
        size: p.contentLength ?? 0,
        lastModified: p.lastModified ?? new Date(0),
        ...(p.etag ? { etag: p.etag } : {}),
        ...(p.contentType ? { contentType: p.contentType } : {}),
        metadata: { ...(p.metadata ?? {}) },
      };
    } catch (err) {
      if (this.#isMiss(err)) {
        // A HEAD's 404 may not say whether the blob or the container is missing: ask once a minute.
        if (performance.now() - this.#containerSeenAt >= 60_000) await this.ready();
        return null;
      }
      throw this.#fail(err, 'HEAD');
    }
  }

  async get(objectName: string, range?: ByteRange): Promise<GetResult | null> {
    const count = range?.end !== undefined ? range.end - range.start + 1 : undefined;
    if (range && (range.start < 0 || (count !== undefined && count < 1))) throw new CacheGateError('range_not_satisfiable', 416, 'invalid range');
    try {
      const blob = this.#container.getBlobClient(objectName);
      const r = await bounded('azure: GET', TIMEOUTS.callMs, (abortSignal) => blob.download(range?.start ?? 0, count, { abortSignal }));
      const total = /\/(\d+)$/.exec(r.contentRange ?? '')?.[1];
      const info: ObjectInfo = {
        size: total !== undefined ? Number(total) : (r.contentLength ?? 0),
        lastModified: r.lastModified ?? new Date(0),
        ...(r.etag ? { etag: r.etag } : {}),
        ...(r.contentType ? { contentType: r.contentType } : {}),
        metadata: { ...(r.metadata ?? {}) },
      };
      const source = r.readableStreamBody as Readable | undefined;
      if (!source) throw new CacheGateError('backend_error', 502, 'azure: download without a body');
      const body = idleGuard('azure: GET');
      source.on('error', (err) => body.destroy(err));
      body.on('close', () => source.destroy());
      source.pipe(body);
      const result: GetResult = { info, body };
      const m = /bytes (\d+)-(\d+)\//.exec(r.contentRange ?? '');
      if (m) result.range = { start: Number(m[1]), end: Number(m[2]) };
      else if (range && range.start === 0) result.range = { start: 0, end: Math.max(0, info.size - 1) };
      return result;
    } catch (err) {
      if (this.#isMiss(err)) return null;
      throw this.#fail(err, 'GET');
    }
  }

  async put(objectName: string, input: PutInput): Promise<ObjectInfo> {
    const max = input.maxSize;
    const declared = input.contentLength;
    if (max > 0 && declared !== undefined && declared > max) {
      input.body.resume();
      throw tooLarge(declared, max);
    }
    let seen = 0;
    let confirmed = 0;
    let limitError: CacheGateError | undefined;
    const watch = new UploadWatch('azure: PUT');
    const counter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        seen += chunk.length;
        watch.progress();
        if (max > 0 && seen > max) return cb((limitError = tooLarge(`more than ${max}`, max)));
        if (declared !== undefined && seen > declared) return cb((limitError = lengthMismatch(declared, seen)));
        cb(null, chunk);
      },
      flush(cb) {
        if (declared !== undefined && seen !== declared) return cb((limitError = lengthMismatch(declared, seen)));
        cb();
      },
    });
    input.body.on('error', (err) => counter.destroy(err));
    // Blocks read but not yet confirmed may still be uploading after the client's last byte.
    counter.on('end', () => watch.ended(seen - confirmed));
    input.body.pipe(counter);
    try {
      const r = await uploadBlocks(this.#container.getBlockBlobClient(objectName), counter, {
        blockSize: UPLOAD_BLOCK_SIZE,
        concurrency: UPLOAD_CONCURRENCY,
        abortSignal: watch.signal,
        onProgress: (bytes) => {
          confirmed = bytes;
          watch.progress();
        },
        commit: {
          metadata: { ...input.metadata },
          blobHTTPHeaders: { blobContentType: input.contentType ?? 'application/octet-stream' },
        },
      });
      watch.done();
      return {
        size: seen,
        lastModified: r.lastModified ?? new Date(),
        ...(r.etag ? { etag: r.etag } : {}),
        contentType: input.contentType ?? 'application/octet-stream',
        metadata: { ...input.metadata },
      };
    } catch (err) {
      watch.done();
      input.body.unpipe(counter);
      input.body.resume();
      if (limitError) throw limitError;
      if (watch.failure) throw watch.failure;
      throw this.#fail(err, 'PUT');
    }
  }

  async ready(): Promise<void> {
    try {
      await bounded(`azure: container ${this.#settings.containerName}`, TIMEOUTS.callMs, (abortSignal) => this.#container.getProperties({ abortSignal }));
      this.#containerSeenAt = performance.now();
    } catch (err) {
      // Get Container Properties: a 404 can only mean the container.
      const e = asRest(err);
      throw this.#fail(err, `container ${this.#settings.containerName}`, e.statusCode === 404 ? 'ContainerNotFound' : e.code);
    }
  }
}

const lengthMismatch = (declared: number, seen: number): CacheGateError =>
  new CacheGateError('length_mismatch', 400, `body length (${seen}${seen > declared ? '+' : ''}) does not match Content-Length (${declared})`);
