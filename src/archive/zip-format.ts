/**
 * Zip on-disk structures (PKWARE APPNOTE 6.3): signatures, DOS time, the extra fields we write
 * and read (0x0001 zip64, 0x5455 extended timestamp, 0x7875 Info-ZIP Unix uid/gid).
 */
export const SIG_LOCAL = 0x04034b50;
export const SIG_CENTRAL = 0x02014b50;
export const SIG_DESCRIPTOR = 0x08074b50;
export const SIG_EOCD = 0x06054b50;
export const SIG_ZIP64_EOCD = 0x06064b50;
export const SIG_ZIP64_LOCATOR = 0x07064b50;

export const EXTRA_ZIP64 = 0x0001;
export const EXTRA_TIMESTAMP = 0x5455;
export const EXTRA_UNIX_UIDGID = 0x7875;

export const FLAG_ENCRYPTED = 0x0001;
export const FLAG_DESCRIPTOR = 0x0008;
export const FLAG_UTF8 = 0x0800;

export const MAX16 = 0xffff;
export const MAX32 = 0xffffffff;

/** Version made by: host 3 (Unix), spec 6.3. */
export const MADE_BY_UNIX = (3 << 8) | 63;
export const HOST_UNIX = 3;

/** DOS date/time (local time, 2-second resolution, 1980..2107). */
export function toDosDateTime(mtimeMs: number): { time: number; date: number } {
  const d = new Date(mtimeMs);
  let year = d.getFullYear();
  if (year < 1980) return { time: 0, date: (1 << 5) | 1 };
  if (year > 2107) year = 2107;
  return {
    time: (d.getHours() << 11) | (d.getMinutes() << 5) | (d.getSeconds() >> 1),
    date: ((year - 1980) << 9) | ((d.getMonth() + 1) << 5) | d.getDate(),
  };
}

export function fromDosDateTime(time: number, date: number): number {
  const year = ((date >> 9) & 0x7f) + 1980;
  const month = ((date >> 5) & 0xf) - 1;
  const day = date & 0x1f;
  return new Date(year, month, day || 1, (time >> 11) & 0x1f, (time >> 5) & 0x3f, (time & 0x1f) * 2).getTime();
}

export function writeU64(buf: Buffer, value: number, off: number): void {
  buf.writeUInt32LE(value % 0x100000000, off);
  buf.writeUInt32LE(Math.floor(value / 0x100000000), off + 4);
}

export function readU64(buf: Buffer, off: number): number {
  const v = buf.readUInt32LE(off) + buf.readUInt32LE(off + 4) * 0x100000000;
  if (!Number.isSafeInteger(v)) throw new Error('zip64 value too large');
  return v;
}

/** Unix seconds clamped to what a signed 32-bit field holds. */
export function unixSeconds32(mtimeMs: number): number {
  return Math.max(-0x80000000, Math.min(0x7fffffff, Math.floor(mtimeMs / 1000)));
}
