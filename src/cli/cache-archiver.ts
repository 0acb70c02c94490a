/**
 * `cachegate cache-archiver` — local part (SPEC §5): select files, skip when unchanged, create the
 * archive atomically, write metadata.json. Uploading is a separate step (src/transfer), reached
 * through `deps.upload` when the caller provides it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createArchiveFile, parseArchiveFormat, parseCompressionLevel, selectFiles } from '../archive/index.ts';
import { helperMemorySettings, type HelperMemorySettings } from '../archive/memory-budget.ts';
import { ARCHIVER_FLAGS, helpText, helperOutput, metadataJson, parseCommand, parseArchiverArgs, type HelperOutput } from '../archive/helper-args.ts';

export interface ArchiverDeps {
  /** Uploads `file` when --url/--gocloud-url is given; returns the exit code. */
  upload?: (file: string, values: ReturnType<typeof parseArchiverArgs>, changed: boolean) => Promise<number>;
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
  env?: Record<string, string | undefined>;
  cwd?: string;
}

const USAGE = helpText(`Usage: cachegate cache-archiver --file cache.zip --path PATH [--path PATH…] [--untracked]
  [--url URL --header "Name: value"… | --gocloud-url s3://… --env-file FILE | --server URL --key KEY --project ID] [flags]`, ARCHIVER_FLAGS);

export async function main(argv: string[], deps: ArchiverDeps = {}): Promise<number> {
  const o = helperOutput(deps);
  const { info, warn, fail } = o;
  const env = deps.env ?? process.env;
  const values = parseCommand(argv, parseArchiverArgs, USAGE, o);
  if (typeof values === 'number') return values;
  if ((values.path ?? []).length === 0 && !values.untracked) {
    // Upstream says "No files to cache." and exits 0 here: a job that caches nothing, silently.
    return fail('nothing to archive: give the paths to cache with --path PATH (repeatable) and/or --untracked; a helperArgs from /v1/presign leaves them to be appended');
  }
  if (values.server !== undefined) {
    const missing = [['--key', values.key], ['--project', values.project], ['--token or CACHEGATE_RUNNER_TOKEN', values.token ?? env.CACHEGATE_RUNNER_TOKEN]].filter(([, v]) => !v).map(([n]) => n);
    if (missing.length > 0) return fail(`--server needs ${missing.join(', ')}`);
    if (values.url || values['gocloud-url']) return fail('--server asks cachegate for the URL: give it without --url / --gocloud-url');
  }
  const cwd = deps.cwd ?? process.cwd();
  const file = path.resolve(cwd, values.file);
  if (values['alternate-file']) adoptAlternate(file, path.resolve(cwd, values['alternate-file']), values.file, values['alternate-file'], o);
  const format = parseArchiveFormat(values['compression-format'] ?? env.CACHE_COMPRESSION_FORMAT);
  if (format.warning) warn(format.warning);
  const level = parseCompressionLevel(values['compression-level'] ?? env.CACHE_COMPRESSION_LEVEL);
  if (level.warning) warn(level.warning);
  const hardLinksRaw = values['tar-hard-links'] ?? env.CACHE_TAR_HARD_LINKS;
  if (hardLinksRaw !== undefined && !['true', '1', 'false', '0', ''].includes(hardLinksRaw)) {
    return fail(`--tar-hard-links (or CACHE_TAR_HARD_LINKS) must be true or false, got ${JSON.stringify(hardLinksRaw)}`);
  }
  const hardLinks = hardLinksRaw !== 'false' && hardLinksRaw !== '0';
  let memory: HelperMemorySettings;
  try {
    memory = helperMemorySettings(values['helper-memory'], env);
  } catch (e) {
    return fail((e as Error).message);
  }
  // tar.zst: the frame threads start up while the files are selected (zstd-frames.ts)
  const frames = format.value === 'tarzstd' ? await import('../archive/zstd-frames.ts') : undefined;
  frames?.prestartFrameWorkers(memory.zstdFrameWorkers);

  const sel = await selectFiles({
    cwd,
    paths: values.path ?? [],
    exclude: values.exclude ?? [],
    untracked: values.untracked ?? false,
    env,
    onWarning: warn,
    onInfo: info,
  });
  if (sel.entries.length === 0) {
    await frames?.releasePrestartedFrameWorkers();
    info('No files to cache.');
    return 0;
  }

  // Unchanged: no entry newer than the existing archive → keep it (upstream isFileChanged).
  let changed = true;
  try {
    const st = fs.statSync(file);
    if (sel.newestMtimeMs <= st.mtimeMs) changed = false;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') warn((e as Error).message);
  }
  if (changed) {
    try {
      const res = await createArchiveFile(sel.entries, file, format.value, level.value, { onWarning: warn, hardLinks, zstdFrames: { parallel: memory.zstdFrameWorkers, buffers: memory.zstdFrameBuffers } });
      // which deflate engine ran (native addon or node:zlib), for zip: docs/archive.md "Deflate engines"
      const engine = format.value === 'zip' ? `, deflate: ${(await import('../archive/native-deflate.ts')).deflateEngine()}` : '';
      info(`Created cache archive ${values.file} (${format.value}${engine}, ${res.entries} entries, ${res.bytes} bytes)`);
    } catch (e) {
      return fail(`creating ${values.file}: ${(e as Error).message}`);
    } finally {
      await frames?.releasePrestartedFrameWorkers();
    }
    fs.writeFileSync(path.join(path.dirname(file), 'metadata.json'), metadataJson(values.metadata ?? env.CACHE_METADATA, warn));
  } else {
    await frames?.releasePrestartedFrameWorkers();
    info('Archive is up to date!');
  }

  if (values.url || values['gocloud-url'] || values.server) {
    if (!deps.upload) return fail('uploading is not available in this build; the cache is stored only locally');
    return deps.upload(file, values, changed);
  }
  info('No URL provided, cache will not be uploaded to shared cache server. Cache will be stored only locally.');
  return 0;
}

/**
 * `--alternate-file` (GitLab Runner merge request !6546, for FF_HASH_CACHE_KEYS switched on or off): the
 * same cache's local archive under its other name (hashed ↔ plain key). When `--file` does not exist
 * and the alternate does, the alternate is renamed to `--file` (its metadata.json with it when it
 * sits in another directory) before anything else, so that the unchanged-tree check and the upload
 * use it instead of building the archive again. When `--file` exists, the alternate is left alone.
 * A rename that fails (another file system) is a warning: the archive is then built afresh.
 */
function adoptAlternate(file: string, alternate: string, fileArg: string, alternateArg: string, o: HelperOutput): void {
  if (alternate === file || fs.existsSync(file)) return;
  let st: fs.Stats;
  try {
    st = fs.lstatSync(alternate);
  } catch {
    return;
  }
  if (!st.isFile()) return;
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.renameSync(alternate, file);
  } catch (e) {
    o.warn(`cannot rename ${alternateArg} to ${fileArg}: ${(e as Error).message}`);
    return;
  }
  o.info(`Renamed ${alternateArg} to ${fileArg}`);
  const from = path.join(path.dirname(alternate), 'metadata.json');
  const to = path.join(path.dirname(file), 'metadata.json');
  if (from !== to && fs.existsSync(from) && !fs.existsSync(to)) {
    try {
      fs.renameSync(from, to);
    } catch (e) {
      o.warn(`cannot move ${from} next to ${fileArg}: ${(e as Error).message}`);
    }
  }
}
