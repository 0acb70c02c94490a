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
  'tar-hard-links': { type: 'string' },
  'chunk-size': { type: 'string' },
  concurrency: { type: 'string' },
  retry: { type: 'string' },
  'retry-time': { type: 'string' },
  'transfer-meter-frequency': { type: 'string' },
  'helper-memory': { type: 'string' },
  // Ask cachegate for the upload URL after the archive is built, so its size is signed (ask-server.ts).
  server: { type: 'string' },
  token: { type: 'string' },
  key: { type: 'string' },
  project: { type: 'string' },
  'hash-keys': { type: 'boolean' },
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
  'helper-memory': { type: 'string' },
  verbose: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  // Extraction limits (issue 14): see src/archive/limits.ts.
  'max-extracted-size': { type: 'string' },
  'max-extracted-entries': { type: 'string' },
  'max-uploaded-archive-size': { type: 'string' },
} as const;

/** --help text of every flag (and the environment variable that stands in for it). */
const FLAG_HELP: Record<string, string> = {
  file: 'FILE  the local archive (required)',
  'alternate-file': 'FILE  the same cache under its other name (hashed/plain key): renamed to --file when --file is missing',
  path: 'PATH  what to archive; repeatable; $VAR and ** globs expanded',
  exclude: 'PATTERN  leave out; repeatable',
  untracked: 'add the files git does not track (git ls-files -o)',
  url: 'URL  presigned URL to upload to / download from',
  header: '"Name: value"  header to send with --url; repeatable (the presign answer\'s headers are signed: send them all)',
  'check-url': 'URL  presigned HEAD: an unchanged archive already there is not uploaded again',
  'head-url': 'URL  presigned HEAD of --url',
  'gocloud-url': 'URL  s3://bucket/object?… with role credentials from --env-file (multipart)',
  'env-file': 'FILE  KEY="value" lines (AWS_* or AZURE_STORAGE_* credentials, CACHE_METADATA); see docs/transfer.md',
  'alternate-url': 'URL  the same cache under its other key: the newer of the two objects (Last-Modified) is downloaded',
  'alternate-head-url': 'URL  presigned HEAD of --alternate-url',
  'alternate-gocloud-url': 'URL  the same for --gocloud-url: the newer object is downloaded',
  timeout: 'MINUTES  for the whole transfer (default 10)',
  'max-uploaded-archive-size': 'BYTES  do not upload a bigger archive (exit 0) [CACHE_MAX_UPLOADED_ARCHIVE_SIZE]',
  metadata: 'JSON  metadata.json and x-amz-meta-* of the upload [CACHE_METADATA]',
  'compression-format': 'zip|zipzstd|tarzstd  (default zip) [CACHE_COMPRESSION_FORMAT]',
  'compression-level': 'fastest|fast|default|slow|slowest [CACHE_COMPRESSION_LEVEL]',
  'tar-hard-links': 'true|false  tarzstd: later names of a hard-linked file as link entries (default true; false if GitLab\'s own helper may extract the cache: it makes them empty files) [CACHE_TAR_HARD_LINKS]',
  'chunk-size': 'BYTES  part size of multipart and ranged transfers (default 16 MiB) [CACHE_CHUNK_SIZE]',
  concurrency: 'N  parts in flight (default 16) [CACHE_CONCURRENCY]',
  retry: 'N  retries of a 5xx or network failure (default 2)',
  'retry-time': 'DURATION  between retries (default 1s)',
  'transfer-meter-frequency': 'DURATION  progress line interval (0 = off) [TRANSFER_METER_FREQUENCY]',
  'helper-memory': 'SIZE  memory budget (128MiB, 256MB; 0 = none): below 256 MiB fewer parts in flight, workers and buffers; default the cgroup\'s memory limit [CACHE_HELPER_MEMORY]',
  server: 'URL  cachegate: ask it for the upload URL after building the archive (size signed, limit enforced by it)',
  token: 'TOKEN  runner or API token for --server [CACHEGATE_RUNNER_TOKEN; prefer the variable: flags show in ps]',
  key: 'KEY  cache key for --server',
  project: 'ID  GitLab project id for --server',
  'hash-keys': 'with --server: hash the key (FF_HASH_CACHE_KEYS)',
  'max-extracted-size': 'BYTES  refuse an archive whose files total more (exit 1); default 10 x --max-uploaded-archive-size when given, else 64 GiB; 0 = no limit [CACHE_MAX_EXTRACTED_SIZE]',
  'max-extracted-entries': 'N  refuse an archive with more entries of any kind (exit 1); default 10,000,000; 0 = no limit [CACHE_MAX_EXTRACTED_ENTRIES]',
  verbose: 'more output',
  help: 'this text',
};

/** cache-extractor reads --max-uploaded-archive-size for its default extraction limit and its download bound. */
export const EXTRACTOR_FLAG_HELP: Record<string, string> = {
  'max-uploaded-archive-size': 'BYTES  the upload limit the archive was made under: a bigger download is refused, and --max-extracted-size defaults to 10 x it [CACHE_MAX_UPLOADED_ARCHIVE_SIZE]',
};

/** Usage line + one line per flag of `flags`, so --help never leaves one out (test/unit/archive-cli.test.ts). */
export function helpText(usage: string, flags: Record<string, { type: string }>, own: Record<string, string> = {}): string {
  const lines = Object.keys(flags).map((name) => `  --${name}${flags[name].type === 'boolean' ? '  ' : ' '}${own[name] ?? FLAG_HELP[name] ?? ''}`);
  return `${usage}\n${lines.join('\n')}\nA value in [BRACKETS] is the environment variable read when the flag is not given.\n`;
}

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
