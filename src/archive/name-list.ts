/**
 * File names for the native addon's batch jobs (packFiles, readFiles): NUL-terminated, back to
 * back, in one reused buffer that grows only for long names.
 */
export class NameList {
  private buf = Buffer.allocUnsafe(64 * 1024);
  private used = 0;

  add(path: string): void {
    const need = Buffer.byteLength(path) + 1;
    if (this.used + need > this.buf.length) {
      const grown = Buffer.allocUnsafe(Math.max(2 * this.buf.length, this.used + need));
      this.buf.copy(grown, 0, 0, this.used);
      this.buf = grown;
    }
    this.used += this.buf.write(path, this.used, 'utf8');
    this.buf[this.used++] = 0;
  }

  /** The names so far (valid until the next add or reset). */
  bytes(): Buffer {
    return this.buf.subarray(0, this.used);
  }

  reset(): void {
    this.used = 0;
  }
}
