/**
 * The helper commands (SPEC §5): the archive side (cache-archiver.ts / cache-extractor.ts) with the
 * transfer side (helper-transfer.ts) plugged in.
 */
import { limitYoungGeneration } from '../archive/memory.ts';
import { archiverUpload, extractorDownload } from './helper-transfer.ts';

export async function archiver(argv: string[]): Promise<number> {
  limitYoungGeneration();
  const { main } = await import('./cache-archiver.ts');
  return main(argv, { upload: archiverUpload() });
}

export async function extractor(argv: string[]): Promise<number> {
  limitYoungGeneration();
  const { main } = await import('./cache-extractor.ts');
  return main(argv, { download: extractorDownload() });
}
