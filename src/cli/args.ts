/** Shared option parsing for the service commands (node:util parseArgs, strict). */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { LoadOptions } from '../config/load.ts';

export const configOptions = {
  config: { type: 'string', short: 'c' },
  listen: { type: 'string' },
  'data-dir': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export function parse<T extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: T) {
  return parseArgs({ args: argv, options, strict: true, allowPositionals: false });
}

/** --config wins over CACHEGATE_CONFIG; without either, the CACHE_* environment or the defaults. */
export function loadOptions(values: { config?: string; listen?: string; 'data-dir'?: string }): LoadOptions {
  return {
    file: values.config ?? (process.env.CACHEGATE_CONFIG || undefined),
    listen: values.listen,
    dataDir: values['data-dir'],
    env: process.env,
  };
}
