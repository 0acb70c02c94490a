#!/usr/bin/env node
// Entry point of the `cachegate` command. The sources are TypeScript run through Node's type
// stripping (Node >= 24), so there is no build step.
const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  process.stderr.write(`cachegate needs Node.js 24 or later (this is ${process.version}); run it through npm (npm start / npx cachegate), which uses the Node pinned in package.json\n`);
  process.exit(2);
}
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
