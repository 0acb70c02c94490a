import assert from 'node:assert/strict';
import { chmod, lstat, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { formatEnvFile, parseEnvFile, readEnvFile, writeEnvFile } from '../../src/transfer/env-file.ts';

describe('env file (GitLab Runner dotenv)', () => {
  it('writes KEY="value" lines, keys in byte order (as Go sorts them), \\ " LF CR escaped', () => {
    const text = formatEnvFile({ B: 'plain', A: 'back\\slash "quoted"\nline2\r', AWS_PROFILE: '' });
    assert.equal(text, 'A="back\\\\slash \\"quoted\\"\\nline2\\r"\nAWS_PROFILE=""\nB="plain"\n');
  });

  it('round-trips any value', () => {
    const env = { AWS_ACCESS_KEY_ID: 'AKIA', AWS_SECRET_ACCESS_KEY: 'a/b+c=', AWS_SESSION_TOKEN: 'x\\"\n\r\\n\t ü=#', CACHE_METADATA: '{"cachekey":"a \\"b\\""}', EMPTY: '' };
    assert.deepEqual(parseEnvFile(formatEnvFile(env)), env);
  });

  it('reads comments, blank lines, export, single quotes, unquoted values and CRLF', () => {
    const env = parseEnvFile('# creds\n\nexport A="1"\r\nB=\'lit\\n\'\nC= bare value  # note\nD="x" # trailing\n');
    assert.deepEqual(env, { A: '1', B: 'lit\\n', C: 'bare value', D: 'x' });
  });

  it('keeps an unknown escape as written', () => {
    assert.equal(parseEnvFile('A="a\\tb"').A, 'a\\tb');
  });

  it('refuses malformed lines with the line number', () => {
    assert.throws(() => parseEnvFile('A="1"\nnot a line\n'), /line 2: expected KEY="value"/);
    assert.throws(() => parseEnvFile('A="open'), /line 1: unterminated/);
    assert.throws(() => parseEnvFile('A="1" junk'), /unexpected text/);
    assert.throws(() => parseEnvFile('1A="1"'), /invalid variable name/);
    assert.throws(() => formatEnvFile({ 'bad name': 'x' }), /invalid variable name/);
  });

  it('writeEnvFile makes a 0600 file that readEnvFile reads back', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cg-env-'));
    try {
      const file = join(dir, 'cache.env');
      await writeEnvFile(file, { AWS_SECRET_ACCESS_KEY: 's"e\ncret' });
      assert.equal((await stat(file)).mode & 0o777, 0o600);
      assert.equal(await readFile(file, 'utf8'), 'AWS_SECRET_ACCESS_KEY="s\\"e\\ncret"\n');
      assert.deepEqual(await readEnvFile(file), { AWS_SECRET_ACCESS_KEY: 's"e\ncret' });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('writeEnvFile over an existing world-readable file, or a symlink, still leaves a new 0600 file and writes through nothing', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cg-env-'));
    try {
      const file = join(dir, 'cache.env');
      await writeFile(file, 'OLD="1"\n');
      await chmod(file, 0o644);
      await writeEnvFile(file, { AWS_SECRET_ACCESS_KEY: 'k' });
      assert.equal((await stat(file)).mode & 0o777, 0o600, 'the credentials are not left world-readable');
      const victim = join(dir, 'victim');
      await writeFile(victim, 'victim');
      const link = join(dir, 'link.env');
      await symlink(victim, link);
      await writeEnvFile(link, { AWS_SECRET_ACCESS_KEY: 'k' });
      assert.equal(await readFile(victim, 'utf8'), 'victim', 'not written through the link');
      assert.ok((await lstat(link)).isFile());
      assert.deepEqual(await readEnvFile(link), { AWS_SECRET_ACCESS_KEY: 'k' });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
