/**
 * The helper's memory budget (issue 13): one number — `--helper-memory` / `CACHE_HELPER_MEMORY`,
 * else the container's cgroup limit — turned into the concrete settings that bound what a helper
 * command holds besides Node itself: ranged parts in flight, tar.zst frame workers and their
 * buffers, zip extraction's large-entry workers and medium entries in flight.
 *
 * Why a knob and not smaller defaults: each of these buys speed (parts in flight against a remote
 * store whose single connection is capped, frame workers on many cores), and the defaults are what
 * a helper with room should use. A Kubernetes helper container with a 128–256 MiB limit has no
 * room: it gets the small settings with no configuration, from its cgroup. Measured peaks per
 * setting: docs/archive.md "Memory budget of the helper commands".
 */
import fs from 'node:fs';
import os from 'node:os';

export type BudgetSource = 'flag' | 'env' | 'cgroup' | 'none';

export interface HelperMemorySettings {
  /** The budget in bytes; undefined: none (the defaults). */
  budget: number | undefined;
  source: BudgetSource;
  /** Ranged parts / upload parts in flight (`--concurrency` still wins when given). */
  transferConcurrency: number;
  /** tar.zst creation: frame worker threads (zstd-frames.ts). */
  zstdFrameWorkers: number;
  /** tar.zst creation: segments of 4 MiB (and as many output buffers) in the pool. */
  zstdFrameBuffers: number;
  /** zip extraction: worker threads for large entries (ExtractOptions.largeEntryWorkers, s6-extract). */
  largeEntryWorkers: number;
  /** zip extraction: bytes of entries in flight (ExtractOptions.budgetBytes). */
  extractInFlightBytes: number;
}

/** Below this budget the helper takes the small settings (a 128–256 MiB container). */
export const SMALL_BUDGET = 256 * 1024 * 1024;
/** Below this one, tar.zst creation gets one frame worker (a 128 MiB container). */
export const TIGHT_BUDGET = 192 * 1024 * 1024;

const UNITS: Record<string, number> = {
  '': 1, b: 1,
  k: 1e3, kb: 1e3, kib: 1024,
  m: 1e6, mb: 1e6, mib: 1024 ** 2,
  g: 1e9, gb: 1e9, gib: 1024 ** 3,
};

/**
 * "128MiB", "128Mi", "256MB", "1G", "134217728" → bytes; "0", "none", "unlimited" → 0 (no budget,
 * and the cgroup is not read either). Kubernetes' own spelling (`128Mi`) is accepted too.
 */
export function parseMemorySize(text: string, name: string): number {
  const t = text.trim().toLowerCase();
  if (t === 'none' || t === 'unlimited' || t === 'max') return 0;
  const m = /^(\d+(?:\.\d+)?)\s*([kmg]i?b?|b)?$/.exec(t);
  const unit = m ? UNITS[(m[2] ?? '').replace(/^([kmg])i$/, '$1ib')] : undefined;
  if (!m || unit === undefined) throw new Error(`${name}: "${text}" is not a memory size (e.g. 128MiB, 256MB, 1GiB, or 0 for none)`);
  return Math.floor(Number(m[1]) * unit);
}

/**
 * The memory limit of this process's cgroup, or undefined when there is none: cgroup v2
 * `memory.max` ("max" = none), v1 `memory.limit_in_bytes` (a number near 2^63 = none), at the
 * namespace root (a container's view) and at the path /proc/self/cgroup names. The smallest wins.
 */
export function cgroupMemoryLimit(root = '/sys/fs/cgroup', procSelfCgroup = '/proc/self/cgroup'): number | undefined {
  const candidates = [`${root}/memory.max`, `${root}/memory/memory.limit_in_bytes`];
  try {
    for (const line of fs.readFileSync(procSelfCgroup, 'utf8').split('\n')) {
      const [id, controllers, p] = line.split(':');
      if (p === undefined || p === '/' || p.includes('..')) continue;
      if (id === '0' && controllers === '') candidates.push(`${root}${p}/memory.max`);
      else if (controllers.split(',').includes('memory')) candidates.push(`${root}/memory${p}/memory.limit_in_bytes`);
    }
  } catch {
    // no /proc: no cgroup path to follow
  }
  let limit: number | undefined;
  for (const file of candidates) {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8').trim();
    } catch {
      continue;
    }
    if (!/^\d+$/.test(text)) continue; // "max"
    const n = Number(text);
    // v1 says "no limit" with PAGE_COUNTER_MAX × page size; anything past the machine's memory is none too.
    if (n <= 0 || n >= 2 ** 60 || n >= os.totalmem()) continue;
    limit = limit === undefined ? n : Math.min(limit, n);
  }
  return limit;
}

