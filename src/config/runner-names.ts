/**
 * Runner names are labels, not identities: GitLab Runner's config.toml lets two [[runners]] share a
 * `name`, and each keeps its own token, bucket, credentials and limits. Everything that must pick
 * one profile by name (API tokens' `runner = "…"`, `cachegate presign --runner`, the S3 front door)
 * goes through findRunner, which refuses an ambiguous name instead of taking the first or last.
 */
import type { CacheProfile } from './types.ts';

export type RunnerLookup =
  | { ok: true; profile: CacheProfile }
  | { ok: false; reason: 'unknown' | 'ambiguous'; message: string };

/** Where a profile came from, for messages: `runners[2]`, or its name when it has no entry. */
export function entryOf(p: CacheProfile): string {
  return p.entry ?? p.name;
}

/** The one profile named `name`, or why there is none (no such runner, or several). */
export function findRunner(profiles: readonly CacheProfile[], name: string): RunnerLookup {
  const found = profiles.filter((p) => p.name === name);
  if (found.length === 1) return { ok: true, profile: found[0] };
  if (found.length === 0) return { ok: false, reason: 'unknown', message: `no runner named "${name}" has a [runners.cache] section` };
  return {
    ok: false,
    reason: 'ambiguous',
    message: `${found.length} runners are named "${name}" (${found.map(entryOf).join(', ')}): the name does not say which one; give them distinct names`,
  };
}

/** Names used by more than one profile, with those profiles in configuration order. */
export function duplicateNames(profiles: readonly CacheProfile[]): Map<string, CacheProfile[]> {
  const byName = new Map<string, CacheProfile[]>();
  for (const p of profiles) byName.set(p.name, [...(byName.get(p.name) ?? []), p]);
  for (const [name, group] of byName) if (group.length < 2) byName.delete(name);
  return byName;
}

/**
 * A label that tells profiles apart in logs, metrics and /readyz: the name, or `name (runners[i])`
 * when several runners share it. Never the token.
 */
export function profileLabels(profiles: readonly CacheProfile[]): Map<CacheProfile, string> {
  const dup = duplicateNames(profiles);
  return new Map(profiles.map((p) => [p, dup.has(p.name) ? `${p.name} (${entryOf(p)})` : p.name]));
}
