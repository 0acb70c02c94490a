/** Types of helper-startup.js (plain JavaScript: loaded before any TypeScript, see there). */
export function compileCacheDir(env?: Record<string, string | undefined>): string | undefined;
export function enableCompileCache(env?: Record<string, string | undefined>): void;
