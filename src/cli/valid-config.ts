/** The configuration a read-only command works on: loaded, its errors printed; undefined when it has any. */
import { formatFindings } from '../config/check.ts';
import { hasErrors, loadConfig } from '../config/load.ts';
import type { Config } from '../config/types.ts';
import { loadOptions } from './args.ts';

export function validConfig(values: Parameters<typeof loadOptions>[0]): Config | undefined {
  const config = loadConfig(loadOptions(values));
  if (!hasErrors(config)) return config;
  for (const line of formatFindings(config)) process.stderr.write(line + '\n');
  return undefined;
}
