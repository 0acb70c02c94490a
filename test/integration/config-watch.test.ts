/**
 * The configuration watch keeps hearing after the file is replaced, the three ways it happens in
 * practice: `sed -i` (real sed), an editor's atomic save (write a temp file, rename it over), and a
 * Kubernetes ConfigMap update (the `..data` symlink swapped to a new directory). Each is done several
 * times in a row: the old watch on the file heard the first one and nothing after it.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config/load.ts';
import { createLogger } from '../../src/log.ts';
import { startService } from '../../src/service/server.ts';

const toml = (token: string): string => `[[runners]]\nname = "r"\ntoken = "${token}"\n[runners.cache]\nType = "local"\n`;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function withService(file: string, dir: string, body: (s: { status: (token: string) => Promise<number>; logs: string[] }) => Promise<void>): Promise<void> {
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _e, cb) {
      logs.push(...chunk.toString('utf8').split('\n').filter((l) => l !== ''));
      cb();
    },
  });
  const opts = { file, env: { CACHEGATE_DATA_DIR: join(dir, 'data') }, listen: '127.0.0.1:0' };
  const svc = await startService({ config: loadConfig(opts), reload: opts, log: createLogger({ format: 'json', level: 'info', destination: sink }), watch: true });
  const status = async (token: string): Promise<number> =>
    (await fetch(`${svc.url}/v1/presign`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: '{"operation":"head","key":"k","projectId":"1"}' })).status;
  try {
    await body({ status, logs });
  } finally {
    await svc.close();
  }
}

/** Waits (up to 5 s) until `token` is accepted: the change was picked up. */
async function pickedUp(status: (t: string) => Promise<number>, token: string): Promise<void> {
  for (let i = 0; i < 50; i++) {
    if ((await status(token)) === 200) return;
    await sleep(100);
  }
  assert.fail(`the change to token ${token} was not picked up`);
}

const applied = (logs: string[]): number => logs.filter((l) => l.includes('"result":"applied"') && l.includes('"trigger":"file changed"')).length;

describe('config watch survives replaced files', () => {
  it('sed -i, three times in a row, then an edit in place; a save without change logs "unchanged"', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cg-watch-sed-'));
    const file = join(dir, 'config.toml');
    await writeFile(file, toml('token-0-aaaaaaaaaaaa'));
    try {
      await withService(file, dir, async ({ status, logs }) => {
        for (let i = 1; i <= 3; i++) {
          execFileSync('sed', ['-i', `s/token-${i - 1}-/token-${i}-/`, file]);
          await pickedUp(status, `token-${i}-aaaaaaaaaaaa`);
          assert.equal(await status(`token-${i - 1}-aaaaaaaaaaaa`), 401);
        }
        await writeFile(file, toml('token-4-aaaaaaaaaaaa'));
        await pickedUp(status, 'token-4-aaaaaaaaaaaa');
        assert.ok(applied(logs) >= 4, logs.join('\n'));
        execFileSync('sed', ['-i', 's/Type = "local"/Type = "local"/', file]);
        for (let i = 0; i < 50 && !logs.some((l) => l.includes('"result":"unchanged"')); i++) await sleep(100);
        assert.ok(logs.some((l) => l.includes('"result":"unchanged"')), logs.join('\n'));
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("an editor's atomic save (temp file renamed over), three times; an invalid save keeps the old config and says so", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cg-watch-rename-'));
    const file = join(dir, 'config.toml');
    await writeFile(file, toml('token-0-bbbbbbbbbbbb'));
    try {
      await withService(file, dir, async ({ status, logs }) => {
        for (let i = 1; i <= 3; i++) {
          await writeFile(join(dir, '.config.toml.swp'), toml(`token-${i}-bbbbbbbbbbbb`));
          await rename(join(dir, '.config.toml.swp'), file);
          await pickedUp(status, `token-${i}-bbbbbbbbbbbb`);
        }
        await writeFile(join(dir, '.config.toml.swp'), '[[runners]]\ntoken = "x"\n[runners.cache]\nType = "nope"\n');
        await rename(join(dir, '.config.toml.swp'), file);
        for (let i = 0; i < 50 && !logs.some((l) => l.includes('"result":"invalid"')); i++) await sleep(100);
        assert.ok(logs.some((l) => l.includes('"result":"invalid"') && l.includes('keeping the previous one')), logs.join('\n'));
        assert.equal(await status('token-3-bbbbbbbbbbbb'), 200);
        await writeFile(join(dir, '.config.toml.swp'), toml('token-5-bbbbbbbbbbbb'));
        await rename(join(dir, '.config.toml.swp'), file);
        await pickedUp(status, 'token-5-bbbbbbbbbbbb');
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a Kubernetes ConfigMap update (..data symlink swap), three times', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cg-watch-cm-'));
    // The layout the kubelet makes: config.toml → ..data/config.toml, ..data → ..<timestamp>/
    const version = async (n: number): Promise<void> => {
      await mkdir(join(dir, `..v${n}`));
      await writeFile(join(dir, `..v${n}`, 'config.toml'), toml(`token-${n}-cccccccccccc`));
    };
    await version(0);
    await symlink(`..v0`, join(dir, '..data'));
    await symlink('..data/config.toml', join(dir, 'config.toml'));
    try {
      await withService(join(dir, 'config.toml'), dir, async ({ status, logs }) => {
        assert.equal(await status('token-0-cccccccccccc'), 200);
        for (let i = 1; i <= 3; i++) {
          await version(i);
          await symlink(`..v${i}`, join(dir, '..data_tmp'));
          await rename(join(dir, '..data_tmp'), join(dir, '..data'));
          await rm(join(dir, `..v${i - 1}`), { recursive: true });
          await pickedUp(status, `token-${i}-cccccccccccc`);
          assert.equal(await status(`token-${i - 1}-cccccccccccc`), 401);
        }
        assert.equal(applied(logs), 3, logs.join('\n'));
        assert.ok(!logs.some((l) => l.includes('cannot watch')), `no watch warning for a routine swap:\n${logs.join('\n')}`);
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
