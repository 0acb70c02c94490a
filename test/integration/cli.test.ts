/** The `cachegate` command as a user runs it: a real process. */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, realpathSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';

const BIN = resolve(import.meta.dirname, '../../bin/cachegate.js');
const run = (args: string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env }, timeout: 30_000 });

describe('cachegate CLI', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cachegate-cli-'));
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  it('check: exit 0 with warnings only, exit 1 with errors, each naming its field', async () => {
    const good = join(dir, 'good.toml');
    await writeFile(good, '[[runners]]\nname = "r"\ntoken = "glrt-abcdefghijkl"\n[runners.cache]\nType = "s3"\n[runners.cache.s3]\nBucketName = "b"\nServerSideEncryption = "KMS"\n');
    const ok = run(['check', '--config', good]);
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /WARNING: runners\[0\]\.cache\.s3\.ServerSideEncryptionKeyID: KMS without a key id/);
    assert.match(ok.stdout, /0 error\(s\), 1 warning\(s\); profiles: r \(s3\)/);

    const bad = join(dir, 'bad.toml');
    await writeFile(bad, '[[runners]]\ntoken = "x"\n[runners.cache]\nType = "s3"\n[runners.cache.s3]\nAuthenticationType = "magic"\n');
    const ko = run(['check', '--config', bad]);
    assert.equal(ko.status, 1);
    assert.match(ko.stdout, /ERROR: runners\[0\]\.cache\.s3\.AuthenticationType: invalid value "magic"/);
    assert.match(ko.stdout, /ERROR: runners\[0\]\.cache\.s3\.BucketName: required/);

    const missing = run(['check', '--config', join(dir, 'nope.toml')]);
    assert.equal(missing.status, 1);
    assert.match(missing.stdout, /file not found/);
  });

  it('check reads CACHE_* without a file', () => {
    const r = run(['check'], { CACHE_TYPE: 'azure', CACHE_AZURE_ACCOUNT_NAME: 'acc' });
    assert.equal(r.status, 1);
    assert.match(r.stdout, /ERROR: environment\.azure\.ContainerName: required/);
  });

  it('serve: the first log line gives the URL; --listen 127.0.0.1:0 picks a free port; SIGTERM stops it', async () => {
    const child = spawn(process.execPath, [BIN, 'serve', '--listen', '127.0.0.1:0', '--data-dir', join(dir, 'data')], {
      env: { PATH: process.env.PATH ?? '', CACHEGATE_LOG_FORMAT: 'text' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    const url = await new Promise<string>((res, rej) => {
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const first = out.split('\n')[0];
        const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(first);
        if (m) res(m[1]);
      });
      child.on('exit', (code) => rej(new Error(`exited ${code}: ${out}`)));
      setTimeout(() => rej(new Error(`no listening line: ${out}`)), 20_000);
    });
    assert.match(out.split('\n')[0], /^time="[^"]+" level=info msg="cachegate listening on http:\/\/127\.0\.0\.1:\d+"/);
    assert.notEqual(url, 'http://127.0.0.1:0');
    assert.equal((await fetch(`${url}/healthz`)).status, 200);
    const exited = new Promise<number | null>((res) => child.on('exit', res));
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
  });

  it('serve reloads on SIGHUP and keeps the old configuration when the new one is invalid', async () => {
    const cfg = join(dir, 'hup.toml');
    const toml = (t: string): string => `[[runners]]\nname = "r"\ntoken = "${t}"\n[runners.cache]\nType = "local"\n`;
    await writeFile(cfg, toml('first-token-0000000'));
    const child = spawn(process.execPath, [BIN, 'serve', '--config', cfg, '--listen', '127.0.0.1:0', '--data-dir', join(dir, 'hupdata')], {
      env: { PATH: process.env.PATH ?? '' }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const url = await new Promise<string>((res, rej) => {
      const t = setInterval(() => {
        const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
        if (m) { clearInterval(t); res(m[1]); }
      }, 50);
      setTimeout(() => { clearInterval(t); rej(new Error(out)); }, 20_000);
    });
    const ask = async (token: string): Promise<number> =>
      (await fetch(`${url}/v1/presign`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: '{"operation":"head","key":"k","projectId":"1"}' })).status;
    try {
      assert.equal(await ask('first-token-0000000'), 200);
      await writeFile(cfg, toml('second-token-000000'));
      child.kill('SIGHUP');
      let status = 0;
      for (let i = 0; i < 50 && status !== 200; i++) {
        await new Promise((r) => setTimeout(r, 100));
        status = await ask('second-token-000000');
      }
      assert.equal(status, 200);
      await writeFile(cfg, '[[runners]]\ntoken = "x"\n[runners.cache]\nType = "bogus"\n');
      child.kill('SIGHUP');
      for (let i = 0; i < 50 && !out.includes('keeping the previous one'); i++) await new Promise((r) => setTimeout(r, 100));
      assert.match(out, /ERROR: configuration reload: the new configuration is invalid; keeping the previous one  .*trigger=SIGHUP result=invalid/);
      assert.equal(await ask('second-token-000000'), 200);
    } finally {
      child.kill('SIGTERM');
    }
  });

  it('serve refuses an invalid configuration, and serving without tokens on a public address', async () => {
    const bad = join(dir, 'bad2.toml');
    await writeFile(bad, '[cachegate]\nlog_format = "xml"\n');
    const r = run(['serve', '--config', bad, '--listen', '127.0.0.1:0']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /log_format: "xml" is not one of runner, text, json/);
    const open = run(['serve', '--listen', '0.0.0.0:0', '--data-dir', join(dir, 'data2')]);
    assert.equal(open.status, 1);
    assert.match(open.stderr, /refusing to serve without authentication on 0\.0\.0\.0:0/);
  });

  it('presign prints the same JSON as the API', async () => {
    const cfg = join(dir, 'p.toml');
    await writeFile(cfg, '[cachegate]\npublic_url = "http://cache.example:9170"\nlocal_signing_key = "s3cr3t"\n[[runners]]\nname = "r"\ntoken = "glrt-longtoken"\n[runners.cache]\nType = "local"\n');
    const r = run(['presign', '--config', cfg, '--runner', 'r', '--operation', 'upload', '--key', 'a\\b', '--project', '7', '--content-length', '10']);
    assert.equal(r.status, 0, r.stderr);
    const a = JSON.parse(r.stdout);
    assert.equal(a.objectName, 'runner/longtoken/project/7/a/b');
    assert.equal(a.method, 'PUT');
    assert.match(a.url, /^http:\/\/cache\.example:9170\/v1\/blob\/runner\/longtoken\/project\/7\/a\/b\?/);
    assert.equal(a.headers['content-length'], '10');
    const bad = run(['presign', '--config', cfg, '--runner', 'r', '--operation', 'upload', '--key', '..', '--project', '7']);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /cache key "\.\." could not be sanitized/);
  });

  it('unknown commands and options exit 2 / 1 with a message', () => {
    const r = run(['frobnicate']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /unknown command "frobnicate"/);
    const o = run(['check', '--nope']);
    assert.equal(o.status, 1);
    assert.match(o.stderr, /Unknown option '--nope'/);
  });
});

