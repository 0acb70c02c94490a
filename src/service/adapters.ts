/**
 * Backend registry: maps a cache Type to its adapter module, loaded on first use so that a service
 * on one backend never loads the other backends' SDKs.
 */
import type { AdapterContext, AdapterFactory, CacheAdapter } from '../adapter.ts';
import type { CacheType } from '../config/types.ts';

const loaders: Record<CacheType, () => Promise<AdapterFactory>> = {
  local: async () => (await import('../../adapters/local/index.ts')).createLocalAdapter,
  s3: async () => unavailable('s3'),
  gcs: async () => unavailable('gcs'),
  azure: async () => unavailable('azure'),
};

function unavailable(kind: string): AdapterFactory {
  return () => {
    throw new Error(`the ${kind} backend is not built into this version of cachegate`);
  };
}

export async function createAdapter(ctx: AdapterContext): Promise<CacheAdapter> {
  const factory = await loaders[ctx.profile.cache.type]();
  return factory(ctx);
}
