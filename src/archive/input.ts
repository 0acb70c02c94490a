/**
 * How the readers open an archive: a local file, or a file still being downloaded (cache-extractor
 * verifies an archive while its bytes arrive; see docs/transfer.md). For the latter every read first
 * waits until the bytes it covers are on disk, so the readers need not know the difference.
 */
import fs from 'node:fs';

/** The part of FileHandle the readers use. */
export interface ReadHandle {
  /** The descriptor, for threads that read it themselves (entry-workers.ts). */
  readonly fd: number;
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  close(): Promise<void>;
}

/** A file being written in any order, whose final size is known. */
export interface GrowingFile {
  readonly size: number;
  /** Where the parts that arrive side by side begin (ascending), when there are several. */
  readonly starts?: readonly number[];
  /** Resolves once bytes [start, end) are on disk; rejects when they never will be. */
  ready(start: number, end: number): Promise<void>;
}

export async function openInput(file: string, growing?: GrowingFile): Promise<{ handle: ReadHandle; size: number }> {
  const fh = await fs.promises.open(file, 'r');
  if (!growing) {
    try {
      return { handle: fh, size: (await fh.stat()).size };
    } catch (err) {
      await fh.close();
      throw err;
    }
  }
  const size = growing.size;
  return {
    handle: {
      fd: fh.fd,
      read: async (buffer, offset, length, position) => {
        await growing.ready(position, Math.min(position + length, size));
        return fh.read(buffer, offset, length, position);
      },
      close: () => fh.close(),
    },
    size,
  };
}
