/**
 * The `--env-file` GitLab Runner writes for role credentials: one `KEY="value"` line per variable,
 * keys sorted, with `\` `"` LF CR escaped as `\\` `\"` `\n` `\r`.
 */
import { randomBytes } from 'node:crypto';
import { readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { CacheGateError } from '../errors.ts';

const NAME = /^[A-Za-z_][A-Za-z0-9_.]*$/;

function escapeValue(v: string): string {
  return v.replace(/[\\"\n\r]/g, (c) => (c === '\n' ? '\\n' : c === '\r' ? '\\r' : `\\${c}`));
}

export function formatEnvFile(env: Record<string, string>): string {
  let out = '';
  for (const key of Object.keys(env).sort()) {
    if (!NAME.test(key)) throw new CacheGateError('invalid_request', 400, `env file: invalid variable name ${JSON.stringify(key)}`);
    out += `${key}="${escapeValue(env[key])}"\n`;
  }
  return out;
}

/**
 * Parses the format above; also accepts blank lines, `#` comments, `export KEY=…`, single-quoted
 * (literal) and unquoted values, so a hand-written file works too.
 */
export function parseEnvFile(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].replace(/\r$/, '');
    const trimmed = line.trimStart();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const bad = (why: string): CacheGateError => new CacheGateError('invalid_request', 400, `env file line ${i + 1}: ${why}`);
    const body = trimmed.startsWith('export ') ? trimmed.slice(7).trimStart() : trimmed;
    const eq = body.indexOf('=');
    if (eq <= 0) throw bad('expected KEY="value"');
    const key = body.slice(0, eq).trim();
    if (!NAME.test(key)) throw bad(`invalid variable name ${JSON.stringify(key)}`);
    const raw = body.slice(eq + 1);
    let value = '';
    let rest: string;
    if (raw.startsWith('"')) {
      let j = 1;
      for (; j < raw.length && raw[j] !== '"'; j++) {
        if (raw[j] !== '\\' || j + 1 >= raw.length) {
          value += raw[j];
          continue;
        }
        const c = raw[++j];
        value += c === 'n' ? '\n' : c === 'r' ? '\r' : c === '\\' || c === '"' ? c : `\\${c}`;
      }
      if (j >= raw.length) throw bad('unterminated quoted value');
      rest = raw.slice(j + 1);
    } else if (raw.startsWith("'")) {
      const end = raw.indexOf("'", 1);
      if (end < 0) throw bad('unterminated quoted value');
      value = raw.slice(1, end);
      rest = raw.slice(end + 1);
    } else {
      const hash = raw.search(/\s#/);
      value = (hash < 0 ? raw : raw.slice(0, hash)).trim();
      rest = '';
    }
    if (rest.trim() !== '' && !rest.trim().startsWith('#')) throw bad('unexpected text after the value');
    env[key] = value;
  }
  return env;
}

export async function readEnvFile(path: string): Promise<Record<string, string>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new CacheGateError('invalid_request', 400, `--env-file ${path}: ${code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
  return parseEnvFile(text);
}

/**
 * Writes the file readable by its owner only: it holds credentials. A new file renamed into place:
 * writing over an existing one kept that file's mode (0644 stayed 0644) and followed a symlink there.
 */
export async function writeEnvFile(path: string, env: Record<string, string>): Promise<void> {
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, formatEnvFile(env), { mode: 0o600, flag: 'wx' });
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
}
