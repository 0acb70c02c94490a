/**
 * Flag parsing for cache-archiver / cache-extractor: GitLab Runner's helper flags (SPEC §5),
 * `--flag value` and `--flag=value`, repeatable flags collected in order, environment fallbacks.
 */
import { parseArgs } from 'node:util';

export const ARCHIVER_FLAGS = {
  file: { type: 'string' },
  'alternate-file': { type: 'string' },
  path: { type: 'string', multiple: true },
  exclude: { type: 'string', multiple: true },
  untracked: { type: 'boolean' },
  url: { type: 'string' },
  header: { type: 'string', multiple: true },
  'check-url': { type: 'string' },
  'gocloud-url': { type: 'string' },
  'env-file': { type: 'string' },
  timeout: { type: 'string' },
  'max-uploaded-archive-size': { type: 'string' },
  metadata: { type: 'string' },
  'compression-format': { type: 'string' },
  'compression-level': { type: 'string' },
  'chunk-size': { type: 'string' },
  concurrency: { type: 'string' },
  retry: { type: 'string' },
  'retry-time': { type: 'string' },
  'transfer-meter-frequency': { type: 'string' },
  verbose: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const EXTRACTOR_FLAGS = {
  file: { type: 'string' },
  url: { type: 'string' },
  'head-url': { type: 'string' },
  'gocloud-url': { type: 'string' },
  'env-file': { type: 'string' },
  'alternate-url': { type: 'string' },
  'alternate-head-url': { type: 'string' },
  'alternate-gocloud-url': { type: 'string' },
  timeout: { type: 'string' },
  'chunk-size': { type: 'string' },
  concurrency: { type: 'string' },
  retry: { type: 'string' },
  'retry-time': { type: 'string' },
  'transfer-meter-frequency': { type: 'string' },
  verbose: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  // Extraction limits (issue 14): see src/archive/limits.ts.
  'max-extracted-size': { type: 'string' },
  'max-extracted-entries': { type: 'string' },
  'max-uploaded-archive-size': { type: 'string' },
} as const;

export function parseArchiverArgs(argv: string[]) {
  return parseArgs({ args: argv, options: ARCHIVER_FLAGS, strict: true, allowPositionals: false }).values;
}

export function parseExtractorArgs(argv: string[]) {
  return parseArgs({ args: argv, options: EXTRACTOR_FLAGS, strict: true, allowPositionals: false }).values;
}

/** How both helper commands speak: info to stdout, WARNING:/ERROR: lines to stderr. */
export interface HelperOutput {
  out: NodeJS.WritableStream;
  info(message: string): void;
  warn(message: string): void;
  /** Prints the error; returns the exit code 1. */
  fail(message: string): number;
}

export function helperOutput(deps: { stdout?: NodeJS.WritableStream; stderr?: NodeJS.WritableStream }): HelperOutput {
  const out = deps.stdout ?? process.stdout;
  const err = deps.stderr ?? process.stderr;
  return {
    out,
    info: (m) => void out.write(`${m}\n`),
    warn: (m) => void err.write(`WARNING: ${m}\n`),
    fail: (m) => {
      err.write(`ERROR: ${m}\n`);
      return 1;
    },
  };
}

/**
 * The flag handling both commands share: parse, answer --help, require --file. Returns the values,
 * or the exit code when there is nothing more to do.
 */
export function parseCommand<V extends { help?: boolean; file?: string }>(
  argv: string[], parse: (argv: string[]) => V, usage: string, o: HelperOutput,
): (V & { file: string }) | number {
  let values: V;
  try {
    values = parse(argv);
  } catch (e) {
    return o.fail(`${(e as Error).message}\n${usage}`);
  }
  if (values.help) {
    o.out.write(usage);
    return 0;
  }
  if (!values.file) return o.fail('Missing --file');
  return values as V & { file: string };
}

/**
 * metadata.json content: compact JSON, keys lower-cased and sorted, string values
 * (e.g. {"cachekey":"the human readable cache key"}), `{}` when none.
 */
export function metadataJson(raw: string | undefined, warn: (m: string) => void): string {
  if (raw === undefined || raw.trim() === '') return '{}';
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    warn(`metadata ${JSON.stringify(raw)} is not valid JSON, ignored`);
    return '{}';
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    warn('metadata must be a JSON object, ignored');
    return '{}';
  }
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(parsed as Record<string, unknown>)) out[k.toLowerCase()] = typeof v === 'string' ? v : JSON.stringify(v);
  const sorted: Record<string, string> = {};
  for (const k of Object.keys(out).sort()) sorted[k] = out[k];
  return JSON.stringify(sorted);
}
