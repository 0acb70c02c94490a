#!/usr/bin/env -S node --
// Entry point of the `cachegate` command. The sources are TypeScript run through Node's type
// stripping (Node >= 24), so there is no build step.
// The `--` in the line above matters: Node 24 reads `--env-file` (and `--env-file-if-exists`)
// anywhere on its command line, even after the script, so the helper's own `--env-file cache.env`
// was taken by Node (`node: cache.env: not found`, exit 9, or the file loaded into Node's
// environment). After `--`, every argument is the script's. Run by hand: `node -- bin/cachegate.js …`.
const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  process.stderr.write(`cachegate needs Node.js 24 or later (this is ${process.version}); run it through npm (npm start / npx cachegate), which uses the Node pinned in package.json\n`);
  process.exit(2);
}
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
