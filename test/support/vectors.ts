/** The shared compatibility vectors (../shared/vectors next to the checkout, or CACHEGATE_VECTORS). */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const candidates = [process.env.CACHEGATE_VECTORS, resolve(import.meta.dirname, '../../../shared/vectors'), resolve(import.meta.dirname, '../vectors')];

export const vectorsDir: string = (() => {
  for (const c of candidates) if (c && existsSync(join(c, 'sanitize.json'))) return c;
  throw new Error(`compatibility vectors not found (looked in ${candidates.filter(Boolean).join(', ')}); set CACHEGATE_VECTORS`);
})();

export interface SanitizeCase { input: string; expected: string; error: boolean }
export const sanitizeVectors = (JSON.parse(readFileSync(join(vectorsDir, 'sanitize.json'), 'utf8')) as { cases: SanitizeCase[] }).cases;

export interface ObjectNameCase { key: string; path: string; shared: boolean; sharded: boolean; shortToken: string; project: string; object?: string; error?: string }
export interface NamingVectors {
  hashing: { cases: Array<{ key: string; sha256: string }> };
  objectName: { cases: ObjectNameCase[] };
  shortToken: { cases: Array<[string, string]> };
  goCloudUrl: { cases: Array<Record<string, unknown> & { url: string }> };
  s3Endpoint: { cases: Array<Record<string, unknown>> };
  compressionLevel: { zip: Record<string, string | number>; zstd: Record<string, number> };
}
export const namingVectors = JSON.parse(readFileSync(join(vectorsDir, 'naming.json'), 'utf8')) as NamingVectors;
