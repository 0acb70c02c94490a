/**
 * Escapes through the working directory's own content (issue 14, item 1): a job extracts several
 * caches in turn into one directory, so what earlier archives planted (symlinks, symlink chains) is
 * attacker-controlled. After every sequence of extractions, in zip and in tar.zst, nothing outside
 * the working directory may have changed: no file or directory created, replaced or removed, no
 * content, mode or mtime changed (a sentinel tree around the working directory is compared).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { extractArchive } from '../../src/archive/index.ts';
import { rmrf, tempDir } from '../fixtures/archive/tree.ts';
import { buildArchive, outsideSnapshot, type EvilEntry } from '../fixtures/archive/evil.ts';

const Y1980 = 315_532_800 + 86_400; // 1980-01-02, what the review's archive set

interface Case {
  title: string;
  /** One archive per extraction, in order; `out` is the outside directory, `work` the real working directory. */
  steps: (out: string, work: string) => EvilEntry[][];
  /** Per step: extraction succeeds, or is refused with an error. */
  expect: Array<'ok' | 'refused'>;
  tarOnly?: boolean;
  /** More checks on the working directory afterwards. */
  after?: (work: string) => void;
}

const chain: EvilEntry[] = [
  { name: 'p', kind: 'l', data: 's' },
  { name: 's', kind: 'l', data: 't' },
  { name: 't/', kind: 'd' },
];

