/**
 * Builds the Go reference (bench/gitlab-ref, GitLab Runner's helper archive code rebuilt on its own
 * libraries) offline, in GOPATH mode against Debian's packages, into a directory of the caller's
 * (the binary is never committed). Used by bench/helper-vs-gitlab.ts and the interop tests.
 *
 *   node bench/gitlab-ref/build.ts [OUT_DIR]     prints the binary's path (default: a temp dir)
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';

export const GITLAB_REF_SRC = import.meta.dirname;
const GOPATH = '/usr/share/gocode';
/** What the program imports, by path under GOPATH, with the Debian package that provides it. */
export const GITLAB_REF_PACKAGES: Record<string, string> = {
  '/usr/bin/go': 'golang-go',
  [`${GOPATH}/src/github.com/klauspost/compress/zstd`]: 'golang-github-klauspost-compress-dev',
  [`${GOPATH}/src/golang.org/x/sync/errgroup`]: 'golang-golang-x-sync-dev',
  [`${GOPATH}/src/golang.org/x/sys/unix`]: 'golang-golang-x-sys-dev',
};

/** The Debian packages missing on this machine (empty when the reference can be built). */
export function missingGitlabRefPackages(): string[] {
  return Object.entries(GITLAB_REF_PACKAGES).filter(([p]) => !fs.existsSync(p)).map(([, pkg]) => pkg);
}

/** Builds bench/gitlab-ref into `outDir` and returns the binary's path. */
export function buildGitlabRef(outDir: string = fs.mkdtempSync(path.join(os.tmpdir(), 'cg-gitlab-ref-'))): string {
  const missing = missingGitlabRefPackages();
  if (missing.length > 0) throw new Error(`cannot build bench/gitlab-ref: missing Debian packages ${missing.join(' ')} (scripts/install-deps.sh installs them)`);
  const bin = path.join(outDir, 'gitlab-ref');
  const env = { ...process.env, GO111MODULE: 'off', GOPATH, GOFLAGS: '', GOCACHE: process.env.GOCACHE ?? path.join(os.tmpdir(), 'cg-go-cache') };
  const r = spawnSync('go', ['build', '-o', bin, '.'], { cwd: GITLAB_REF_SRC, env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`go build bench/gitlab-ref failed (${r.status ?? r.signal}): ${r.stderr}${r.error?.message ?? ''}`);
  return bin;
}

if (process.argv[1] && path.resolve(process.argv[1]) === import.meta.filename) {
  const out = process.argv[2] ? path.resolve(process.argv[2]) : undefined;
  if (out) fs.mkdirSync(out, { recursive: true });
  console.log(buildGitlabRef(out));
}
