/**
 * bench/deflate-engines — deflate throughput (MB/s of input, one core) and ratio of the engines we
 * could use, on a tree's real file mix: files under 1 MiB compressed whole (one stream each), larger
 * ones in 1 MiB blocks (engines.c: zlib 1/5/9, libdeflate 1–9, ISA-L igzip 0–3) or whole
 * (klauspost.go: klauspost/compress flate 1 and 5, what GitLab's helper uses). Up to 160 MB of
 * each kind. Needs gcc, libdeflate-dev, zlib1g-dev, libisal-dev, golang-go and
 * golang-github-klauspost-compress-dev (docs/archive.md "Deflate engines").
 *
 *   node bench/deflate-engines.ts --tree DIR
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';

const here = path.join(import.meta.dirname, 'deflate-engines');
const i = process.argv.indexOf('--tree');
if (i < 0) throw new Error('usage: node bench/deflate-engines.ts --tree DIR');
const tree = path.resolve(process.argv[i + 1]);
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'deflate-engines-'));

function sh(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): string {
  const r = spawnSync(cmd, args, { ...opts, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

const small: string[] = [];
const large: string[] = [];
const walk = (d: string): void => {
  for (const e of fs.readdirSync(d, { withFileTypes: true })) {
    const p = path.join(d, e.name);
    if (e.isDirectory()) walk(p);
    else if (e.isFile()) (fs.statSync(p).size < 1 << 20 ? small : large).push(p);
  }
};
walk(tree);
small.sort();
large.sort((a, b) => fs.statSync(b).size - fs.statSync(a).size);
fs.writeFileSync(path.join(work, 'small.txt'), small.join('\n') + '\n');
fs.writeFileSync(path.join(work, 'large.txt'), large.join('\n') + '\n');

const engines = path.join(work, 'engines');
sh('gcc', ['-O2', '-o', engines, path.join(here, 'engines.c'), '-lz', '-ldeflate', '-lisal']);
const gopath = path.join(work, 'go');
fs.mkdirSync(path.join(gopath, 'src/kbench'), { recursive: true });
fs.copyFileSync(path.join(here, 'klauspost.go'), path.join(gopath, 'src/kbench/main.go'));
const kbench = path.join(work, 'kbench');
sh('go', ['build', '-o', kbench, '.'], { cwd: path.join(gopath, 'src/kbench'), env: { ...process.env, GO111MODULE: 'off', GOPATH: `${gopath}:/usr/share/gocode`, GOFLAGS: '' } });

console.log(`tree ${tree}: ${small.length} files < 1 MiB, ${large.length} larger; load ${os.loadavg()[0].toFixed(1)}`);
process.stdout.write(sh(engines, [path.join(work, 'small.txt'), path.join(work, 'large.txt')]));
process.stdout.write(sh(kbench, [path.join(work, 'small.txt'), path.join(work, 'large.txt')]));
fs.rmSync(work, { recursive: true, force: true });
