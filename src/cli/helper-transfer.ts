/**
 * The transfer half of the helper commands: turns cache-archiver / cache-extractor flags (and their
 * environment fallbacks) into src/transfer calls, and the results into GitLab Runner's messages and
 * exit codes. The archive half lives in cache-archiver.ts / cache-extractor.ts.
 */
import { statSync } from 'node:fs';
import type { ArchiverDeps } from './cache-archiver.ts';
import type { ExtractorDeps } from './cache-extractor.ts';
import {
  checkRemote, createMeter, download, meterFrequency, parseGoDuration, parseHeaderFlags, readEnvFile, tooBigMessage, upload,
  type CommonOptions,
} from '../transfer/index.ts';
import { presignUpload } from '../transfer/ask-server.ts';
import { helperMemorySettings, type HelperMemorySettings } from '../archive/memory-budget.ts';
import { pickNewer } from '../transfer/newer.ts';
import { collectAll } from '../transfer/young-gc.ts';
import { CorruptArchiveError, UnsafeEntryError, verifyArchive, type GrowingFile } from '../archive/index.ts';
import { withoutValues } from '../redact-signatures.ts';

type Env = Record<string, string | undefined>;
type Flags = {
  timeout?: string; retry?: string; 'retry-time'?: string; 'chunk-size'?: string; concurrency?: string;
  'transfer-meter-frequency'?: string; 'env-file'?: string; 'helper-memory'?: string;
};

export interface TransferIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  env: Env;
}

const defaultIo = (): TransferIo => ({ stdout: process.stdout, stderr: process.stderr, env: process.env });

function int(value: string | undefined, name: string): number | undefined {
  if (value === undefined || value === '') return undefined;
  if (!/^[0-9]+$/.test(value.trim())) throw new Error(`${name}: "${value}" is not a whole number`);
  return Number(value);
}

/** --retry-time takes a Go duration ("1s", "500ms") or plain seconds. */
function seconds(value: string | undefined, name: string): number | undefined {
  if (value === undefined || value === '') return undefined;
  if (/^[0-9]+(\.[0-9]+)?$/.test(value.trim())) return Number(value) * 1000;
  try {
    return parseGoDuration(value);
  } catch {
    throw new Error(`${name}: "${value}" is not a duration`);
  }
}

async function common(flags: Flags, io: TransferIo, label: string): Promise<{ opts: Omit<CommonOptions, 'file'>; done: () => void; memory: HelperMemorySettings }> {
  const memory = helperMemorySettings(flags['helper-memory'], io.env);
  const minutes = int(flags.timeout, '--timeout') ?? 10;
  const freq = meterFrequency(flags['transfer-meter-frequency'] ?? io.env.TRANSFER_METER_FREQUENCY, io.stderr.isTTY === true);
  const meter = freq > 0 ? createMeter({ label, frequencyMs: freq, stream: io.stderr }) : undefined;
  return {
    opts: {
      env: flags['env-file'] ? await readEnvFile(flags['env-file']) : undefined,
      timeoutMs: minutes * 60_000,
      retries: int(flags.retry, '--retry'),
      retryDelayMs: seconds(flags['retry-time'], '--retry-time'),
      chunkSize: int(flags['chunk-size'] ?? io.env.CACHE_CHUNK_SIZE, '--chunk-size'),
      // the memory budget's parts in flight unless --concurrency / CACHE_CONCURRENCY says otherwise
      concurrency: int(flags.concurrency ?? io.env.CACHE_CONCURRENCY, '--concurrency') ?? memory.transferConcurrency,
      onProgress: meter?.onProgress,
      onRetry: (err, attempt) => void io.stderr.write(`WARNING: retrying (${attempt}): ${(err as Error).message}\n`),
    },
    done: () => meter?.done(),
    memory,
  };
}

