/**
 * `npm test`: type-check, make sure the real servers' packages are installed (idempotent), start one
 * Ceph RGW for the whole run (stopped by PID at the end), then run every test file with node's test
 * runner. Azurite and the GCS verifying endpoint are started by the tests that need them.
 *
 *   npm test                      everything
 *   npm test -- test/unit         only some paths
 *   CACHEGATE_TEST_S3_ENDPOINT=…  use a running S3 server (e.g. MinIO from docker-compose.minio.yml) instead of RGW
 *   CACHEGATE_SKIP_INSTALL=1      do not try to install system packages
 */
import { spawnSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..');
const NODE = process.execPath;
const args = process.argv.slice(2);
const paths = args.length > 0 ? args : ['test/unit', 'test/integration', 'test/contract'];

function step(name: string, cmd: string, argv: string[], env: NodeJS.ProcessEnv = process.env): void {
  process.stdout.write(`\n== ${name}\n`);
  const r = spawnSync(cmd, argv, { cwd: ROOT, stdio: 'inherit', env });
  if (r.status !== 0) {
    process.stderr.write(`\n${name} failed (exit ${r.status ?? r.signal})\n`);
    process.exit(r.status ?? 1);
  }
}

step('type check (tsc)', NODE, [resolve(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json']);

const needsS3 = paths.some((p) => !p.startsWith('test/unit'));
if (process.env.CACHEGATE_SKIP_INSTALL !== '1' && needsS3 && !process.env.CACHEGATE_TEST_S3_ENDPOINT) {
  if (!existsSync('/usr/bin/apt-get') && !existsSync('/usr/bin/radosgw')) {
    process.stderr.write(
      'The integration tests need a real S3 server. This machine has no apt-get to install Ceph RGW:\n' +
        '  docker compose -f docker-compose.minio.yml up -d\n' +
        '  CACHEGATE_TEST_S3_ENDPOINT=http://127.0.0.1:9000 CACHEGATE_TEST_S3_REGION=us-east-1 CACHEGATE_TEST_S3_ACCESS_KEY=cachegate-minio CACHEGATE_TEST_S3_SECRET_KEY=cachegate-minio-secret npm test\n' +
        '(MinIO has no STS role or KMS test key like RGW: those S3 tests will fail there; see docs/minio.md)\n' +
        'or run only the unit tests: npm test -- test/unit\n',
    );
    process.exit(2);
  }
  step('system packages (scripts/install-deps.sh)', 'bash', ['scripts/install-deps.sh']);
}

// Every contract fixture must run: a backend whose server cannot start fails the suite instead of skipping.
const env: NodeJS.ProcessEnv = { CONTRACT_REQUIRE_ALL: '1', ...process.env };
if (needsS3 && !env.CACHEGATE_TEST_S3_ENDPOINT) {
  process.stdout.write('\n== starting Ceph RGW (scripts/start-rgw.sh)\n');
  const { rgw } = await import('../test/support/rgw.ts');
  const server = await rgw(); // stopped by PID when this process exits
  env.CACHEGATE_TEST_S3_ENDPOINT = server.endpoint;
  process.stdout.write(`RGW ready at ${server.endpoint}\n`);
}

process.stdout.write(`\n== node --test ${paths.join(' ')}\n`);
// A directory stands for every *.test.ts below it.
const globs = paths.map((p) => (p.endsWith('.ts') ? p : `${p.replace(/\/+$/, '')}/**/*.test.ts`));
const child = spawn(NODE, ['--test', '--test-concurrency=2', '--test-timeout=600000', ...globs], { cwd: ROOT, stdio: 'inherit', env });
const code: number = await new Promise((res) => child.on('close', (c) => res(c ?? 1)));
process.exit(code);
