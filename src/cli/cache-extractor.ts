/**
 * `cachegate cache-extractor` — local part (SPEC §5): extract `--file` (zip or tar.zst, detected
 * by magic bytes) into the working directory, safely. Downloading is a separate step
 * (src/transfer), reached through `deps.download` when the caller provides it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ArchiveLimitError, CorruptArchiveError, UnsafeEntryError, extractArchive, extractLimits, type ExtractLimits } from '../archive/index.ts';
import { EXTRACTOR_FLAGS, EXTRACTOR_FLAG_HELP, helpText, helperOutput, parseCommand, parseExtractorArgs } from '../archive/helper-args.ts';
import { helperMemorySettings, type HelperMemorySettings } from '../archive/memory-budget.ts';

export interface ExtractorDeps {
  /**
   * Brings `file` up to date from --url/--gocloud-url (and the alternates); returns an exit code
   * to stop with (e.g. 1 on a 404 so that the next fallback key is tried), or null to extract.
   */
  download?: (file: string, values: ReturnType<typeof parseExtractorArgs>) => Promise<number | null>;
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
  cwd?: string;
}

const USAGE = helpText(`Usage: cachegate cache-extractor --file cache.zip [--url URL --head-url URL | --gocloud-url s3://… --env-file FILE]
  [--alternate-url URL --alternate-head-url URL | --alternate-gocloud-url …] [flags]
An archive that expands past --max-extracted-size or --max-extracted-entries is refused (exit 1).`, EXTRACTOR_FLAGS, EXTRACTOR_FLAG_HELP);

/** Flag, else environment variable; a non-negative integer or undefined. */
function limitValue(flag: string, value: string | undefined, env: string): number | undefined {
  const raw = value ?? process.env[env];
  if (raw === undefined || raw.trim() === '') return undefined;
  if (!/^\d+$/.test(raw.trim())) throw new Error(`--${flag} (or ${env}) must be a whole number, got ${JSON.stringify(raw)}`);
  return Number(raw.trim());
}

function limitsFrom(values: ReturnType<typeof parseExtractorArgs>): ExtractLimits {
  return extractLimits(
    {
      bytes: limitValue('max-extracted-size', values['max-extracted-size'], 'CACHE_MAX_EXTRACTED_SIZE'),
      entries: limitValue('max-extracted-entries', values['max-extracted-entries'], 'CACHE_MAX_EXTRACTED_ENTRIES'),
    },
    limitValue('max-uploaded-archive-size', values['max-uploaded-archive-size'], 'CACHE_MAX_UPLOADED_ARCHIVE_SIZE'),
  );
}

export async function main(argv: string[], deps: ExtractorDeps = {}): Promise<number> {
  const o = helperOutput(deps);
  const { info, warn, fail } = o;
  const values = parseCommand(argv, parseExtractorArgs, USAGE, o);
  if (typeof values === 'number') return values;
  const cwd = deps.cwd ?? process.cwd();
  let limits: ExtractLimits;
  let memory: HelperMemorySettings;
  try {
    limits = limitsFrom(values);
    // A bad --helper-memory / CACHE_HELPER_MEMORY is refused here, before any download.
    memory = helperMemorySettings(values['helper-memory'], process.env);
  } catch (e) {
    return fail((e as Error).message);
  }
  const file = path.resolve(cwd, values.file);
  if (values.url || values['gocloud-url'] || values['alternate-url'] || values['alternate-gocloud-url']) {
    if (!deps.download) warn('downloading is not available in this build; using the local file only');
    else {
      const code = await deps.download(file, values);
      if (code !== null) return code;
    }
  }
  if (!fs.existsSync(file)) return fail(`cache file ${values.file} does not exist`);
  try {
    const res = await extractArchive(file, cwd, { onWarning: warn, limits, budgetBytes: memory.extractInFlightBytes, largeEntryWorkers: memory.largeEntryWorkers });
    info(`Successfully extracted cache (${res.format}, ${res.entries} entries)`);
    return 0;
  } catch (e) {
    if (e instanceof UnsafeEntryError) return fail(`refusing to extract ${values.file}: ${e.message}`);
    if (e instanceof CorruptArchiveError) return fail(`${values.file}: ${e.message}`);
    if (e instanceof ArchiveLimitError) return fail(`refusing to extract ${values.file}: ${e.message}`);
    return fail(`extracting ${values.file}: ${(e as Error).message}`);
  }
}
