/**
 * The one interface every storage backend implements (adapters/<name>/index.ts).
 * The core (src/) never imports a cloud SDK: it only talks to a CacheAdapter.
 *
 * Object names given to an adapter are already validated by src/keys (POSIX, no `..`, below the
 * project's namespace); adapters must still never let a name address anything outside their own
 * bucket/container/data directory.
 */
import type { Readable } from 'node:stream';
import type { CacheProfile, DiskCacheSettings, RetentionSettings } from './config/types.ts';

export type PresignMethod = 'GET' | 'HEAD' | 'PUT';
export type Direction = 'download' | 'upload';

export interface PresignInput {
  method: PresignMethod;
  objectName: string;
  /** Lifetime of the URL in seconds (already capped by configuration). */
  expiresIn: number;
  /** Metadata to attach on PUT (e.g. { cachekey: 'human key' }); values are already header-safe. */
  metadata: Record<string, string>;
  /** Size the caller says it will upload (PUT only); adapters that can, sign it. */
  contentLength?: number;
  /** Injected clock for tests; defaults to Date.now(). */
  now?: number;
}

export interface PresignedRequest {
  url: string;
  method: PresignMethod;
  /** Headers the client must send with the request (signed ones included). */
  headers: Record<string, string>;
  expiresAt: Date;
}

/** Scoped temporary credentials for one object (S3 RoleARN): what the helper needs for multipart. */
export interface ScopedCredentials {
  goCloudUrl: string;
  env: Record<string, string>;
  expiresAt: Date;
}

export interface ObjectInfo {
  size: number;
  lastModified: Date;
  etag?: string;
  contentType?: string;
  metadata: Record<string, string>;
}

export interface ByteRange {
  start: number;
  /** Inclusive end; undefined = to the end. */
  end?: number;
}

export interface GetResult {
  info: ObjectInfo;
  body: Readable;
  /** The range actually served, when a range was asked for and honoured. */
  range?: { start: number; end: number };
}

export interface PutInput {
  body: Readable;
  /** Declared length (Content-Length) when known; undefined for chunked bodies. */
  contentLength?: number;
  metadata: Record<string, string>;
  /** 0 = unlimited. The adapter must refuse (413) and store nothing past this size. */
  maxSize: number;
  contentType?: string;
}

export interface CacheAdapter {
  /** 'local' | 's3' | 'gcs' | 'azure' — used in metrics and logs. */
  readonly kind: string;

  /** Presigned URL + headers for one operation on one object. Pure signing where possible (no network). */
  presign(input: PresignInput): Promise<PresignedRequest>;

  /** Temporary credentials restricted to one object, when the profile asks for them (S3 RoleARN). */
  scopedCredentials?(objectName: string, direction: Direction): Promise<ScopedCredentials | undefined>;

  /**
   * Set by the service to count AssumeRole calls (S3 RoleARN): 'ok' | 'error' per call to STS,
   * 'cached' when cached role credentials are served. Adapters without roles ignore it.
   */
  onAssumeRole?: ((result: 'ok' | 'error' | 'cached') => void) | undefined;

  /** Proxy mode. null = not found. */
  head(objectName: string): Promise<ObjectInfo | null>;
  get(objectName: string, range?: ByteRange): Promise<GetResult | null>;
  put(objectName: string, input: PutInput): Promise<ObjectInfo>;

  /** Throws (preferably a CacheGateError 503) when the backend cannot be reached. */
  ready(): Promise<void>;

  /** S3 front door (DeleteObject): removes one object; false when the backend says there was none (S3 does not say: true). Deleting a missing object is not an error. */
  delete?(objectName: string): Promise<boolean>;
  /** S3 front door (ListObjects): objects whose names start with `prefix`, in name order. Not on GCS yet (the front door answers NotImplemented). */
  list?(prefix: string, opts: ListOptions): Promise<ListPage>;

  close?(): Promise<void>;

  /** A size-bounded store behind this adapter (local backend with retention, disk tier): for /metrics and usage. */
  readonly retained?: RetainedView | undefined;
}

export interface RetainedView {
  stats(): RetainedStoreStats;
  /** Every object held: name (when readable), bytes on disk, last use (ms since the epoch). */
  entries(): Promise<Array<{ name?: string; size: number; lastUse: number }>>;
}

/**
 * Adapters whose presigned URLs point back at this service (the embedded local backend) also verify
 * them: the service's /v1/blob/ route calls this, then streams with head/get/put like proxy mode.
 */
export interface SelfServedAdapter extends CacheAdapter {
  /** Path prefix of the URLs it signs, e.g. '/v1/blob/'. */
  readonly urlPrefix: string;
  /** Throws CacheGateError 403 when the URL is not valid for this request. */
  verifySigned(req: SignedRequest): { objectName: string; maxSize: number; signedHeaders: string[] };
}

export interface SignedRequest {
  method: string;
  /** The request path, still percent-encoded, starting with urlPrefix. */
  path: string;
  query: URLSearchParams;
  header: (name: string) => string | undefined;
  now?: number;
}

export interface ListOptions {
  /** Only names after this one (exclusive). */
  startAfter?: string;
  /** At most this many objects (1..1000). */
  max: number;
}

export interface ListedObject {
  name: string;
  size: number;
  lastModified: Date;
  etag?: string;
}

export interface ListPage {
  objects: ListedObject[];
  /** More objects follow the last one returned. */
  truncated: boolean;
}

/** What an adapter factory gets: the validated profile and the service-wide settings it may need. */
export interface AdapterContext {
  profile: CacheProfile;
  /** Directory for the embedded local backend. */
  dataDir: string;
  /** Public base URL of this service (for adapters whose URLs point back at it), e.g. http://127.0.0.1:9170 */
  publicUrl: () => string;
  /** Secret for URLs this service signs itself (local backend). */
  signingKey: Buffer;
  log: AdapterLogger;
  /** [cachegate.retention] for the embedded local backend (docs/retention.md); undefined = unbounded. */
  retention?: RetentionSettings;
  /** [cachegate.disk_cache]: the disk tier the service puts in front of cloud adapters. */
  diskCache?: DiskCacheSettings;
}

/** What a size-bounded store reports (the local backend with retention, the disk tier): for /metrics and usage. */
export interface RetainedStoreStats {
  /** 'local' | 'disk_cache' */
  store: string;
  dir: string;
  maxSize: number;
  storedBytes: number;
  usedBytes: number;
  objects: number;
  evictions: { size: number; age: number };
  /** The disk tier's answers: hit (validated), stale (backend unreachable), miss; bytes served from disk. */
  tier?: { hit: number; stale: number; miss: number; bytesFromDisk: number };
}

export interface AdapterLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

export type AdapterFactory = (ctx: AdapterContext) => CacheAdapter | Promise<CacheAdapter>;
