/**
 * Fuzzing of the archive readers (issue 14, "Keep"): seeded random archives and mutations of valid
 * ones, zip and tar.zst, extracted (and verified) into a fresh working directory that sometimes
 * holds planted symlink chains, next to a sentinel tree. Each case must:
 * - end cleanly: success, or UnsafeEntryError / CorruptArchiveError / ArchiveLimitError / a system
 *   error with a code (never a TypeError, RangeError, a hang or a crash);
 * - change nothing outside the working directory (the sentinel's paths, contents, modes, mtimes);
 * - keep the process's resident set under RSS_BOUND.
 *
 *   CACHEGATE_FUZZ_SECONDS=60 CACHEGATE_FUZZ_SEED=7 node --test test/integration/archive-fuzz.test.ts
 * A failing case is saved under the temporary directory and its seed and number are printed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { isDeepStrictEqual } from 'node:util';
import { extractArchive, verifyArchive } from '../../src/archive/index.ts';
import { rmrf, snapshot, tempDir } from '../fixtures/archive/tree.ts';
import { tarEntry, paxData } from '../fixtures/archive/evil.ts';
import { rng } from '../support/rng.ts';

const SECONDS = Number(process.env.CACHEGATE_FUZZ_SECONDS ?? 4);
const SEED = Number(process.env.CACHEGATE_FUZZ_SEED ?? 14);
/** Resident set bound for the whole test process (its baseline is ~100 MB). */
const RSS_BOUND = 640 << 20;
const CASE_TIMEOUT_MS = 30_000;

type Rand = ReturnType<typeof rng>;
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
const int = (r: Rand, n: number): number => Math.floor(r() * n);

interface Spec {
  name: string;
  kind: 'f' | 'd' | 'l' | 'h';
  data: Buffer;
  mode: number;
}

// A small universe of names and targets, so that entries meet each other and what is planted
// (the planted chain p -> s -> t, links to outside): the classes of issue 14 come up within seconds.
const SAFE_NAMES = ['p', 'p/sub/', 'p/x', 'p/victim.txt', 's', 's/y', 't', 't/y', 'o', 'o/sub/', 'up', 'up/f', 'a', 'a/b', 'h', 'f.txt', 'd/', './a/./b', 'é/ü'];
const HOSTILE_NAMES = ['../evil', '/abs-evil', 'x/../../evil', `${'n'.repeat(250)}`, `${'m'.repeat(300)}`];
const NAMES = [...SAFE_NAMES, ...HOSTILE_NAMES];
const INTERESTING32 = [0, 1, 0x7f, 0x80, 0xff, 0x100, 4096, 4097, 0x7fff, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff, 1 << 30];

function randomSpec(r: Rand, outside: string, work: string): Spec[] {
  const targets = ['..', '../..', outside, `${outside}/sub`, `${outside}/victim.txt`, 's', 't', 'p', '/', '.', 'x'.repeat(4097), `${work}/t`, 'does-not-exist', '../outside/sub'];
  const n = 1 + int(r, 5);
  const hostile = r() < 0.15;
  const out: Spec[] = [];
  for (let i = 0; i < n; i++) {
    const kind = pick(r, ['f', 'f', 'd', 'l', 'l', 'h'] as const);
    const name = hostile && r() < 0.3 ? pick(r, HOSTILE_NAMES) : pick(r, SAFE_NAMES);
    const data = kind === 'f' ? Buffer.alloc(pick(r, [0, 1, 100, 70_000, 1_200_000]), pick(r, ['a', 'b', '\0'])) : kind === 'd' ? Buffer.alloc(0) : Buffer.from(kind === 'h' ? pick(r, [...NAMES, ...targets]) : pick(r, targets));
    out.push({ name, kind, data, mode: pick(r, [0o644, 0o755, 0o777, 0o4755, 0o000, 0o700]) });
  }
  return out;
}

/** Seeds: valid archives of the shapes issue 14 found (random entries are added to them, then mutated). */
function corpusSpec(r: Rand, outside: string): Spec[] {
  const e = (name: string, kind: Spec['kind'], data = '', mode = 0o755): Spec => ({ name, kind, data: Buffer.from(data), mode });
  const seeds: Spec[][] = [
    [e('p', 'l', 's'), e('s', 'l', 't'), e('t/', 'd')],
    [e('s', 'l', pick(r, [outside, `${outside}/sub`])), e('p/sub/', 'd', '', 0o777), e('p/victim.txt', 'l', '/attacker/path')],
    [e('s', 'l', outside), e('f.txt', 'f', 'x', 0o644), e('p/h', 'h', 'f.txt')],
    [e('t/', 'd'), e('q', 'l', 't/../..'), e('q/outside/sub/', 'd', '', 0o777)],
  ];
  return pick(r, seeds);
}

