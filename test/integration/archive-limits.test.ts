/**
 * Bounds on what an archive can make extraction allocate or write (issue 14): symlink targets
 * (item 2), tar extended headers (item 4), total bytes and entries (item 9). Archives are built by
 * Python's zipfile and raw tar + the zstd CLI; every refusal is a clean error naming the entry or
 * the limit, with nothing outside the working directory and no partial file left.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { ArchiveLimitError, CorruptArchiveError, UnsafeEntryError, extractArchive, verifyArchive } from '../../src/archive/index.ts';
import { main as extractor } from '../../src/cli/cache-extractor.ts';
import { listAll, rmrf, run, tempDir } from '../fixtures/archive/tree.ts';
import { buildArchive, paxData, tarEntry, writeTarZst } from '../fixtures/archive/evil.ts';

/** A zip with the given entries: [name, 'f' | 'l', data as a Python expression]. */
function pyZip(file: string, entries: Array<[string, 'f' | 'l', string]>): void {
  const py = `
import sys, zipfile, stat
zf = zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_DEFLATED)
for name, kind, expr in ${JSON.stringify(entries)}:
    zi = zipfile.ZipInfo(name)
    zi.create_system = 3
    zi.compress_type = zipfile.ZIP_DEFLATED
    zi.external_attr = ((stat.S_IFLNK | 0o777) if kind == 'l' else (stat.S_IFREG | 0o644)) << 16
    zf.writestr(zi, eval(expr))
zf.close()
`;
  const r = run('python3', ['-c', py, file]);
  assert.equal(r.status, 0, r.stderr);
}

async function withDirs(fn: (tmp: string, work: string) => Promise<void>): Promise<void> {
  const tmp = await tempDir();
  try {
    const work = path.join(tmp, 'work');
    await fs.promises.mkdir(work);
    await fn(tmp, work);
    assert.deepEqual((await fs.promises.readdir(tmp)).sort().filter((n) => n !== 'work' && !n.startsWith('a.')), [], 'nothing next to the working directory');
  } finally {
    await rmrf(tmp);
  }
}

function expectError(cls: new (...a: never[]) => Error, pattern: RegExp): (err: unknown) => boolean {
  return (err) => {
    assert.ok(err instanceof cls, `${cls.name} expected, got ${String(err)}`);
    assert.match((err as Error).message, pattern);
    return true;
  };
}

// ---- item 2: symlink targets

test('zip: a symlink target of 5,000 bytes is refused before decoding (extraction and verification)', () =>
  withDirs(async (tmp, work) => {
    const file = path.join(tmp, 'a.zip');
    pyZip(file, [['ok.txt', 'f', "b'ok'"], ['link', 'l', "b'x' * 5000"]]);
    await assert.rejects(extractArchive(file, work), expectError(UnsafeEntryError, /"link".*longer than 4096 bytes/));
    await assert.rejects(verifyArchive(file), expectError(UnsafeEntryError, /longer than 4096 bytes/));
    assert.ok(!fs.existsSync(path.join(work, 'link')));
  }));

test('zip: a symlink whose target is a 64 MiB deflate bomb is refused by its declared size, without decoding it', () =>
  withDirs(async (tmp, work) => {
    const file = path.join(tmp, 'a.zip');
    pyZip(file, [['link', 'l', "b'\\0' * (64 << 20)"]]);
    assert.ok(fs.statSync(file).size < 200_000);
    const rss = process.memoryUsage().rss;
    await assert.rejects(extractArchive(file, work), expectError(UnsafeEntryError, /declared 67108864 bytes/));
    assert.ok(process.memoryUsage().rss - rss < 48 << 20, 'the target was not decoded into memory');
  }));

test('zip: a symlink that declares 4,000 bytes but inflates to 1 MiB fails as corrupt (decoding is bounded by the declared size)', () =>
  withDirs(async (tmp, work) => {
    const file = path.join(tmp, 'a.zip');
    pyZip(file, [['link', 'l', "b'y' * (1 << 20)"]]);
    // Patch the declared uncompressed size (local header and central directory) to 4,000.
    const buf = fs.readFileSync(file);
    const size = Buffer.alloc(4);
    size.writeUInt32LE(1 << 20);
    for (let i = buf.indexOf(size); i >= 0; i = buf.indexOf(size, i + 4)) buf.writeUInt32LE(4000, i);
    fs.writeFileSync(file, buf);
    await assert.rejects(extractArchive(file, work), expectError(CorruptArchiveError, /link/));
    assert.deepEqual(await listAll(work), []);
  }));

