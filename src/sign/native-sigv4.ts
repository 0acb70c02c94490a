/**
 * The native SigV4 hashing (`native/sigv4/`, built at `npm ci` when a compiler and Node's headers
 * are there), or null: not built, failed to load, or turned off with CACHEGATE_NATIVE_SIGV4=0.
 * Callers fall back to node:crypto (sigv4.ts), which gives the same signatures, only slower.
 */
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';

export interface NativeSigV4 {
  /** hex(HMAC-SHA256(key, prefix + hex(SHA-256(canonicalRequest)))), key the 32-byte signing key. */
  signature: (key: Buffer, prefix: string, canonicalRequest: string) => string;
}

export const SIGV4_ADDON = new URL('../../native/sigv4/build/Release/cachegate_sigv4.node', import.meta.url);

/** Everything the addon exports; each function is absent where its platform lacks it (accept.c, malloc.c). */
export interface SigV4AddonExports extends Partial<NativeSigV4> {
  /** Accepts up to `max` connections waiting on listening socket `fd` (src/service/accept-burst.ts). */
  acceptPending?: (fd: number, max: number) => number[];
  /** glibc's mallinfo2(), in bytes (bench/door-memory-probe.ts). */
  mallocStats?: () => { arena: number; hblkhd: number; uordblks: number; fordblks: number; keepcost: number };
}

let loaded: SigV4AddonExports | null | undefined;

/** The addon's exports, loaded once; null when it is not built or does not load. */
export function sigv4Addon(): SigV4AddonExports | null {
  if (loaded !== undefined) return loaded;
  try {
    const mod = { exports: {} as SigV4AddonExports };
    // RTLD_NOW: the addon takes SHA256_* from the Node binary; a Node that does not export them must
    // fail here, at load, rather than at the first call.
    process.dlopen(mod, fileURLToPath(SIGV4_ADDON), constants.dlopen.RTLD_NOW);
    loaded = mod.exports;
  } catch {
    loaded = null;
  }
  return loaded;
}

function load(): NativeSigV4 | null {
  if (process.env.CACHEGATE_NATIVE_SIGV4 === '0') return null;
  const addon = sigv4Addon();
  return typeof addon?.signature === 'function' ? (addon as NativeSigV4) : null;
}

export const nativeSigV4: NativeSigV4 | null = load();
