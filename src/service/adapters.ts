/**
 * Backend registry: maps a cache Type to its adapter module, loaded on first use so that a service
 * on one backend never loads the other backends' SDKs.
 */
import type { AdapterContext, AdapterFactory, CacheAdapter } from '../adapter.ts';
import type { CacheType } from '../config/types.ts';

const loaders: Record<CacheType, () => Promise<AdapterFactory>> = {
  local: async () => (await import('../../adapters/local/index.ts')).createLocalAdapter,
  s3: async () => (await import('../../adapters/s3/index.ts')).createS3Adapter,
  gcs: async () => (await import('../../adapters/gcs/index.ts')).createGcsAdapter,
  azure: async () => (await import('../../adapters/azure/index.ts')).createAzureAdapter,
};

export async function createAdapter(ctx: AdapterContext): Promise<CacheAdapter> {
  const factory = await loaders[ctx.profile.cache.type]();
  const adapter = await factory(ctx);
  if (!ctx.diskCache || ctx.profile.cache.type === 'local') return adapter;
  // [cachegate.disk_cache]: a disk tier in front of every cloud adapter (docs/retention.md).
  const { withDiskTier } = await import('../../adapters/tier/index.ts');
  return withDiskTier(adapter, ctx.profile.cache, ctx.diskCache, ctx.log);
}