const cases: Case[] = [
  {
    title: "the review's attack: p -> s -> t planted, then s -> outside and entries under p/ (a 0777 directory, a symlink)",
    steps: (out) => [
      chain,
      [
        { name: 's', kind: 'l', data: out },
        { name: 'p/', kind: 'd', mode: 0o777, mtime: Y1980 },
        { name: 'p/sub/', kind: 'd', mode: 0o777, mtime: Y1980 },
        { name: 'p/victim.txt', kind: 'l', data: '/attacker/path' },
      ],
    ],
    expect: ['ok', 'refused'],
  },
  {
    title: 'the same with the replaced link in its own archive: the next archive cannot reach through p',
    steps: (out) => [
      chain,
      [{ name: 's', kind: 'l', data: out }],
      [
        { name: 'p/sub/', kind: 'd', mode: 0o777, mtime: Y1980 },
        { name: 'p/victim.txt', kind: 'l', data: '/attacker/path' },
        { name: 'p/evil.txt', kind: 'f', data: 'evil' },
      ],
    ],
    expect: ['ok', 'ok', 'refused'],
  },
  {
    title: 'a regular file entry through the chain after s was replaced',
    steps: (out) => [chain, [{ name: 's', kind: 'l', data: out }], [{ name: 'p/victim.txt', kind: 'f', data: 'evil', mode: 0o777 }]],
    expect: ['ok', 'ok', 'refused'],
  },
  {
    title: 'a directory entry over a planted absolute symlink to outside',
    steps: (out) => [[{ name: 'd', kind: 'l', data: out }], [{ name: 'd/', kind: 'd', mode: 0o777, mtime: Y1980 }, { name: 'd/sub/', kind: 'd', mode: 0o777, mtime: Y1980 }]],
    expect: ['ok', 'refused'],
  },
  {
    title: 'a planted `up -> ..`, then a file through it',
    steps: () => [[{ name: 'up', kind: 'l', data: '..' }], [{ name: 'up/evil.txt', kind: 'f', data: 'evil' }]],
    expect: ['ok', 'refused'],
  },
  {
    title: 'a planted link that climbs out through an in-tree directory (q -> t/../..)',
    steps: () => [[{ name: 't/', kind: 'd' }, { name: 'q', kind: 'l', data: 't/../..' }], [{ name: 'q/outside/evil.txt', kind: 'f', data: 'evil' }]],
    expect: ['ok', 'refused'],
  },
  {
    title: 'a planted link into a directory that is itself a planted link to outside (a -> b/c, b -> outside/..)',
    steps: (out) => [[{ name: 'b', kind: 'l', data: path.dirname(out) }, { name: 'a', kind: 'l', data: 'b/outside' }], [{ name: 'a/sub/', kind: 'd', mode: 0o777, mtime: Y1980 }]],
    expect: ['ok', 'refused'],
  },
  {
    title: 'a chain of 60 planted links is refused (loop guard)',
    steps: () => [
      [...Array.from({ length: 60 }, (_, i): EvilEntry => ({ name: `l${i}`, kind: 'l', data: `l${i + 1}` })), { name: 'l60/', kind: 'd' }],
      [{ name: 'l0/x.txt', kind: 'f', data: 'x' }],
    ],
    expect: ['ok', 'refused'],
  },
  {
    title: 'a symlink loop (a -> b, b -> a) is refused',
    steps: () => [[{ name: 'a', kind: 'l', data: 'b' }, { name: 'b', kind: 'l', data: 'a' }], [{ name: 'a/x.txt', kind: 'f', data: 'x' }]],
    expect: ['ok', 'refused'],
  },
  {
    title: 'a later entry may not replace a planted link that earlier entries went through',
    steps: (out) => [chain, [{ name: 'p/inside.txt', kind: 'f', data: 'ok' }, { name: 'p', kind: 'l', data: out }]],
    expect: ['ok', 'refused'],
  },
  {
    title: 'a later file may not replace a planted link that earlier entries went through',
    steps: () => [chain, [{ name: 'p/inside.txt', kind: 'f', data: 'ok' }, { name: 's', kind: 'f', data: 'file now' }]],
    expect: ['ok', 'refused'],
  },
  {
    title: 'a directory entry and a symlink of the same name in one archive',
    steps: (out) => [[{ name: 'link', kind: 'l', data: out }, { name: 'link/', kind: 'd', mode: 0o777, mtime: Y1980 }, { name: 'link/sub/', kind: 'd', mode: 0o777, mtime: Y1980 }]],
    expect: ['refused'],
  },
  {
    title: 'hard link through a planted symlink to outside (tar)',
    tarOnly: true,
    steps: (out) => [[{ name: 'p', kind: 'l', data: out }], [{ name: 'f.txt', kind: 'f', data: 'x' }, { name: 'p/h.txt', kind: 'h', data: 'f.txt' }]],
    expect: ['ok', 'refused'],
  },
  {
    title: 'hard link to a file behind a planted symlink to outside (tar)',
    tarOnly: true,
    steps: (out) => [[{ name: 'p', kind: 'l', data: out }], [{ name: 'h.txt', kind: 'h', data: 'p/victim.txt' }]],
    expect: ['ok', 'refused'],
  },
  {
    title: 'hard link through the chain after s was replaced in the same archive (tar)',
    tarOnly: true,
    steps: (out) => [chain, [{ name: 's', kind: 'l', data: out }, { name: 'f.txt', kind: 'f', data: 'x' }, { name: 'p/victim.txt', kind: 'h', data: 'f.txt' }]],
    expect: ['ok', 'refused'],
  },
  {
    title: 'an in-tree chain and an absolute link into the working directory still work',
    steps: (_out, work) => [
      [...chain, { name: 'real/', kind: 'd' }, { name: 'abs', kind: 'l', data: `${work}/real` }],
      [
        { name: 'p/a.txt', kind: 'f', data: 'through p' },
        { name: 'abs/b.txt', kind: 'f', data: 'through abs' },
        { name: 'p/sub/', kind: 'd', mode: 0o700, mtime: Y1980 },
      ],
    ],
    expect: ['ok', 'ok'],
    after: (work) => {
      assert.equal(fs.readFileSync(path.join(work, 't/a.txt'), 'utf8'), 'through p');
      assert.equal(fs.readFileSync(path.join(work, 'real/b.txt'), 'utf8'), 'through abs');
      const st = fs.lstatSync(path.join(work, 't/sub'));
      assert.equal(st.mode & 0o777, 0o700);
      assert.equal(Math.floor(st.mtimeMs / 1000), Y1980);
      assert.ok(fs.lstatSync(path.join(work, 'p')).isSymbolicLink());
    },
  },
];

/** The sentinel tree: a file, a subdirectory and a file in it, all with distinctive modes and times. */
async function makeOutside(out: string): Promise<void> {
  await fs.promises.mkdir(path.join(out, 'sub'), { recursive: true });
  await fs.promises.writeFile(path.join(out, 'victim.txt'), 'original');
  await fs.promises.writeFile(path.join(out, 'sub/inner.txt'), 'inner');
  await fs.promises.chmod(path.join(out, 'victim.txt'), 0o640);
  await fs.promises.chmod(path.join(out, 'sub'), 0o750);
  await fs.promises.chmod(out, 0o751);
  for (const [p, t] of [['sub/inner.txt', 1e9], ['victim.txt', 1.1e9], ['sub', 1.2e9], ['.', 1.3e9]] as const) {
    await fs.promises.utimes(path.join(out, p), t, t);
  }
}

