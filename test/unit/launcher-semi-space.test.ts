/**
 * The launcher (bin/cachegate.js, run as a program as `npm start` and the image do) caps V8's young
 * generation for `serve` (docs/performance.md, "S3 front door, session 9": its pages became resident
 * one by one and the door's RSS climbed): --max-semi-space-size=16 by default, CACHEGATE_SEMI_SPACE_MIB
 * to change it, 0 or empty for V8's own default, anything but a number ignored; other commands untouched.
 * What Node was started with is read by a module preloaded through NODE_OPTIONS, which exits before
 * the command runs.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const LAUNCHER = fileURLToPath(new URL('../../bin/cachegate.js', import.meta.url));
const PRINT = 'data:text/javascript,process.stdout.write(JSON.stringify(process.execArgv));process.exit(0)';

function execArgv(command: string, semi?: string): string[] {
  const env: NodeJS.ProcessEnv = { ...process.env, NODE_OPTIONS: `--import=${PRINT}` };
  delete env.CACHEGATE_SEMI_SPACE_MIB;
  if (semi !== undefined) env.CACHEGATE_SEMI_SPACE_MIB = semi;
  const r = spawnSync(LAUNCHER, [command], { encoding: 'utf8', env });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as string[];
}

test('serve: V8 semi-spaces of 16 MiB unless told otherwise', () => {
  assert.deepEqual(execArgv('serve'), ['--max-semi-space-size=16']);
  assert.deepEqual(execArgv('serve', '8'), ['--max-semi-space-size=8']);
  assert.deepEqual(execArgv('serve', '0'), []);
  assert.deepEqual(execArgv('serve', ''), []);
  assert.deepEqual(execArgv('serve', '16; rm -rf /'), []);
  assert.deepEqual(execArgv('serve', '-1'), []);
});

test('other commands keep V8 defaults', () => {
  assert.deepEqual(execArgv('check'), []);
  assert.deepEqual(execArgv('cache-extractor'), []);
});
