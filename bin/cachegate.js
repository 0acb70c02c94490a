#!/bin/sh
':' //; d=$(dirname "$(readlink -f "$0")"); n="$d/../node_modules/node/bin/node"; [ -x "$n" ] || n=node; f=; case "$1" in cache-archiver|cache-extractor) export MALLOC_MMAP_THRESHOLD_="${MALLOC_MMAP_THRESHOLD_:-65536}";; serve) s="${CACHEGATE_SEMI_SPACE_MIB-16}"; case "$s" in ''|0|*[!0-9]*) ;; *) f="--max-semi-space-size=$s";; esac;; esac; exec "$n" $f -- "$0" "$@"
// Entry point of the `cachegate` command. The sources are TypeScript run through Node's type
// stripping (Node >= 24), so there is no build step.
// Run as a program (npx, node_modules/.bin, the images' /usr/local/bin/cachegate), the line above is
// shell: it replaces itself (exec) with the Node 24 that `npm ci` installed (the `node` package)
// when there is one, else the `node` on PATH. To JavaScript it is a string and a comment. Why not
// `#!/usr/bin/env node`: with the machine's older Node first on PATH that started a Node 20 only to
// spawn Node 24 below, and the idle parent stayed resident beside it for the whole command (+43 MB
// of RSS in the job's container, measured with bench/helper-memory.ts --wrapper).
// For the helper commands it also sets MALLOC_MMAP_THRESHOLD_=65536 (unless set): glibc then gives
// every block of 64 KiB or more (node:http's socket chunks, the archive's 64 KiB–4 MiB buffers) its
// own mapping, returned to the system when freed, instead of carving it from an arena whose freed
// pages stay resident, fragmented (glibc otherwise raises the threshold to the largest block freed,
// up to 32 MiB). Measured, cache-extractor + download of the bench tree: zip 161–162 → 134–149 MB
// peak RSS, tar.zst 111–122 → 113–116 MB; docs/archive.md "What the peak is made of". glibc reads
// it at start-up only, hence here; a process started as `node -- bin/cachegate.js` does without.
// For `serve` it caps V8's young generation: --max-semi-space-size=16 (MiB; CACHEGATE_SEMI_SPACE_MIB,
// 0 or empty = V8's default, which on this Node lets it grow to 64 MiB per semi-space). Under the S3
// front door's load the young generation's pages, which V8 gives back to its page pool without
// returning them to the system, became resident one by one: RSS climbed ~3.5-5 MiB a minute with
// the V8 heap, malloc's arenas and the sockets all flat (docs/performance.md, "S3 front door,
// session 9"). `node bin/cachegate.js serve` run by hand skips this line: pass the flag to node.
// The `--` matters: Node 24 reads `--env-file` (and `--env-file-if-exists`) anywhere on its command
// line, even after the script, so the helper's own `--env-file cache.env` was taken by Node
// (`node: cache.env: not found`, exit 9, or the file loaded into Node's environment). After `--`,
// every argument is the script's. Run by hand: `node -- bin/cachegate.js …`.
const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  // Started by hand with an older Node (`node bin/cachegate.js`): hand over to the Node 24 that
  // `npm ci` installed (the `node` package), passing signals on, so package.json's
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
  // The helper commands run in fresh CI containers where memory is tight: their compile cache is on
  // before the first TypeScript module loads (src/cli/helper-startup.js).
  if (process.argv[2] === 'cache-archiver' || process.argv[2] === 'cache-extractor') (await import('../src/cli/helper-startup.js')).enableCompileCache();
  const { main } = await import('../src/cli/main.ts');
  process.exitCode = await main(process.argv.slice(2));
}