for (const kind of ['zip', 'tar'] as const) {
  for (const c of cases) {
    if (c.tarOnly && kind !== 'tar') continue;
    test(`${kind}: ${c.title}`, async () => {
      const tmp = await tempDir();
      const arch = await tempDir('cg-archive-src-');
      try {
        const work = path.join(tmp, 'work');
        const out = path.join(tmp, 'outside');
        await fs.promises.mkdir(work);
        await makeOutside(out);
        const before = await outsideSnapshot(tmp, work);
        const steps = c.steps(out, fs.realpathSync(work));
        const results: string[] = [];
        for (const [i, spec] of steps.entries()) {
          const file = path.join(arch, `step${i}.${kind}`);
          buildArchive(kind, file, spec);
          try {
            await extractArchive(file, work);
            results.push('ok');
          } catch (err) {
            results.push('refused');
            assert.ok(err instanceof Error && /^(UnsafeEntryError|Error)$/.test(err.name), `a clean error expected, got ${String(err)}`);
          }
        }
        assert.deepEqual(await outsideSnapshot(tmp, work), before, 'nothing outside the working directory changed');
        assert.ok(!fs.existsSync('/attacker'), 'nothing at the absolute path');
        assert.deepEqual(results, c.expect);
        c.after?.(work);
      } finally {
        await rmrf(tmp);
        await rmrf(arch);
      }
    });
  }
}

/**
 * Check-then-use: the working directory holds `a -> real` (an in-tree link, fine to follow), and
 * another process retargets `a` to outside and back, atomically, again and again, while 3,000 files
 * are extracted under `a/`. Every call works relative to a handle opened when `a` was resolved, so
 * the files land in `real` (or an entry is refused when `a` points outside at that moment); nothing
 * reaches outside. Before, `a` was checked once and the files were opened by path.
 */
for (const kind of ['zip', 'tar'] as const) {
  test(`${kind}: an in-tree link retargeted to outside during extraction (another process) is never written through`, async () => {
    const tmp = await tempDir();
    const arch = await tempDir('cg-archive-src-');
    let swapper: ChildProcess | undefined;
    try {
      const work = path.join(tmp, 'work');
      const out = path.join(tmp, 'outside');
      await fs.promises.mkdir(path.join(work, 'real'), { recursive: true });
      await fs.promises.symlink('real', path.join(work, 'a'));
      await makeOutside(out);
      const before = await outsideSnapshot(tmp, work);
      const file = path.join(arch, `big.${kind}`);
      buildArchive(kind, file, [
        ...Array.from({ length: 3000 }, (_, i): EvilEntry => ({ name: `a/f${i}.txt`, kind: 'f', data: `file ${i}`, mode: 0o600 })),
      ]);
      const script = `cd ${JSON.stringify(work)} && while :; do ln -sfn ${JSON.stringify(out)} a.tmp; mv -T a.tmp a; ln -sfn real a.tmp; mv -T a.tmp a; done`;
      // Its own process group, so that the kill below also ends the `ln`/`mv` it has running.
      swapper = spawn('bash', ['-c', script], { stdio: 'ignore', detached: true });
      await new Promise((resolve) => setTimeout(resolve, 100));
      await extractArchive(file, work).catch((err: Error) => assert.ok(/^(UnsafeEntryError|Error)$/.test(err.name), `a clean error expected, got ${String(err)}`));
      const exited = new Promise((resolve) => swapper!.once('exit', resolve));
      process.kill(-swapper.pid!, 'SIGKILL');
      await exited;
      assert.deepEqual(await outsideSnapshot(tmp, work), before, 'nothing outside the working directory changed');
    } finally {
      if (swapper && swapper.exitCode === null && swapper.signalCode === null) process.kill(-swapper.pid!, 'SIGKILL');
      await rmrf(tmp);
      await rmrf(arch);
    }
  });
}
