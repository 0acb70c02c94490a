/**
 * [cachegate.disk_cache]: a disk tier in front of a cloud adapter (a CacheAdapter decorator), for
 * proxy-mode GETs. It keeps whole objects in a size-bounded store on local disk (the same
 * RetainedStore and LRU as the local backend's retention, in its own directory) with the backend's
 * ETag and Last-Modified:
 *
 * - GET of a held object: a HEAD to the backend validates it (same ETag, or same size and
 *   Last-Modified when there is no ETag) and it is served from disk, ranges included; changed on the
 *   backend → fetched again; gone from the backend → dropped, 404; backend unreachable or failing →
 *   served from disk as it is (a cache may be stale; it is never partial: copies are complete files).
 * - GET of an object not held: the backend's answer streams to the client and into the tier at once;
 *   another GET of the same object meanwhile waits for that fill (up to FILL_WAIT_MS) instead of
 *   fetching it again. A ranged miss is passed to the backend and fills the tier in the background.
 *   Objects larger than max_size are passed through.
 * - PUT writes through: the body streams to the backend and into the tier; the tier's copy is
 *   committed only when the backend has stored the object (with its ETag), and a tier failure (full
 *   disk) never fails the upload.
 * - Every other member of the inner adapter (presign, scoped credentials, and optional methods this
 *   module does not know of) passes through unchanged.
 *
 * Memory: two stream buffers per transfer (the tee), no object held whole.
 */
import { PassThrough, type Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AdapterLogger, ByteRange, CacheAdapter, GetResult, ObjectInfo, PutInput, RetainedStoreStats, RetainedView } from '../../src/adapter.ts';
import type { CacheSettings, DiskCacheSettings } from '../../src/config/types.ts';
import { openRetained, type RetainedStore } from '../local/retention.ts';
import type { Origin } from '../local/store.ts';

const SCOPE_END = '\u0000';

/** The bucket (container) of a cloud profile, as a prefix of the tier's names. */
function scopeOf(c: CacheSettings): string {
  if (c.s3) return `s3:${c.s3.serverAddress}/${c.s3.bucketName}`;
  if (c.gcs) return `gcs:${c.gcs.endpoint}/${c.gcs.bucketName}`;
  if (c.azure) return `azure:${c.azure.serviceUrl || c.azure.accountName}/${c.azure.containerName}`;
  return c.type;
}

/** How long a GET waits for another request's fill of the same object before going to the backend itself. */
const FILL_WAIT_MS = 5_000;

export interface TierCounts {
  /** Served from disk after the backend confirmed the copy. */
  hit: number;
  /** Served from disk without confirmation: the backend could not be reached. */
  stale: number;
  /** Not held (or changed on the backend): fetched from the backend. */
  miss: number;
  /** Bytes served from disk. */
  bytesFromDisk: number;
}

