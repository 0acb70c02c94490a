/**
 * Verifies a local archive without writing anything: the same readers as extraction, with a sink
 * that keeps nothing. What is checked:
 * - zip / zipzstd: the central directory (zip64 aware), every local header, every entry decoded
 *   with its size and CRC-32 compared with the central directory, every name valid;
 * - tar.zst: every zstd frame decoded (libzstd checks each frame's content checksum when the frame
 *   has one, as ours and the zstd CLI's do), no truncated frame, every tar header checksum, every
 *   entry's data present, and the end-of-archive block.
 * Used by cache-extractor before a downloaded archive replaces the local one, while the download is
 * still running (`opts.growing`: reads wait for their bytes).
 */
import { detectFormat } from './detect.ts';
import { cleanEntryName, type EntrySink } from './safe-writer.ts';
import { readTarZstd } from './tar-reader.ts';
import { BLOCK, SmallDecoder } from './compress.ts';
import { decodeChecked, readZip, type ExtractOptions, type ExtractResult } from './zip-reader.ts';

/** Decodes, checks, and throws the data away. */
class VerifySink implements EntrySink {
  /** Zip entries up to 1 MiB are decoded here, synchronously, into one reused buffer: the general path gives each a fresh input copy and output buffer, garbage that kept ~60–75 MB of ArrayBuffers resident while a node_modules zip was verified during its download. */
  private readonly decoder = new SmallDecoder(BLOCK);
  check(name: string): string {
    return cleanEntryName(name);
  }

  dir(): void {}

  symlink(): void {}

  hardlink(): void {}

  writeFileSync(): void {}

  writePacked(name: string, _rel: string, _mode: number, _mtimeMs: number, method: number, packed: Buffer, size: number, crc: number): boolean {
    decodeChecked(this.decoder, name, method, packed, size, crc);
    return true;
  }

  async streamFile(_rel: string, _mode: number, _mtimeMs: number, produce: (write: (chunk: Buffer) => Promise<void>, fd: number | null) => Promise<void>): Promise<void> {
    await produce(async () => {}, null);
  }

  async finish(): Promise<void> {}

  close(): void {}
}

/** Throws CorruptArchiveError (or UnsafeEntryError for a name extraction would refuse). */
export async function verifyArchive(file: string, opts: ExtractOptions = {}): Promise<ExtractResult & { format: 'tarzstd' | 'zip' }> {
  const format = await detectFormat(file, opts.growing);
  const sink = new VerifySink();
  const result = format === 'tarzstd' ? await readTarZstd(file, sink, { ...opts, requireEnd: true }) : await readZip(file, async () => sink, opts);
  return { ...result, format };
}