test('tar.zst: a symlink target of 5,000 bytes (PAX linkpath, GNU K header) is refused; a K header declaring 1 GiB is refused before it is read', () =>
  withDirs(async (tmp, work) => {
    const file = path.join(tmp, 'a.tar.zst');
    writeTarZst(file, Buffer.concat([tarEntry({ name: 'ok.txt', type: '0' }, Buffer.from('ok')), tarEntry({ name: 'pax', type: 'x' }, paxData([['linkpath', 'x'.repeat(5000)]])), tarEntry({ name: 'link', type: '2' })]));
    await assert.rejects(extractArchive(file, work), expectError(UnsafeEntryError, /"link".*longer than 4096 bytes/));
    await assert.rejects(verifyArchive(file), expectError(UnsafeEntryError, /longer than 4096 bytes/));
    writeTarZst(file, Buffer.concat([tarEntry({ name: '././@LongLink', type: 'K' }, Buffer.from(`${'k'.repeat(5000)}\0`)), tarEntry({ name: 'link', type: '2' })]));
    await assert.rejects(extractArchive(file, work), expectError(UnsafeEntryError, /longer than 4096 bytes/));
    const head = tarEntry({ name: '././@LongLink', type: 'K' }).subarray(0, 512);
    const huge = Buffer.from(head);
    huge.write(`${(1024 ** 3).toString(8).padStart(11, '0')}\0`, 124, 'ascii');
    huge.fill(0x20, 148, 156);
    let sum = 0;
    for (const x of huge) sum += x;
    huge.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
    writeTarZst(file, Buffer.concat([huge, Buffer.alloc(4096)]));
    await assert.rejects(extractArchive(file, work), expectError(UnsafeEntryError, /longer than 4096 bytes/));
    assert.ok(!fs.existsSync(path.join(work, 'link')));
  }));

test('tar.zst: an entry name longer than 4096 bytes (PAX path of 200,000 components) is refused, not a stack overflow', () =>
  withDirs(async (tmp, work) => {
    const file = path.join(tmp, 'a.tar.zst');
    writeTarZst(file, Buffer.concat([tarEntry({ name: 'PaxHeader', type: 'x' }, paxData([['path', `${'a/'.repeat(200_000)}f`]])), tarEntry({ name: 'x', type: '0' }, Buffer.from('d'))]));
    await assert.rejects(extractArchive(file, work), expectError(UnsafeEntryError, /names longer than 4096 bytes/));
    await assert.rejects(verifyArchive(file), expectError(UnsafeEntryError, /names longer than 4096 bytes/));
    assert.deepEqual(await listAll(work), []);
  }));

// ---- item 4: tar extended headers

test('tar.zst: extended headers are bounded per entry (size and records) and refused before being read', () =>
  withDirs(async (tmp, work) => {
    const file = path.join(tmp, 'a.tar.zst');
    const x = (records: Array<[string, string]>): Buffer => tarEntry({ name: 'PaxHeader', type: 'x' }, paxData(records));
    const entry = tarEntry({ name: 'f.txt', type: '0' }, Buffer.from('data'));
    // 64 consecutive headers of 64 KiB each (the review's pile-up, 4 MiB in all, compressible).
    writeTarZst(file, Buffer.concat([...Array.from({ length: 64 }, (_, i) => x([[`k${i}`, 'v'.repeat(65_000)]])), entry]));
    await assert.rejects(extractArchive(file, work), expectError(CorruptArchiveError, /extended headers of more than 1048576 bytes/));
    // One header declaring 16 MiB: refused at its header.
    const big = tarEntry({ name: 'PaxHeader', type: 'x' }, Buffer.alloc(16 << 20, 0x20));
    writeTarZst(file, Buffer.concat([big, entry]));
    await assert.rejects(extractArchive(file, work), expectError(CorruptArchiveError, /extended headers/));
    // Many short records across several headers: the record count is bounded.
    writeTarZst(file, Buffer.concat([...Array.from({ length: 3 }, (_, h) => x(Array.from({ length: 4000 }, (_, i): [string, string] => [`a${h}.${i}`, 'b']))), entry]));
    await assert.rejects(extractArchive(file, work), expectError(CorruptArchiveError, /more than 10000 PAX records/));
    // A GNU long name of 2 MiB.
    writeTarZst(file, Buffer.concat([tarEntry({ name: '././@LongLink', type: 'L' }, Buffer.alloc(2 << 20, 0x61)), entry]));
    await assert.rejects(extractArchive(file, work), expectError(CorruptArchiveError, /extended headers/));
    assert.ok(!fs.existsSync(path.join(work, 'f.txt')));
    // Within the bounds: 9,000 records and a long path are fine, the last value of a key wins.
    writeTarZst(file, Buffer.concat([x(Array.from({ length: 9000 }, (_, i): [string, string] => [`SCHILY.xattr.user.k${i}`, 'v'])), x([['path', 'dir/first.txt']]), x([['path', 'dir/long-name.txt']]), entry]));
    await extractArchive(file, work);
    assert.equal(fs.readFileSync(path.join(work, 'dir/long-name.txt'), 'utf8'), 'data');
  }));

