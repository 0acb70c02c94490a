import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { selectFiles, expandVars } from '../../src/archive/select.ts';
import { globToRegExp } from '../../src/archive/glob.ts';
import { parseArchiveFormat, parseCompressionLevel, deflateLevel, zstdLevel } from '../../src/archive/levels.ts';
import { rmrf, tempDir } from '../fixtures/archive/tree.ts';
import { namingVectors as naming } from '../support/vectors.ts';

test('compression levels map as in vectors/naming.json', () => {
  const v = naming.compressionLevel;
  for (const level of ['fastest', 'fast', 'default', 'slow', 'slowest'] as const) {
    const zip = v.zip[level];
    assert.equal(deflateLevel(level), typeof zip === 'number' ? zip : 0, `zip ${level}`);
    assert.equal(zstdLevel(level), v.zstd[level], `zstd ${level}`);
  }
  assert.deepEqual(parseCompressionLevel('bogus'), { value: 'default', warning: 'compression level "bogus" is invalid, falling back to default' });
  assert.deepEqual(parseCompressionLevel(''), { value: 'default' });
  assert.deepEqual(parseCompressionLevel('SLOWEST'), { value: 'slowest' });
  assert.deepEqual(parseArchiveFormat(undefined), { value: 'zip' });
  assert.deepEqual(parseArchiveFormat('tarzstd'), { value: 'tarzstd' });
  assert.equal(parseArchiveFormat('rar').value, 'zip');
});

test('glob: *, ?, **, classes, braces follow doublestar', () => {
  const m = (p: string, s: string): boolean => globToRegExp(p).test(s);
  assert.ok(m('*.txt', 'a.txt'));
  assert.ok(!m('*.txt', 'dir/a.txt'));
  assert.ok(m('**/*.txt', 'a.txt'));
  assert.ok(m('**/*.txt', 'x/y/a.txt'));
  assert.ok(m('a/**', 'a'));
  assert.ok(m('a/**', 'a/b/c'));
  assert.ok(!m('a/**', 'ab'));
  assert.ok(m('a/**/z', 'a/z'));
  assert.ok(m('a/**/z', 'a/b/c/z'));
  assert.ok(m('f?le', 'file'));
  assert.ok(!m('f?le', 'f/le'));
  assert.ok(m('[a-c]x', 'bx'));
  assert.ok(!m('[!a-c]x', 'bx'));
  assert.ok(m('{foo,bar}/*.js', 'bar/x.js'));
  assert.ok(m('.hidden*', '.hiddenfile'));
  assert.ok(m('*', '.dot'), 'dot files are not special');
});

test('expandVars: $VAR and ${VAR}, unknown → empty', () => {
  assert.equal(expandVars('$A/${B}/c$UNSET', { A: 'x', B: 'y' }), 'x/y/c');
});

async function tree(): Promise<string> {
  const root = await tempDir();
  const w = (rel: string, data = 'x'): void => {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), data);
  };
  w('work/vendor/a.js');
  w('work/vendor/b.txt');
  w('work/vendor/deep/c.js');
  w('work/node_modules/m/index.js');
  w('work/build/out.o');
  w('work/build/keep/important.o');
  w('outside/secret.txt');
  fs.symlinkSync('../outside', path.join(root, 'work/link-out'));
  fs.symlinkSync('vendor/a.js', path.join(root, 'work/link-a'));
  spawnSync('mkfifo', [path.join(root, 'work/vendor/fifo')]);
  return root;
}

const names = (sel: { entries: Array<{ name: string; type: string }> }): string[] => sel.entries.map((e) => `${e.name}${e.type === 'dir' ? '/' : e.type === 'symlink' ? '@' : ''}`);

test('--path walks matches recursively, sorted, symlinks kept as links (never followed), fifos skipped', async () => {
  const root = await tree();
  try {
    const sel = await selectFiles({ cwd: path.join(root, 'work'), paths: ['vendor', 'link-out', 'link-a'] });
    assert.deepEqual(names(sel), ['link-a@', 'link-out@', 'vendor/', 'vendor/a.js', 'vendor/b.txt', 'vendor/deep/', 'vendor/deep/c.js']);
    assert.equal(sel.skippedSpecial, 1);
    assert.ok(sel.newestMtimeMs > 0);
  } finally {
    await rmrf(root);
  }
});

test('--path with ** globs and $VAR expansion; --exclude by pattern', async () => {
  const root = await tree();
  try {
    const warnings: string[] = [];
    const sel = await selectFiles({
      cwd: path.join(root, 'work'),
      paths: ['$DIR/**/*.js', 'build'],
      exclude: ['build/*.o', 'vendor/deep/**'],
      env: { DIR: 'vendor' },
      onWarning: (m) => warnings.push(m),
    });
    assert.deepEqual(names(sel), ['build/', 'build/keep/', 'build/keep/important.o', 'vendor/a.js']);
    assert.equal(sel.excluded.get('build/*.o'), 1);
    assert.deepEqual(warnings, []);
  } finally {
    await rmrf(root);
  }
});

test('paths outside the working directory are refused with a warning', async () => {
  const root = await tree();
  try {
    const warnings: string[] = [];
    const sel = await selectFiles({ cwd: path.join(root, 'work'), paths: ['../outside', path.join(root, 'outside/secret.txt'), 'vendor/../../outside'], onWarning: (m) => warnings.push(m) });
    assert.deepEqual(sel.entries, []);
    assert.equal(warnings.filter((w) => w.includes('not a subpath of project directory')).length, 3);
  } finally {
    await rmrf(root);
  }
});

test('nothing matches → empty selection and a warning (the caller prints "No files to cache.")', async () => {
  const root = await tree();
  try {
    const warnings: string[] = [];
    const sel = await selectFiles({ cwd: path.join(root, 'work'), paths: ['nope/**'], onWarning: (m) => warnings.push(m) });
    assert.equal(sel.entries.length, 0);
    assert.match(warnings[0], /no matching files/);
  } finally {
    await rmrf(root);
  }
});

test('--untracked adds `git ls-files -o` files', async (t) => {
  if (spawnSync('git', ['--version']).status !== 0) return t.skip('git is not installed');
  const root = await tree();
  try {
    const work = path.join(root, 'work');
    const git = (...args: string[]): void => {
      const r = spawnSync('git', args, { cwd: work, encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
    };
    git('init', '-q');
    git('-c', 'user.email=t@t', '-c', 'user.name=t', 'add', 'vendor');
    git('-c', 'user.email=t@t', '-c', 'user.name=t', 'commit', '-q', '-m', 'x');
    const sel = await selectFiles({ cwd: work, paths: [], untracked: true, exclude: ['node_modules/**'] });
    assert.deepEqual(names(sel), ['build/keep/important.o', 'build/out.o', 'link-a@', 'link-out@']);
  } finally {
    await rmrf(root);
  }
});