describe('the installed command (its shebang, as npx and the images run it)', () => {
  it("--env-file reaches the helper, not Node: a missing file is the helper's error, exit 1 (Node said 'not found', exit 9)", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cachegate-envfile-'));
    try {
      // Through the shebang line, with the pinned Node first on PATH (as npm scripts and npx have it).
      const r = spawnSync(BIN, ['cache-extractor', '--file', 'x.zip', '--gocloud-url', 's3://b/o', '--env-file', join(dir, 'missing.env')], {
        cwd: dir, encoding: 'utf8', env: { PATH: `${resolve(process.execPath, '..')}:${process.env.PATH ?? ''}` },
      });
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, /^ERROR: downloading the cache failed: --env-file .*missing\.env: no such file$/m);
      assert.doesNotMatch(r.stderr, /node: /);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('help and messages name the flags', () => {
  it('--help of cache-archiver and cache-extractor lists every flag they accept, with its environment variable', async () => {
    const { ARCHIVER_FLAGS, EXTRACTOR_FLAGS } = await import('../../src/archive/helper-args.ts');
    for (const [command, flags] of [['cache-archiver', ARCHIVER_FLAGS], ['cache-extractor', EXTRACTOR_FLAGS]] as const) {
      const r = run([command, '--help']);
      assert.equal(r.status, 0, r.stderr);
      for (const name of Object.keys(flags)) assert.match(r.stdout, new RegExp(`^  --${name}\\b`, 'm'), `${command} --help lacks --${name}`);
    }
    const a = run(['cache-archiver', '--help']).stdout;
    for (const v of ['CACHEGATE_RUNNER_TOKEN', 'CACHE_MAX_UPLOADED_ARCHIVE_SIZE', 'CACHE_COMPRESSION_FORMAT']) assert.ok(a.includes(v), v);
    assert.match(a, /--max-uploaded-archive-size BYTES/);
    assert.match(a, /--retry N/);
  });

  it('cachegate --help lists the environment variables, CACHEGATE_RUNNER_TOKEN included', () => {
    const r = run(['--help']);
    for (const v of ['CACHEGATE_RUNNER_TOKEN', 'CACHEGATE_CONFIG', 'CACHEGATE_LOCAL_SIGNING_KEY', 'CACHE_S3_*', 'TRANSFER_METER_FREQUENCY']) assert.ok(r.stdout.includes(v), v);
    assert.match(r.stdout, /check \[--config FILE\] \[--probe\]/);
  });

  it('presign without --project names the flag, not the JSON field', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cachegate-flags-'));
    try {
      const cfg = join(dir, 'c.toml');
      await writeFile(cfg, '[[runners]]\nname = "r"\ntoken = "glrt-flags-000000"\n[runners.cache]\nType = "local"\n');
      const r = run(['presign', '--config', cfg, '--runner', 'r', '--operation', 'upload', '--key', 'k']);
      assert.equal(r.status, 1);
      assert.equal(r.stderr.trim(), 'cachegate presign: --project: required');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

/** Starts `serve` through `command args…`, runs `check` on the listening process, then SIGTERM: exit 0. */
async function serveThenTerm(command: string, args: string[], env: NodeJS.ProcessEnv, check: (pid: number) => void = () => {}): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'cachegate-launch-'));
  const child = spawn(command, [...args, 'serve', '--listen', '127.0.0.1:0', '--data-dir', join(dir, 'data')], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  try {
    for (let i = 0; i < 200 && !/listening on/.test(out); i++) await new Promise((r) => setTimeout(r, 50));
    assert.match(out, /listening on http:\/\/127\.0\.0\.1:\d+/);
    check(child.pid!);
    const exited = new Promise<number | null>((res) => child.on('exit', res));
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
  } finally {
    child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  }
}

describe('run as a program with an older Node first on PATH', () => {
  it('is one process, the pinned Node 24 (no Node 20 parent kept resident beside it); SIGTERM reaches serve, exit 0', async () => {
    const pinned = resolve(import.meta.dirname, '../../node_modules/node/bin/node');
    await serveThenTerm(BIN, [], { PATH: '/usr/bin:/bin' }, (pid) => {
      assert.equal(realpathSync(`/proc/${pid}/exe`), realpathSync(pinned));
      assert.equal(readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim(), '', 'no child process');
    });
  });
});

describe('started by an older Node (the machine\'s Node 20, as npx and ./bin do)', () => {
  const system = spawnSync('/usr/bin/node', ['-p', 'process.versions.node'], { encoding: 'utf8' });
  const old = system.status === 0 && Number(system.stdout.split('.')[0]) < 24;
  it('hands over to the pinned Node 24: the command runs, SIGTERM reaches serve, exit 0', { skip: old ? false : 'no Node older than 24 at /usr/bin/node here' }, async () => {
    const v = spawnSync('/usr/bin/node', [BIN, 'version'], { encoding: 'utf8' });
    assert.equal(v.status, 0, v.stderr);
    assert.match(v.stdout, /^cachegate \d+\.\d+\.\d+/);
    await serveThenTerm('/usr/bin/node', [BIN], { PATH: process.env.PATH ?? '' });
  });
});