export async function withDiskTier(inner: CacheAdapter, cache: CacheSettings, settings: DiskCacheSettings, log: AdapterLogger): Promise<CacheAdapter> {
  const { store, release } = await openRetained(settings.dir, { maxSize: settings.maxSize, maxAge: 0 }, 'disk_cache');
  const tier = new DiskTier(inner, store, settings.maxSize, log);
  // One tier serves every cloud profile: its copies are named by bucket too, so that the same object
  // name in two buckets are two copies.
  const scoped = (name: string): string => `${scopeOf(cache)}${SCOPE_END}${name}`;
  const own: Partial<CacheAdapter> & Record<string, unknown> = {
    head: (name: string) => tier.head(name, scoped(name)),
    get: (name: string, range?: ByteRange) => tier.get(name, scoped(name), range),
    put: (name: string, input: PutInput) => tier.put(name, scoped(name), input),
    retained: tier.view,
    close: async () => {
      await release();
      await inner.close?.();
    },
  };
  return new Proxy(inner, {
    get(target, prop, receiver) {
      if (typeof prop === 'string' && prop in own) return own[prop];
      // A delete (S3 front door) removes the tier's copy too.
      if (prop === 'delete' && typeof (target as unknown as Record<string, unknown>).delete === 'function') {
        return async (name: string, ...rest: unknown[]) => {
          tier.drop(scoped(name));
          return ((target as unknown as Record<string, (...a: unknown[]) => unknown>).delete)(name, ...rest);
        };
      }
      const v = Reflect.get(target, prop, receiver) as unknown;
      // Class methods run on the adapter itself (they may use #private fields); own properties, such as
      // the onAssumeRole hook the service sets, are returned as they are.
      const inherited = typeof v === 'function' && !Object.prototype.hasOwnProperty.call(target, prop);
      return inherited ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
    set: (target, prop, value) => Reflect.set(target, prop, value), // e.g. onAssumeRole reaches the inner adapter
  });
}

class DiskTier {
  readonly counts: TierCounts = { hit: 0, stale: 0, miss: 0, bytesFromDisk: 0 };
  readonly view: RetainedView;
  private readonly fills = new Map<string, Promise<void>>();
  private readonly inner: CacheAdapter;
  private readonly store: RetainedStore;
  private readonly maxSize: number;
  private readonly log: AdapterLogger;

  constructor(inner: CacheAdapter, store: RetainedStore, maxSize: number, log: AdapterLogger) {
    this.inner = inner;
    this.store = store;
    this.maxSize = maxSize;
    this.log = log;
    this.view = {
      stats: (): RetainedStoreStats => ({ ...store.stats(), tier: { ...this.counts } }),
      // Usage reports read the object name without its bucket scope.
      entries: async () => (await store.entries()).map((e) => (e.name === undefined ? e : { ...e, name: e.name.slice(e.name.indexOf(SCOPE_END) + 1) })),
    };
  }

  /**
   * HEAD goes to the backend; when the backend cannot be reached, a held copy answers (the helper
   * asks HEAD before its GET: without this, a cut-off backend would fail downloads the tier can serve).
   */
  async head(name: string, copy: string): Promise<ObjectInfo | null> {
    try {
      return await this.inner.head(name);
    } catch (err) {
      const held = await this.store.head(copy);
      if (!held) throw err;
      const { dataOffset: _d, ...info } = held;
      return info;
    }
  }

  /** `name` is the backend's object name, `copy` the tier's name for it. */
  async get(name: string, copy: string, range?: ByteRange): Promise<GetResult | null> {
    const held = await this.store.head(copy);
    if (held) {
      let origin: ObjectInfo | null | undefined;
      try {
        origin = await this.inner.head(name);
      } catch (err) {
        origin = undefined; // unreachable or failing: the copy is served as it is
        this.log.warn({ err: (err as Error).message }, 'disk tier: the backend could not validate a copy; serving it from disk');
      }
      if (origin === null) {
        this.drop(copy);
        return null;
      }
      if (origin === undefined || sameObject(held, origin)) {
        const got = await this.store.get(copy, range);
        if (got) return this.fromDisk(got, origin === undefined ? 'stale' : 'hit');
      } else {
        this.drop(copy); // changed on the backend
      }
    }
    this.counts.miss++;
    const filling = this.fills.get(copy);
    if (filling && !range) {
      await Promise.race([filling, sleep(FILL_WAIT_MS)]);
      const got = await this.store.get(copy);
      if (got) return this.fromDisk(got, 'hit');
    }
    if (range || filling) {
      if (!filling) this.fillInBackground(name, copy);
      return this.inner.get(name, range);
    }
    return this.fetchAndFill(name, copy);
  }

  async put(name: string, copy: string, input: PutInput): Promise<ObjectInfo> {
    this.drop(copy);
    const toBackend = new PassThrough({ highWaterMark: 1 << 20 });
    const toTier = new PassThrough({ highWaterMark: 1 << 20 });
    tee(input.body, toBackend, toTier);
    const backend = this.inner.put(name, { ...input, body: toBackend });
    const fits = input.contentLength === undefined || input.contentLength <= this.maxSize;
    const kept = fits
      ? this.store.put(copy, { ...input, body: toTier }, async () => originOf(await backend, () => this.inner.head(name)))
      : Promise.reject(new Error('larger than the tier'));
    if (!fits) toTier.destroy();
    kept.catch((err: unknown) => this.log.debug({ err: (err as Error).message }, 'disk tier: upload not kept on disk'));
    try {
      const info = await backend;
      await kept.catch(() => undefined); // a GET right after the answer finds the copy
      return info;
    } catch (err) {
      toTier.destroy();
      throw err;
    }
  }

  drop(copy: string): void {
    this.store.remove(copy);
  }

  private fromDisk(got: GetResult, result: 'hit' | 'stale'): GetResult {
    this.counts[result]++;
    got.body.on('data', (c: Buffer) => (this.counts.bytesFromDisk += c.length));
    return got;
  }

  /**
   * A miss without range: the backend's body goes to the client and into the tier at once. The fill
   * is registered before the first await, so a GET of the same object that arrives meanwhile waits
   * for it instead of fetching again.
   */
  private async fetchAndFill(name: string, copy: string): Promise<GetResult | null> {
    let settle: (fill: Promise<void>) => void = () => undefined;
    this.track(copy, new Promise<void>((resolve) => (settle = resolve)));
    let got: GetResult | null;
    try {
      got = await this.inner.get(name);
    } catch (err) {
      settle(Promise.resolve());
      throw err;
    }
    if (!got || got.info.size > this.maxSize) {
      settle(Promise.resolve());
      return got;
    }
    const toClient = new PassThrough({ highWaterMark: 1 << 20 });
    const toTier = new PassThrough({ highWaterMark: 1 << 20 });
    tee(got.body, toClient, toTier);
    settle(this.keep(copy, got.info, toTier));
    return { ...got, body: toClient };
  }

  private fillInBackground(name: string, copy: string): void {
    const fill = (async () => {
      const got = await this.inner.get(name);
      if (!got) return;
      if (got.info.size > this.maxSize) {
        got.body.destroy();
        return;
      }
      await this.keep(copy, got.info, got.body);
    })();
    this.track(copy, fill);
  }

  private keep(copy: string, info: ObjectInfo, body: Readable): Promise<void> {
    const origin: Origin = { ...(info.etag !== undefined ? { etag: info.etag } : {}), lastModified: info.lastModified.toISOString() };
    return this.store
      .put(copy, { body, contentLength: info.size, metadata: info.metadata, contentType: info.contentType, maxSize: 0 }, async () => origin)
      .then(() => undefined);
  }

  private track(copy: string, fill: Promise<void>): void {
    const done = fill
      .catch((err: unknown) => this.log.debug({ err: (err as Error).message }, 'disk tier: fill failed'))
      .finally(() => {
        if (this.fills.get(copy) === done) this.fills.delete(copy);
      });
    this.fills.set(copy, done);
  }
}

/**
 * One source into two streams with backpressure from both (pipe() waits for the slower). A source
 * error reaches both; a destination that closes early (a client gone, a full disk) is unpiped and the
 * other goes on.
 */
function tee(source: Readable, a: PassThrough, b: PassThrough): void {
  source.on('error', (err) => {
    a.destroy(err);
    b.destroy(err);
  });
  source.pipe(a);
  source.pipe(b);
}

/** Whether a tier copy is still the backend's object: same ETag, or (without ETags) same size and time. */
function sameObject(copy: ObjectInfo, origin: ObjectInfo): boolean {
  if (copy.etag !== undefined && origin.etag !== undefined) return copy.etag === origin.etag;
  return copy.size === origin.size && Math.floor(copy.lastModified.getTime() / 1000) === Math.floor(origin.lastModified.getTime() / 1000);
}

async function originOf(info: ObjectInfo, head: () => Promise<ObjectInfo | null>): Promise<Origin> {
  // The backend's own Last-Modified and ETag: a put's answer may carry only the ETag.
  const h = info.etag === undefined ? await head() : null;
  const etag = info.etag ?? h?.etag;
  return { ...(etag !== undefined ? { etag } : {}), lastModified: (h?.lastModified ?? info.lastModified).toISOString() };
}