// ---- item 9: total bytes and entries

test('zip: over the byte or entry limit → refused before anything is written', () =>
  withDirs(async (tmp, work) => {
    const file = path.join(tmp, 'a.zip');
    pyZip(file, [['a.bin', 'f', "b'\\0' * (1 << 20)"], ['b.bin', 'f', "b'\\0' * (1 << 20)"], ['c.txt', 'f', "b'c'"]]);
    await assert.rejects(extractArchive(file, work, { limits: { bytes: (1 << 21) - 1 } }), expectError(ArchiveLimitError, /more than 2097151 bytes/));
    await assert.rejects(extractArchive(file, work, { limits: { entries: 2 } }), expectError(ArchiveLimitError, /more than 2 entries/));
    assert.deepEqual(await listAll(work), [], 'nothing written');
    await extractArchive(file, work, { limits: { bytes: (1 << 21) + 1, entries: 3 } });
    assert.equal(fs.statSync(path.join(work, 'b.bin')).size, 1 << 20);
  }));

test('tar.zst: over the byte limit → refused at the entry that crosses it, before writing it; earlier complete files stay', () =>
  withDirs(async (tmp, work) => {
    const file = path.join(tmp, 'a.tar.zst');
    buildArchive('tar', file, [
      { name: 'a.txt', kind: 'f', data: 'a'.repeat(600_000) },
      { name: 'b.txt', kind: 'f', data: 'b'.repeat(3_000_000) },
      { name: 'c.txt', kind: 'f', data: 'c' },
    ]);
    await assert.rejects(extractArchive(file, work, { limits: { bytes: 3_000_000 } }), expectError(ArchiveLimitError, /more than 3000000 bytes/));
    assert.deepEqual(await listAll(work), ['a.txt']);
    assert.equal(fs.statSync(path.join(work, 'a.txt')).size, 600_000);
    await assert.rejects(extractArchive(file, work, { limits: { entries: 2 } }), expectError(ArchiveLimitError, /more than 2 entries/));
    assert.ok(!fs.existsSync(path.join(work, 'c.txt')));
  }));

test('cache-extractor: --max-extracted-size, CACHE_MAX_EXTRACTED_ENTRIES and 10 × --max-uploaded-archive-size refuse a deflate bomb; --help shows them', () =>
  withDirs(async (tmp, work) => {
    const file = path.join(tmp, 'a.zip');
    pyZip(file, [['bomb.bin', 'f', "b'\\0' * (64 << 20)"], ['x.txt', 'f', "b'x'"]]);
    const runIt = async (args: string[]): Promise<{ code: number; err: string }> => {
      const err = new PassThrough();
      let text = '';
      err.on('data', (d: Buffer) => (text += d.toString()));
      const code = await extractor(['--file', file, ...args], { cwd: work, stdout: new PassThrough(), stderr: err });
      return { code, err: text };
    };
    let r = await runIt(['--max-extracted-size', String(32 << 20)]);
    assert.equal(r.code, 1);
    assert.match(r.err, /refusing to extract .*more than 33554432 bytes.*--max-extracted-size/);
    r = await runIt(['--max-uploaded-archive-size', String(1 << 20)]); // → 10 MiB
    assert.equal(r.code, 1);
    assert.match(r.err, /more than 10485760 bytes/);
    process.env.CACHE_MAX_EXTRACTED_ENTRIES = '1';
    try {
      r = await runIt([]);
    } finally {
      delete process.env.CACHE_MAX_EXTRACTED_ENTRIES;
    }
    assert.equal(r.code, 1);
    assert.match(r.err, /more than 1 entries/);
    r = await runIt(['--max-extracted-size', '12abc']);
    assert.equal(r.code, 1);
    assert.match(r.err, /--max-extracted-size .*must be a whole number/);
    assert.deepEqual(await listAll(work), [], 'nothing written');
    r = await runIt([]);
    assert.equal(r.code, 0, r.err);
    assert.equal(fs.statSync(path.join(work, 'bomb.bin')).size, 64 << 20);
    const out = new PassThrough();
    let help = '';
    out.on('data', (d: Buffer) => (help += d.toString()));
    assert.equal(await extractor(['--help'], { stdout: out, stderr: new PassThrough() }), 0);
    assert.match(help, /--max-extracted-size BYTES/);
    assert.match(help, /CACHE_MAX_EXTRACTED_ENTRIES/);
  }));
