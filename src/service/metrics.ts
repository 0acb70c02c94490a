/**
 * Prometheus metrics (GET /metrics). One registry per service instance; names documented in
 * docs/metrics.md.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { RetainedStoreStats } from '../adapter.ts';
import { LookupCounts } from './usage.ts';

export class Metrics {
  readonly registry = new Registry();

  readonly httpRequests = new Counter({
    name: 'cachegate_http_requests_total',
    help: 'HTTP requests by route, method and status code',
    labelNames: ['route', 'method', 'status'] as const,
    registers: [this.registry],
  });

  readonly httpDuration = new Histogram({
    name: 'cachegate_http_request_duration_seconds',
    help: 'Time to answer an HTTP request (for streams: until the response is handed to the socket)',
    labelNames: ['route'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  readonly presigns = new Counter({
    name: 'cachegate_presign_total',
    help: 'Presign requests by operation, backend and result (ok, or the error code)',
    // runner: a runner name from the configuration (bounded by it), never anything a client sends.
    labelNames: ['operation', 'backend', 'result', 'runner'] as const,
    registers: [this.registry],
  });

  readonly presignDuration = new Histogram({
    name: 'cachegate_presign_duration_seconds',
    help: 'Time spent producing a presign answer, including AssumeRole when needed',
    labelNames: ['backend'] as const,
    buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1, 5],
    registers: [this.registry],
  });

  readonly cacheLookups = new Counter({
    name: 'cachegate_cache_lookups_total',
    help: 'Objects asked for through the service (proxy and local backend), by method and result (hit, miss)',
    labelNames: ['method', 'result'] as const,
    registers: [this.registry],
  });

  readonly bytes = new Counter({
    name: 'cachegate_transfer_bytes_total',
    help: 'Bytes streamed through the service, by direction (in = uploads, out = downloads)',
    labelNames: ['direction'] as const,
    registers: [this.registry],
  });

  readonly sizeRefusals = new Counter({
    name: 'cachegate_size_limit_refusals_total',
    help: 'Uploads refused for MaxUploadedArchiveSize, by where (presign, proxy, blob)',
    labelNames: ['where'] as const,
    registers: [this.registry],
  });

  readonly assumeRole = new Counter({
    name: 'cachegate_assume_role_total',
    help: 'AssumeRole by result: ok and error are calls to STS, cached is credentials served from the cache',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly rateLimited = new Counter({
    name: 'cachegate_rate_limited_total',
    help: 'Requests refused with 429 by [cachegate] rate_limit, by principal (runner:<name>, api:<name>, anonymous)',
    labelNames: ['principal'] as const,
    registers: [this.registry],
  });

  readonly authLocked = new Counter({
    name: 'cachegate_auth_locked_total',
    help: 'Requests refused with 429 (S3 front door: 503 SlowDown) because their client address failed to authenticate too often ([cachegate] auth_failure_limit)',
    registers: [this.registry],
  });

  readonly configReloads = new Counter({
    name: 'cachegate_config_reloads_total',
    help: 'Configuration reloads by result (ok, unchanged, invalid)',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly profiles = new Gauge({
    name: 'cachegate_profiles',
    help: 'Cache profiles in the active configuration, by backend',
    labelNames: ['backend'] as const,
    registers: [this.registry],
  });

  /** Hits and misses by runner namespace and project, for the usage report (not a Prometheus metric: unbounded labels). */
  readonly lookups = new LookupCounts();

  /** Size-bounded stores (local retention, disk tier) of the active configuration; set by the server. */
  retainedStores: () => RetainedStoreStats[] = () => [];

  readonly storeBytes = this.storeGauge('cachegate_store_bytes', 'Bytes held by a size-bounded store (store = local, disk_cache)', (s) => s.storedBytes);
  readonly storeObjects = this.storeGauge('cachegate_store_objects', 'Objects held by a size-bounded store', (s) => s.objects);
  readonly storeMaxBytes = this.storeGauge('cachegate_store_max_bytes', 'The max_size of a size-bounded store', (s) => s.maxSize);

  readonly storeEvictions: Counter<'store' | 'reason'> = new Counter({
    name: 'cachegate_store_evictions_total',
    help: 'Objects removed by a size-bounded store, by reason (size: over max_size; age: over max_age)',
    labelNames: ['store', 'reason'] as const,
    registers: [this.registry],
    collect: () =>
      this.collectStores((s) => {
        this.storeEvictions.inc({ store: s.store, reason: 'size' }, s.evictions.size);
        this.storeEvictions.inc({ store: s.store, reason: 'age' }, s.evictions.age);
      }, this.storeEvictions),
  });

  private storeGauge(name: string, help: string, value: (s: RetainedStoreStats) => number): Gauge<'store'> {
    const gauge: Gauge<'store'> = new Gauge({
      name, help, labelNames: ['store'] as const, registers: [this.registry],
      collect: () => this.collectStores((s) => gauge.set({ store: s.store }, value(s)), gauge),
    });
    return gauge;
  }

  readonly diskCacheRequests: Counter<'result'> = new Counter({
    name: 'cachegate_disk_cache_requests_total',
    help: 'Proxy GETs through the disk tier by result (hit: served from disk, validated; stale: served from disk, backend unreachable; miss: fetched from the backend)',
    labelNames: ['result'] as const,
    registers: [this.registry],
    collect: () =>
      this.collectStores((s) => {
        for (const result of ['hit', 'stale', 'miss'] as const) if (s.tier) this.diskCacheRequests.inc({ result }, s.tier[result]);
      }, this.diskCacheRequests),
  });

  readonly diskCacheBytes: Counter = new Counter({
    name: 'cachegate_disk_cache_bytes_total',
    help: 'Bytes served from the disk tier',
    registers: [this.registry],
    collect: () => this.collectStores((s) => s.tier && this.diskCacheBytes.inc(s.tier.bytesFromDisk), this.diskCacheBytes),
  });

  /** Sets a store metric from the stores' own counts (they live across reloads; these are read at scrape time). */
  private collectStores(set: (s: RetainedStoreStats) => void, metric: { reset(): void }): void {
    metric.reset();
    for (const s of this.retainedStores()) set(s);
  }

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'cachegate_' });
  }
}
