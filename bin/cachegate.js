#!/usr/bin/env -S node --
// Entry point of the `cachegate` command. The sources are TypeScript run through Node's type
// stripping (Node >= 24), so there is no build step.
// The `--` in the line above matters: Node 24 reads `--env-file` (and `--env-file-if-exists`)
// anywhere on its command line, even after the script, so the helper's own `--env-file cache.env`
// was taken by Node (`node: cache.env: not found`, exit 9, or the file loaded into Node's
// environment). After `--`, every argument is the script's. Run by hand: `node -- bin/cachegate.js …`.
const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  // An older Node (the machine's, e.g. through npx or ./node_modules/.bin/cachegate): hand over to
  // the Node 24 that `npm ci` installed (the `node` package), passing signals on, so package.json's
  // engines can say what npm itself needs (>= 20) and npm prints no EBADENGINE block on every call.
  const { existsSync } = await import('node:fs');
  const { spawn } = await import('node:child_process');
  const { fileURLToPath } = await import('node:url');
  const pinned = fileURLToPath(new URL('../node_modules/node/bin/node', import.meta.url));
  if (!existsSync(pinned)) {
    process.stderr.write(`cachegate needs Node.js 24 or later (this is ${process.version}); run \`npm ci\` (it installs the Node pinned in package.json) or use Node 24\n`);
    process.exit(2);
  }
  const child = spawn(pinned, ['--', fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit' });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => process.exit(code ?? (signal === null ? 1 : 128 + (signal === 'SIGINT' ? 2 : signal === 'SIGHUP' ? 1 : 15))));
} else {
  const { main } = await import('../src/cli/main.ts');
  process.exitCode = await main(process.argv.slice(2));
}
