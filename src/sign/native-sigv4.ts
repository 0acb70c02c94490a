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

function load(): NativeSigV4 | null {
  if (process.env.CACHEGATE_NATIVE_SIGV4 === '0') return null;
  try {
    const mod = { exports: {} as Partial<NativeSigV4> };
    // RTLD_NOW: the addon takes SHA256_* from the Node binary; a Node that does not export them must
    // fail here, at load, rather than at the first call.
    process.dlopen(mod, fileURLToPath(SIGV4_ADDON), constants.dlopen.RTLD_NOW);
    return typeof mod.exports.signature === 'function' ? (mod.exports as NativeSigV4) : null;
  } catch {
    return null;
  }
}

export const nativeSigV4: NativeSigV4 | null = load();