export function archiverUpload(io: TransferIo = defaultIo()): NonNullable<ArchiverDeps['upload']> {
  return async (file, values, changed) => {
    const fail = (m: string): number => {
      io.stderr.write(`ERROR: ${m}\n`);
      return 1;
    };
    // What this upload sends (header values, role credentials), to be kept out of its error messages.
    const sent: string[] = [];
    try {
      let headers = parseHeaderFlags(values.header);
      sent.push(...Object.values(headers));
      let url = values.url;
      let goCloudUrl = values['gocloud-url'];
      let env: Record<string, string> | undefined;
      let signedMetadata: Record<string, string> | undefined;
      const limit = int(values['max-uploaded-archive-size'] ?? io.env.CACHE_MAX_UPLOADED_ARCHIVE_SIZE, '--max-uploaded-archive-size') ?? 0;
      const size = statSync(file).size;
      // No "Uploading …" line for an archive that will not be uploaded.
      if (limit > 0 && size > limit) {
        io.stdout.write(`${tooBigMessage(size, limit)}\n`);
        return 0;
      }
      if (values.server !== undefined) {
        const asked = await presignUpload({
          server: values.server, token: values.token ?? io.env.CACHEGATE_RUNNER_TOKEN ?? '', key: values.key ?? '', projectId: values.project ?? '', size,
          hashKeys: values['hash-keys'],
        });
        if (asked.status === 'too-big') {
          io.stdout.write(`${asked.message}\n`);
          return 0;
        }
        ({ url, headers, goCloudUrl, env } = asked);
        sent.push(...Object.values(headers), ...Object.values(env ?? {}));
        if (goCloudUrl !== undefined) url = undefined;
        signedMetadata = asked.metadata;
      }
      if (!changed && values['check-url'] && (await checkRemote(values['check-url'], { headers: {} })) === 'exists') {
        io.stdout.write('Archive is up to date and present on the cache server: not uploading\n');
        return 0;
      }
      let metadata: Record<string, string> | undefined = signedMetadata;
      const rawMeta = values.metadata ?? io.env.CACHE_METADATA;
      if (rawMeta && metadata === undefined) {
        try {
          metadata = JSON.parse(rawMeta) as Record<string, string>;
        } catch {
          metadata = undefined; // cache-archiver already warned when it wrote metadata.json
        }
      }
      const { opts, done } = await common(values, io, 'Uploading cache');
      sent.push(...Object.values(opts.env ?? {}));
      const where = goCloudUrl ? 'the cache bucket' : 'the cache server';
      io.stdout.write(`Uploading ${file.split('/').pop()} to ${where}\n`);
      const result = await upload({
        ...opts,
        ...(env !== undefined ? { env } : {}),
        file,
        url,
        headers,
        goCloudUrl,
        metadata,
        maxUploadedArchiveSize: limit,
      });
      done();
      if (result.status === 'too-big') {
        io.stdout.write(`${result.message}\n`);
        return 0;
      }
      io.stdout.write(`Created cache (${result.size} bytes, ${result.mode}${result.parts > 1 ? `, ${result.parts} parts` : ''})\n`);
      return 0;
    } catch (err) {
      return fail(`uploading the cache failed: ${withoutValues((err as Error).message, sent)}`);
    }
  };
}

/** A downloaded archive replaces the local one only when every entry checks out (issue 6); checked while it arrives. */
async function verifyDownload(tmp: string, growing: GrowingFile | undefined, memory: { extractInFlightBytes: number; largeEntryWorkers: number }): Promise<void> {
  try {
    await verifyArchive(tmp, { growing, budgetBytes: memory.extractInFlightBytes, largeEntryWorkers: memory.largeEntryWorkers });
  } catch (err) {
    const kept = 'the local archive was not replaced';
    if (err instanceof CorruptArchiveError) throw new Error(`the downloaded archive is corrupt (${err.message}); ${kept}`, { cause: err });
    if (err instanceof UnsafeEntryError) throw new Error(`the downloaded archive would be refused (${err.message}); ${kept}`, { cause: err });
    throw err;
  }
}

export function extractorDownload(io: TransferIo = defaultIo()): NonNullable<ExtractorDeps['download']> {
  return async (file, values) => {
    try {
      // memory: the budget's zip entries in flight and large-entry workers, for the verification as for the extraction
      const { opts, done, memory } = await common(values, io, 'Downloading cache');
      const primary = { url: values.url, headUrl: values['head-url'], goCloudUrl: values['gocloud-url'] };
      const alternate = { url: values['alternate-url'], headUrl: values['alternate-head-url'], goCloudUrl: values['alternate-gocloud-url'] };
      let attempts = [primary, alternate].filter((a) => a.url || a.goCloudUrl);
      if (attempts.length === 2) {
        // The newer of the two (GitLab Runner's rule, newer.ts); the other stays as a fallback for a 404.
        const choice = await pickNewer(primary, alternate, { env: opts.env, timeoutMs: opts.timeoutMs });
        io.stdout.write(`${choice.reason}\n`);
        if (choice.pick === 'alternate') attempts = [alternate, primary];
      }
      const maxSize = int(values['max-uploaded-archive-size'] ?? io.env.CACHE_MAX_UPLOADED_ARCHIVE_SIZE, '--max-uploaded-archive-size');
      for (const a of attempts) {
        const r = await download({ ...opts, file, maxSize, url: a.goCloudUrl ? undefined : a.url, goCloudUrl: a.goCloudUrl, headUrl: a.headUrl, verify: (tmp, growing) => verifyDownload(tmp, growing, memory) });
        if (r.status === 'not-found') continue;
        done();
        collectAll();
        if (r.status === 'up-to-date') io.stdout.write(`${file.split('/').pop()} is up to date\n`);
        else io.stdout.write(`Downloaded ${r.size} bytes${r.ranged ? ` in ${r.parts} ranged part${r.parts === 1 ? '' : 's'}` : ''}\n`);
        return null;
      }
      done();
      io.stderr.write('WARNING: cache not found on the cache server\n');
      return 1;
    } catch (err) {
      io.stderr.write(`ERROR: downloading the cache failed: ${(err as Error).message}\n`);
      return 1;
    }
  };
}