/** A raw tar stream (ustar + PAX for long names/targets) and each header's offset. */
function tarOf(spec: Spec[]): { tar: Buffer; headers: number[] } {
  const parts: Buffer[] = [];
  const headers: number[] = [];
  let off = 0;
  const push = (b: Buffer, isHeader = true): void => {
    if (isHeader) headers.push(off);
    parts.push(b);
    off += b.length;
  };
  for (const e of spec) {
    const type = { f: '0', d: '5', l: '2', h: '1' }[e.kind];
    const link = e.kind === 'l' || e.kind === 'h' ? e.data.toString() : '';
    if (Buffer.byteLength(e.name) > 100 || Buffer.byteLength(link) > 100) {
      const recs: Array<[string, string]> = [['path', e.name]];
      if (link) recs.push(['linkpath', link]);
      push(tarEntry({ name: 'PaxHeader', type: 'x' }, paxData(recs)));
    }
    push(tarEntry({ name: e.name, type, linkname: link, mode: e.mode }, e.kind === 'f' ? e.data : Buffer.alloc(0)));
  }
  push(Buffer.alloc(1024), false);
  return { tar: Buffer.concat(parts), headers };
}

/** A zip (stored or deflate), written here so that every field can be set; offsets of its headers. */
function zipOf(spec: Spec[], deflate: boolean): { zip: Buffer; headers: number[] } {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  const headers: number[] = [];
  let off = 0;
  for (const e of spec) {
    const name = Buffer.from(e.kind === 'd' && !e.name.endsWith('/') ? `${e.name}/` : e.name);
    const kind = e.kind === 'h' ? 'f' : e.kind;
    const body = kind === 'd' ? Buffer.alloc(0) : e.data;
    const packed = deflate ? zlib.deflateRawSync(body) : body;
    const type = kind === 'd' ? 0o040000 : kind === 'l' ? 0o120000 : 0o100000;
    const crc = zlib.crc32(body);
    const l = Buffer.alloc(30);
    l.writeUInt32LE(0x04034b50, 0);
    l.writeUInt16LE(20, 4);
    l.writeUInt16LE(0x800, 6);
    l.writeUInt16LE(deflate ? 8 : 0, 8);
    l.writeUInt16LE(0x21, 12);
    l.writeUInt32LE(crc, 14);
    l.writeUInt32LE(packed.length, 18);
    l.writeUInt32LE(body.length, 22);
    l.writeUInt16LE(name.length, 26);
    headers.push(off);
    locals.push(l, name, packed);
    const c = Buffer.alloc(46);
    c.writeUInt32LE(0x02014b50, 0);
    c.writeUInt16LE((3 << 8) | 63, 4);
    c.writeUInt16LE(20, 6);
    c.writeUInt16LE(0x800, 8);
    c.writeUInt16LE(deflate ? 8 : 0, 10);
    c.writeUInt16LE(0x21, 14);
    c.writeUInt32LE(crc, 16);
    c.writeUInt32LE(packed.length, 20);
    c.writeUInt32LE(body.length, 24);
    c.writeUInt16LE(name.length, 28);
    c.writeUInt32LE(((type | e.mode) << 16) >>> 0, 38);
    c.writeUInt32LE(off, 42);
    centrals.push(c, name);
    off += 30 + name.length + packed.length;
  }
  const cd = Buffer.concat(centrals);
  let p = off;
  for (let i = 0; i < centrals.length; i += 2) {
    headers.push(p);
    p += centrals[i].length + centrals[i + 1].length;
  }
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(spec.length, 8);
  end.writeUInt16LE(spec.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(off, 16);
  headers.push(off + cd.length);
  return { zip: Buffer.concat([...locals, cd, end]), headers };
}

const ZIP_FIELDS: Record<number, number[]> = {
  0x04034b50: [8, 14, 18, 22, 26, 28],
  0x02014b50: [10, 16, 20, 24, 28, 30, 32, 38, 42],
  0x06054b50: [8, 10, 12, 16, 20],
};

/** Mutates a zip or a raw tar in place-ish; returns the new buffer. */
function mutate(r: Rand, buf: Buffer, headers: number[], kind: 'zip' | 'tar'): Buffer {
  let b = Buffer.from(buf);
  const rounds = 1 + int(r, 3);
  for (let k = 0; k < rounds; k++) {
    const what = int(r, 6);
    if (what === 0 && b.length > 0) {
      for (let i = 1 + int(r, 8); i > 0; i--) b[int(r, b.length)] ^= 1 << int(r, 8);
    } else if (what === 1 && b.length > 1) {
      b = b.subarray(0, int(r, b.length));
    } else if (what === 2 && headers.length > 0) {
      const h = pick(r, headers);
      if (h + 512 > b.length) continue;
      if (kind === 'zip') {
        const sig = b.readUInt32LE(h);
        const fields = ZIP_FIELDS[sig];
        if (!fields) continue;
        const f = pick(r, fields);
        const v = pick(r, INTERESTING32);
        if (f === 8 || f === 10 || f === 26 || f === 28 || f === 30 || f === 32 || (sig === 0x06054b50 && f < 12) || (sig === 0x06054b50 && f === 20)) b.writeUInt16LE(v & 0xffff, h + f);
        else b.writeUInt32LE(v >>> 0, h + f);
      } else {
        const field = int(r, 5);
        if (field === 0) b.write(`${pick(r, INTERESTING32).toString(8).padStart(11, '0').slice(-11)}\0`, h + 124, 'ascii');
        else if (field === 1) b.write(pick(r, ['0', '1', '2', '5', 'x', 'g', 'L', 'K', '7', '3', '6', 'S', 'Z']), h + 156, 'ascii');
        else if (field === 2) b.write(`${pick(r, ['..', '/etc', '../outside', 'p', 's/..', ''])}\0`, h + 157, 'utf8');
        else if (field === 3) b.write(`${pick(r, NAMES)}\0`, h, 'utf8');
        else {
          b[h + 124] = 0x80; // base-256 size
          b.writeUInt32BE(pick(r, INTERESTING32) >>> 0, h + 132);
        }
        if (r() < 0.9) {
          b.fill(0x20, h + 148, h + 156);
          let sum = 0;
          for (let i = 0; i < 512; i++) sum += b[h + i];
          b.write(`${sum.toString(8).padStart(6, '0')}\0 `, h + 148, 'ascii');
        }
      }
    } else if (what === 3 && headers.length > 1) {
      // Duplicate a span of entries (or headers) somewhere later.
      const a = pick(r, headers);
      const len = Math.min(b.length - a, 512 * (1 + int(r, 4)));
      const at = a + int(r, Math.max(1, b.length - a));
      b = Buffer.concat([b.subarray(0, at), b.subarray(a, a + len), b.subarray(at)]);
    } else if (what === 4) {
      b = Buffer.concat([b, Buffer.from(Array.from({ length: int(r, 600) }, () => int(r, 256)))]);
    }
    // what === 5: no byte mutation (structural randomness only)
  }
  return b;
}

/** Symlinks an earlier cache could have left: chains inside, links to outside. */
function plant(r: Rand, work: string, outside: string): void {
  fs.mkdirSync(path.join(work, 't'));
  fs.symlinkSync('s', path.join(work, 'p'));
  fs.symlinkSync('t', path.join(work, 's'));
  if (r() < 0.5) return;
  fs.symlinkSync('..', path.join(work, 'up'));
  fs.symlinkSync(outside, path.join(work, 'o'));
  fs.symlinkSync(`${outside}/sub`, path.join(work, 'q'));
  fs.symlinkSync('t/../..', path.join(work, 'a'));
}

const CLEAN = new Set(['UnsafeEntryError', 'CorruptArchiveError', 'ArchiveLimitError']);

function isClean(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (CLEAN.has(err.name)) return true;
  // A system call's refusal (ENAMETOOLONG, EEXIST, …) or our plain "a file is in the way" errors.
  return err.name === 'Error' && (typeof (err as NodeJS.ErrnoException).code === 'string' || !/undefined|null|not a function|Cannot read/.test(err.message));
}

async function withTimeout<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`HANG: ${what}`)), CASE_TIMEOUT_MS)))]);
  } finally {
    clearTimeout(timer);
  }
}

