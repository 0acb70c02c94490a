/**
 * The helper commands (SPEC §5): the archive side (cache-archiver.ts / cache-extractor.ts) with the
 * transfer side (helper-transfer.ts) plugged in. Start-up is most of a small job's time (~0.28 s,
 * nearly all of it stripping and compiling TypeScript), so: the compile cache first, then only the
 * modules the command needs (the transfer side, and node:http with it, only when there is a URL).
 */
import { limitYoungGeneration } from '../archive/memory.ts';
import type { ArchiverDeps } from './cache-archiver.ts';
import type { ExtractorDeps } from './cache-extractor.ts';
import { enableCompileCache } from './helper-startup.js';

function prepare(): void {
  enableCompileCache();
  limitYoungGeneration();
}

const upload: NonNullable<ArchiverDeps['upload']> = async (...args) => (await import('./helper-transfer.ts')).archiverUpload()(...args);
const download: NonNullable<ExtractorDeps['download']> = async (...args) => (await import('./helper-transfer.ts')).extractorDownload()(...args);

export async function archiver(argv: string[]): Promise<number> {
  prepare();
  const { main } = await import('./cache-archiver.ts');
  return main(argv, { upload });
}

export async function extractor(argv: string[]): Promise<number> {
  prepare();
  const { main } = await import('./cache-extractor.ts');
  return main(argv, { download });
}
