/** `cachegate <command>`: dispatch to the command modules, each loaded only when used. */
import { VERSION } from '../version.ts';

const USAGE = `cachegate ${VERSION} — presigner and proxy for CI build caches (GitLab Runner compatible)

Usage:
  cachegate serve [--config FILE] [--listen HOST:PORT] [--data-dir DIR]
  cachegate check [--config FILE] [--probe]
  cachegate presign --config FILE (--runner NAME | --token TOKEN) --operation download|upload|head
                    --key KEY --project ID [--hash-keys] [--timeout SECONDS] [--content-length BYTES]
                    [--fallback-key KEY]... [--cache-fallback-key KEY]
  cachegate usage [--config FILE] [--json] [--url URL]
  cachegate lifecycle [--config FILE] [--runner NAME]
  cachegate cache-archiver  ...   (GitLab Runner helper compatible; --help for flags)
  cachegate cache-extractor ...
  cachegate version

Environment:
  CACHEGATE_CONFIG (--config), CACHEGATE_LISTEN (--listen), CACHEGATE_DATA_DIR (--data-dir),
  CACHEGATE_PUBLIC_URL, CACHEGATE_LOG_FORMAT, CACHEGATE_LOG_LEVEL, CACHEGATE_LOCAL_SIGNING_KEY ([cachegate] settings);
  CACHEGATE_RUNNER_TOKEN (token of the CACHE_* profile; the helper's --server token);
  GitLab Runner's CACHE_TYPE, CACHE_PATH, CACHE_SHARED, CACHE_MAXIMUM_UPLOADED_ARCHIVE_SIZE, CACHE_S3_*, CACHE_GCS_*,
  GOOGLE_APPLICATION_CREDENTIALS, CACHE_AZURE_* (one profile, when no --config is given);
  helper: CACHE_MAX_UPLOADED_ARCHIVE_SIZE, CACHE_METADATA, CACHE_COMPRESSION_FORMAT, CACHE_COMPRESSION_LEVEL,
  CACHE_CHUNK_SIZE, CACHE_CONCURRENCY, TRANSFER_METER_FREQUENCY, CACHEGATE_COMPILE_CACHE=0 (no compile cache).
Each command's --help lists its flags.
`;

type Command = (argv: string[]) => Promise<number>;

const commands: Record<string, () => Promise<Command>> = {
  serve: async () => (await import('./serve.ts')).main,
  check: async () => (await import('./check.ts')).main,
  presign: async () => (await import('./presign.ts')).main,
  usage: async () => (await import('./usage.ts')).main,
  lifecycle: async () => (await import('./lifecycle.ts')).main,
  'cache-archiver': async () => (await import('./helper.ts')).archiver,
  'cache-extractor': async () => (await import('./helper.ts')).extractor,
};

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    process.stdout.write(USAGE);
    return name === undefined ? 2 : 0;
  }
  if (name === 'version' || name === '--version') {
    process.stdout.write(`cachegate ${VERSION}\n`);
    return 0;
  }
  const load = commands[name];
  if (!load) {
    process.stderr.write(`cachegate: unknown command "${name}"\n\n${USAGE}`);
    return 2;
  }
  try {
    return await (await load())(rest);
  } catch (err) {
    process.stderr.write(`cachegate ${name}: ${(err as Error).message}\n`);
    return 1;
  }
}