test(`fuzz: mutated zip and tar.zst archives (seed ${SEED}, ${SECONDS} s): clean errors only, nothing outside, bounded memory`, async () => {
  const tmp = await tempDir('cg-fuzz-');
  const outside = path.join(tmp, 'outside');
  const runs = path.join(tmp, 'runs');
  fs.mkdirSync(path.join(outside, 'sub'), { recursive: true });
  fs.mkdirSync(runs);
  fs.writeFileSync(path.join(outside, 'victim.txt'), 'original');
  fs.writeFileSync(path.join(outside, 'sub/inner.txt'), 'inner');
  fs.chmodSync(path.join(outside, 'sub'), 0o750);
  fs.utimesSync(path.join(outside, 'sub'), 1e9, 1e9);
  fs.utimesSync(outside, 1.1e9, 1.1e9);
  const sentinel = async (): Promise<unknown> => {
    const st = fs.lstatSync(outside);
    return { tree: await snapshot(outside), self: [st.mode, st.mtimeMs], tmp: fs.readdirSync(tmp).sort() };
  };
  const before = await sentinel();
  const r = rng(SEED);
  const deadline = Date.now() + SECONDS * 1000;
  const stats = { cases: 0, ok: 0, refused: new Map<string, number>(), maxRss: 0 };
  const limits = { bytes: 64 << 20, entries: 10_000 };
  try {
    for (let i = 0; Date.now() < deadline; i++) {
      const kind = r() < 0.5 ? 'zip' : 'tar';
      const ext = kind === 'zip' ? '.zip' : '.tar.zst';
      const file = path.join(runs, `c${i}${ext}`);
      const work = path.join(runs, `w${i}`);
      fs.mkdirSync(work);
      const realWork = fs.realpathSync(work);
      if (r() < 0.5) plant(r, work, outside);
      stats.cases++;
      // One to three archives extracted in turn into the same directory, as a job restores caches.
      const steps = 1 + int(r, 3);
      for (let step = 0; step < steps; step++) {
        const spec = r() < 0.3 ? [...corpusSpec(r, outside), ...(r() < 0.5 ? randomSpec(r, outside, realWork) : [])] : randomSpec(r, outside, realWork);
        if (kind === 'zip') {
          const { zip, headers } = zipOf(spec, r() < 0.7);
          fs.writeFileSync(file, r() < 0.5 ? mutate(r, zip, headers, 'zip') : zip);
        } else {
          const { tar, headers } = tarOf(spec);
          const mutated = r() < 0.5 ? mutate(r, tar, headers, 'tar') : tar;
          let zst: Buffer = zlib.zstdCompressSync(mutated, { params: { [zlib.constants.ZSTD_c_checksumFlag]: 1 } });
          if (r() < 0.05) zst = mutate(r, zst, [], 'tar'); // the compressed stream itself
          fs.writeFileSync(file, zst);
        }
        const where = `seed ${SEED}, case ${i} step ${step} (${kind}; saved as ${file})`;
        for (const op of ['verify', 'extract'] as const) {
          try {
            await withTimeout(op === 'verify' ? verifyArchive(file) : extractArchive(file, work, { limits }), `${op} ${where}`);
            if (op === 'extract') stats.ok++;
          } catch (err) {
            if (!isClean(err)) {
              await fs.promises.cp(file, path.join(os.tmpdir(), `cachegate-fuzz-failure-${SEED}-${i}-${step}${ext}`));
              assert.fail(`${op}: not a clean error at ${where}: ${(err as Error)?.stack ?? String(err)}`);
            }
            if (op === 'extract') {
              const key = `${(err as Error).name}: ${(err as Error).message.replace(/"[^"]*"/g, '"…"').replace(/\d+/g, 'N').slice(0, 70)}`;
              stats.refused.set(key, (stats.refused.get(key) ?? 0) + 1);
            }
          }
        }
        const snap = await sentinel();
        if (!isDeepStrictEqual(snap, before)) {
          await fs.promises.cp(file, path.join(os.tmpdir(), `cachegate-fuzz-failure-${SEED}-${i}-${step}${ext}`));
          assert.deepEqual(snap, before, `nothing outside the working directory may change (${where})`);
        }
      }
      const where = `seed ${SEED}, case ${i}`;
      assert.deepEqual(fs.readdirSync(runs).sort(), [`c${i}${ext}`, `w${i}`].sort(), `nothing next to the working directory (${where})`);
      stats.maxRss = Math.max(stats.maxRss, process.memoryUsage().rss);
      assert.ok(stats.maxRss < RSS_BOUND, `RSS ${stats.maxRss} over the bound at ${where}`);
      await rmrf(work);
      await fs.promises.rm(file);
    }
  } finally {
    await rmrf(tmp);
  }
  const top = [...stats.refused.entries()].sort((a, b) => b[1] - a[1]).slice(0, 12);
  process.stdout.write(`# fuzz seed ${SEED}: ${stats.cases} cases, ${stats.ok + [...stats.refused.values()].reduce((a, b) => a + b, 0)} extractions (${stats.ok} succeeded), max RSS ${(stats.maxRss / 2 ** 20).toFixed(0)} MiB; refusals:\n${top.map(([k, n]) => `#   ${n} × ${k}`).join('\n')}\n`);
  assert.ok(stats.cases > 0);
});