let ownLimit: { value: number | undefined } | undefined;

/** This process's cgroup limit, read once (it does not change while a command runs; several parts of one command ask). */
function processCgroupLimit(): number | undefined {
  ownLimit ??= { value: cgroupMemoryLimit() };
  return ownLimit.value;
}

/** The budget in effect: the flag, else CACHE_HELPER_MEMORY, else the cgroup limit. 0 anywhere: none. */
export function resolveBudget(flag: string | undefined, env: Record<string, string | undefined>, cgroup: () => number | undefined = processCgroupLimit): { budget: number | undefined; source: BudgetSource } {
  if (flag !== undefined && flag !== '') {
    const n = parseMemorySize(flag, '--helper-memory');
    return n > 0 ? { budget: n, source: 'flag' } : { budget: undefined, source: 'none' };
  }
  const e = env.CACHE_HELPER_MEMORY;
  if (e !== undefined && e !== '') {
    const n = parseMemorySize(e, 'CACHE_HELPER_MEMORY');
    return n > 0 ? { budget: n, source: 'env' } : { budget: undefined, source: 'none' };
  }
  const c = cgroup();
  return c !== undefined ? { budget: c, source: 'cgroup' } : { budget: undefined, source: 'none' };
}

/**
 * The defaults (no budget, or one of SMALL_BUDGET or more). tar.zst frame threads: one on one or
 * two CPUs, where the main thread (reading files, tar headers) needs the other CPU itself: a second
 * frame thread measured no faster on the two trees and held ~18 MB more (docs/archive.md, Session 7).
 */
export function defaultSettings(cpus = os.availableParallelism()): Omit<HelperMemorySettings, 'budget' | 'source'> {
  const zstdFrameWorkers = cpus <= 2 ? 1 : Math.min(4, cpus);
  return { transferConcurrency: 16, zstdFrameWorkers, zstdFrameBuffers: zstdFrameWorkers + 2, largeEntryWorkers: 2, extractInFlightBytes: 32 << 20 };
}

/**
 * The settings for a budget. Below SMALL_BUDGET: 4 parts in flight instead of 16 (a 360 MB
 * download alone: 130–137 → 117–123 MB peak RSS), at most 2 tar.zst frame workers with one spare
 * buffer pair instead of two, one zip entry worker (~14 MB less, docs/archive.md) and 8 MiB of
 * entries in flight. Below TIGHT_BUDGET one frame worker (an isolate and 2 × 4 MiB less): tar.zst
 * creation of a node_modules copy with upload 131–140 → 112 MB, at some speed (5.1–5.3 → 7.6 s,
 * load 5–7; docs/archive.md "The memory budget knob").
 */
export function settingsFor(budget: number | undefined, source: BudgetSource = budget === undefined ? 'none' : 'env', cpus = os.availableParallelism()): HelperMemorySettings {
  const d = defaultSettings(cpus);
  if (budget === undefined || budget >= SMALL_BUDGET) return { budget, source, ...d };
  const zstdFrameWorkers = budget < TIGHT_BUDGET ? 1 : Math.min(2, d.zstdFrameWorkers);
  return { budget, source, transferConcurrency: 4, zstdFrameWorkers, zstdFrameBuffers: zstdFrameWorkers + 1, largeEntryWorkers: 1, extractInFlightBytes: 8 << 20 };
}

/** resolveBudget + settingsFor: what a helper command runs with. */
export function helperMemorySettings(flag: string | undefined, env: Record<string, string | undefined>, cgroup?: () => number | undefined): HelperMemorySettings {
  const { budget, source } = resolveBudget(flag, env, cgroup);
  return settingsFor(budget, source);
}
