/** Archive format by magic bytes (SPEC §5): `28 B5 2F FD` → tar.zst, otherwise zip (zip and zipzstd read alike). */
import { openInput, type GrowingFile } from './input.ts';

/** The zstd frame magic number, little-endian. */
export const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);

export async function detectFormat(file: string, growing?: GrowingFile): Promise<'tarzstd' | 'zip'> {
  const { handle: fh } = await openInput(file, growing);
  try {
    const buf = Buffer.alloc(4);
    const { bytesRead } = await fh.read(buf, 0, 4, 0);
    return bytesRead === 4 && buf.equals(ZSTD_MAGIC) ? 'tarzstd' : 'zip';
  } finally {
    await fh.close();
  }
}
