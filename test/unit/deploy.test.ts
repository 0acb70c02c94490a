/**
 * The images cannot be built and the pipeline cannot run here (no Docker engine, no GitLab), so this
 * checks what can be checked without them:
 * - Dockerfile: the stages and the two targets, a numeric non-root USER in both, the service's
 *   port, volume, HEALTHCHECK and entry point, the helper's shell entry, no secret in ARG or ENV;
 * - the image's file tree: the files the Dockerfile COPYs (minus .dockerignore) with only the
 *   production dependencies start `cachegate`, load every module, every lazily imported package and
 *   the native zstd module, serve with docs/deploy.md's `docker run` settings (answering the
 *   image's HEALTHCHECK command, stopping on SIGTERM) and with its Kubernetes configuration
 *   (writing nothing to disk);
 * - .gitlab-ci.yml: kaniko jobs for both targets; their script, run with sh, writes the registry
 *   auth kaniko reads and passes the right flags and tags; it uses only GitLab's predefined
 *   variables and its own;
 * - docs/deploy.md agrees with both (ports, targets, image names, user, probes, the ECR lines).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, posix, relative } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse as parseToml } from 'smol-toml';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { parseConfigText } from '../../src/config/load.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const read = (p: string): string => readFileSync(join(ROOT, p), 'utf8');
const pkg = JSON.parse(read('package.json')) as { version: string; bin: Record<string, string>; engines: { node: string }; dependencies: Record<string, string> };
const lock = JSON.parse(read('package-lock.json')) as { packages: Record<string, { version?: string; dev?: boolean; optional?: boolean }> };
const docs = read('docs/deploy.md');
/** docs/deploy.md writes registry.example.com/ops/cachegate for the pipeline's $CI_REGISTRY_IMAGE. */
const DOCS_REGISTRY_IMAGE = 'registry.example.com/ops/cachegate';
const SECRET_NAME = /TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|PRIVATE|SIGNING_KEY|ACCESS_KEY|AUTH/i;
const SECRET_VALUE = /AKIA[0-9A-Z]{16}|glpat-|glrt-|gldt-|BEGIN [A-Z ]*PRIVATE KEY|"auth"\s*:\s*"[A-Za-z0-9+/=]{8,}"/;

// ---------------------------------------------------------------------------------------------
// Dockerfile

interface Instruction {
  op: string;
  args: string;
}
interface Stage {
  name: string;
  from: string;
  body: Instruction[];
}

/** Logical lines (continuations joined, comments dropped as Docker does), split into stages. */
function parseDockerfile(text: string): { args: Map<string, string>; stages: Stage[] } {
  const lines: string[] = [];
  let current = '';
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    if (/^\s*#/.test(line)) continue;
    if (line.endsWith('\\')) {
      current += line.slice(0, -1) + ' ';
      continue;
    }
    current += line;
    if (current.trim() !== '') lines.push(current.trim().replace(/\s+/g, ' '));
    current = '';
  }
  const args = new Map<string, string>();
  const stages: Stage[] = [];
  for (const line of lines) {
    const [, op, rest] = /^(\S+)\s*(.*)$/.exec(line) as RegExpExecArray;
    const upper = op.toUpperCase();
    if (upper === 'FROM') {
      const m = /^(?:--platform=\S+ )?(\S+)(?: AS (\S+))?$/i.exec(rest);
      assert.ok(m, `FROM ${rest}`);
      stages.push({ name: m[2] ?? String(stages.length), from: m[1], body: [] });
    } else if (stages.length === 0) {
      assert.equal(upper, 'ARG', 'only ARG may come before the first FROM');
      const [name, value] = rest.split('=');
      args.set(name, value ?? '');
    } else {
      stages[stages.length - 1].body.push({ op: upper, args: rest });
    }
  }
  return { args, stages };
}

const dockerfile = parseDockerfile(read('Dockerfile'));
const stage = (name: string): Stage => {
  const s = dockerfile.stages.find((x) => x.name === name);
  assert.ok(s, `Dockerfile has a stage "${name}"`);
  return s;
};
/** The stage and the stages it is built FROM, base first. */
const chain = (name: string): Stage[] => {
  const s = stage(name);
  return dockerfile.stages.some((x) => x.name === s.from) ? [...chain(s.from), s] : [s];
};
const instructions = (name: string, op: string): Instruction[] => chain(name).flatMap((s) => s.body.filter((i) => i.op === op));
const lastOf = (name: string, op: string): Instruction | undefined => instructions(name, op).at(-1);
const execForm = (args: string): string[] => JSON.parse(args) as string[];
function envOf(name: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const i of instructions(name, 'ENV')) {
    for (const m of i.args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|\S+)/g)) env[m[1]] = m[2].replace(/^"|"$/g, '');
  }
  return env;
}
/** ${NAME} of the global ARGs, as Docker substitutes them in FROM. */
const expandArgs = (s: string): string => s.replace(/\$\{(\w+)\}/g, (_, n: string) => dockerfile.args.get(n) ?? '');
const nodeVersionLocked = lock.packages['node_modules/node']?.version;
const serviceEnv = envOf('service');
const exposed = instructions('service', 'EXPOSE').map((i) => Number(i.args));
const volumes = instructions('service', 'VOLUME').map((i) => i.args);
const userOf = (name: string): string => lastOf(name, 'USER')?.args ?? 'root';
const workdirOf = (name: string): string => lastOf(name, 'WORKDIR')?.args ?? '/';

describe('Dockerfile', () => {
  test('stages: production dependencies, a shared runtime, and the targets service and helper', () => {
    assert.deepEqual(dockerfile.stages.map((s) => s.name), ['deps', 'runtime', 'service', 'helper']);
    assert.equal(stage('service').from, 'runtime');
    assert.equal(stage('helper').from, 'runtime');
    assert.ok(instructions('deps', 'RUN').some((r) => /\bnpm ci\b.*--omit=dev/.test(r.args)), 'deps installs with npm ci --omit=dev');
    assert.ok(instructions('deps', 'COPY').every((c) => /^package(-lock)?\.json( package(-lock)?\.json)* \S+$/.test(c.args) || c.args.startsWith('scripts/') || c.args.startsWith('native/')), 'deps sees package.json, the lock file and the native addon\'s build inputs');
  });

  test('deps builds the native deflate addon from exactly what build-native.sh and binding.gyp read, and checks it', () => {
    const copied = instructions('deps', 'COPY').flatMap((c) => c.args.split(' ').slice(0, -1));
    const inputs = ['scripts/build-native.sh'];
    for (const dir of ['native', 'native/sigv4']) {
      const gyp = JSON.parse(read(`${dir}/binding.gyp`)) as { targets: Array<{ sources: string[] }> };
      inputs.push(`${dir}/binding.gyp`, ...gyp.targets.flatMap((t) => t.sources.map((x) => `${dir}/${x}`)));
    }
    for (const f of inputs) {
      assert.ok(copied.includes(f), `deps copies ${f}`);
      assert.ok(!ignored(f), `${f} is sent to the builder`);
    }
    assert.match(read('package.json'), /"install": "\[ ! -f scripts\/build-native\.sh \] \|\| bash scripts\/build-native\.sh"/, 'npm ci runs build-native.sh when it is there');
    const apt = instructions('deps', 'RUN').map((r) => r.args).join('\n');
    assert.match(apt, /apt-get install[^\n&]*\blibdeflate-dev\b/, 'deps installs libdeflate-dev (the static library binding.gyp links)');
    assert.ok(instructions('deps', 'RUN').some((r) => r.args.includes("require('./native/build/Release/cachegate_deflate.node')") && r.args.includes('writeFiles')), 'deps fails when the addon did not build or lacks a function');
    assert.ok(instructions('deps', 'RUN').some((r) => r.args.includes("require('./native/sigv4/build/Release/cachegate_sigv4.node')")), 'deps fails when the SigV4 addon did not build');
    assert.ok(instructions('runtime', 'COPY').some((c) => c.args === '--from=deps /app/native/build/Release/cachegate_deflate.node ./native/build/Release/'), 'runtime takes the addon from deps');
    assert.ok(instructions('runtime', 'COPY').some((c) => c.args === '--from=deps /app/native/sigv4/build/Release/cachegate_sigv4.node ./native/sigv4/build/Release/'), 'runtime takes the SigV4 addon from deps');
    assert.ok(instructions('runtime', 'RUN').some((r) => r.args.includes('nativeDeflate()')), 'runtime fails when the addon does not load');
    assert.ok(instructions('runtime', 'RUN').some((r) => r.args.includes('nativeSigV4')), 'runtime fails when the SigV4 addon does not load');
  });

  test('Node: an official Debian image of the version the node devDependency pins, slim at run time', () => {
    assert.ok(nodeVersionLocked, 'package-lock.json pins the node package');
    assert.equal(dockerfile.args.get('NODE_VERSION'), nodeVersionLocked);
    const build = expandArgs(stage('deps').from);
    const run = expandArgs(stage('runtime').from);
    assert.equal(build, `node:${nodeVersionLocked}-trixie`);
    assert.equal(run, `${build}-slim`, 'same Debian release in both stages: zstd-napi is compiled in one and loaded in the other');
    const major = Number(nodeVersionLocked.split('.')[0]);
    assert.ok(major >= Number(/\d+/.exec(pkg.engines.node)?.[0]), 'satisfies engines.node');
  });

  test('both targets run as a numeric user that is not root', () => {
    for (const target of ['service', 'helper']) {
      const user = userOf(target);
      assert.match(user, /^\d+:\d+$/, `${target}: USER uid:gid, numeric (Kubernetes runAsNonRoot can only check numbers)`);
      assert.notEqual(user.split(':')[0], '0', `${target} is not root`);
    }
    assert.ok(instructions('service', 'RUN').some((r) => r.args.includes(`chown ${userOf('service')} ${volumes[0]}`)), 'the data volume belongs to that user');
  });

  test('service: cachegate serve on 0.0.0.0 at the EXPOSEd port, data dir = VOLUME, HEALTHCHECK on /healthz without curl', () => {
    assert.deepEqual(execForm(lastOf('service', 'ENTRYPOINT')?.args ?? '[]'), ['cachegate']);
    assert.deepEqual(execForm(lastOf('service', 'CMD')?.args ?? '[]'), ['serve']);
    assert.equal(serviceEnv.CACHEGATE_LISTEN, `0.0.0.0:${exposed[0]}`);
    assert.deepEqual(exposed, [9170]);
    assert.deepEqual(volumes, [serviceEnv.CACHEGATE_DATA_DIR]);
    const hc = lastOf('service', 'HEALTHCHECK')?.args ?? '';
    const cmd = execForm(hc.slice(hc.indexOf('CMD ') + 4));
    assert.equal(cmd[0], 'node', 'the base image has no curl');
    assert.match(cmd.join(' '), /\/healthz/);
    assert.equal(serviceEnv.CACHEGATE_LOG_FORMAT, undefined, 'no log format forced: the environment would override the configuration file');
  });

  test('helper: the cachegate CLI on PATH, an empty entrypoint for GitLab\'s shell, no service', () => {
    assert.deepEqual(execForm(lastOf('helper', 'ENTRYPOINT')?.args ?? 'null'), []);
    assert.equal(execForm(lastOf('helper', 'CMD')?.args ?? '[]')[0], 'cachegate');
    assert.equal(instructions('helper', 'EXPOSE').length, 0);
    assert.equal(instructions('helper', 'HEALTHCHECK').length, 0);
    assert.equal(instructions('helper', 'VOLUME').length, 0);
    const link = /ln -s (\S+) \/usr\/local\/bin\/(\S+)/.exec(instructions('runtime', 'RUN').map((r) => r.args).join(' && '));
    assert.ok(link, 'runtime links cachegate into /usr/local/bin');
    assert.equal(link[2], Object.keys(pkg.bin)[0]);
    assert.equal(link[1], posix.join(workdirOf('runtime'), pkg.bin.cachegate));
  });

  test('the helper installs every program the CLI runs', () => {
    const programs = new Set<string>();
    for (const file of sourceFiles(['src', 'adapters'])) {
      for (const m of read(file).matchAll(/\b(?:spawn|spawnSync|execFile|execFileSync)\(\s*'([^']+)'/g)) programs.add(m[1]);
    }
    assert.ok(programs.has('git'), 'select.ts runs git ls-files for --untracked');
    const installs = instructions('helper', 'RUN').map((r) => r.args).join(' ');
    for (const p of programs) assert.match(installs, new RegExp(`apt-get install [^&]*\\b${p}\\b`), `helper installs ${p}`);
  });

  test('no secret in ARG or ENV, no credential in the file', () => {
    const names = [...dockerfile.args.keys(), ...dockerfile.stages.flatMap((s) => s.body.filter((i) => i.op === 'ARG').map((i) => i.args.split('=')[0]))];
    for (const s of dockerfile.stages) names.push(...Object.keys(envOf(s.name)));
    for (const n of names) assert.doesNotMatch(n, SECRET_NAME, `${n}: build args and ENV end up in the image's history`);
    assert.doesNotMatch(read('Dockerfile'), SECRET_VALUE);
  });
});

// ---------------------------------------------------------------------------------------------
// The image's file tree, reproduced: COPY (minus .dockerignore) + the production dependencies

/** moby's .dockerignore rules: last matching pattern wins, a pattern also matches a path's parents. */
function dockerignore(text: string): (path: string) => boolean {
  const rules = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const negate = l.startsWith('!');
      const glob = posix.normalize(negate ? l.slice(1) : l).replace(/^\/+|\/+$/g, '');
      const re = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*\*/g, '\0').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]').replace(/\0/g, '.*');
      return { negate, re: new RegExp(`^${re}$`) };
    });
  return (path) => {
    const parts = path.split('/');
    const prefixes = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
    let ignored = false;
    for (const r of rules) if (prefixes.some((p) => r.re.test(p))) ignored = !r.negate;
    return ignored;
  };
}
const ignored = dockerignore(read('.dockerignore'));

function sourceFiles(dirs: string[]): string[] {
  return dirs.flatMap((d) => (readdirSync(join(ROOT, d), { recursive: true }) as string[]).map((f) => posix.join(d, f)).filter((f) => statSync(join(ROOT, f)).isFile()));
}

interface Scan {
  files: string[];
  /** Bare specifiers loaded with import (static or dynamic). */
  imports: Set<string>;
  /** Bare specifiers loaded with require (createRequire). */
  requires: Set<string>;
  /** import()/require() calls whose argument is not a string literal. */
  computed: string[];
}

/** Source without comments (string contents kept), so that prose mentioning import() is not code. */
function stripComments(src: string): string {
  let out = '';
  let quote = '';
  for (let i = 0; i < src.length; i++) {
    const c = src[i];
    if (quote) {
      out += c;
      if (c === '\\') out += src[++i] ?? '';
      else if (c === quote || (c === '\n' && quote !== '`')) quote = '';
    } else if (c === '/' && src[i + 1] === '/') {
      while (i < src.length && src[i] !== '\n') i++;
      out += '\n';
    } else if (c === '/' && src[i + 1] === '*') {
      const end = src.indexOf('*/', i + 2);
      i = end < 0 ? src.length : end + 1;
    } else {
      if (c === "'" || c === '"' || c === '`') quote = c;
      out += c;
    }
  }
  return out;
}

/** Every file reachable from `entry` through relative imports, and the packages they load. */
function scanImports(entry: string): Scan {
  const scan: Scan = { files: [], imports: new Set(), requires: new Set(), computed: [] };
  const queue = [entry];
  while (queue.length > 0) {
    const file = queue.shift() as string;
    if (scan.files.includes(file)) continue;
    scan.files.push(file);
    const code = stripComments(read(file));
    const found: Array<{ spec: string; kind: 'import' | 'require' }> = [];
    for (const m of code.matchAll(/(?:^|[\s;{}])(?:import|export)(\s+type)?\s+(?:[^'";]*?\sfrom\s*)?(['"])([^'"]+)\2/g)) {
      if (!m[1]) found.push({ spec: m[3], kind: 'import' });
    }
    // require is a createRequire() result, called by that name or at once: createRequire(…)('x').
    const requireNamed = [...code.matchAll(/\bconst require = createRequire\(/g)].length;
    const requireAtOnce = [...code.matchAll(/\bcreateRequire\([^()]*\)\(/g)].length;
    if ([...code.matchAll(/\bcreateRequire\(/g)].length !== requireNamed + requireAtOnce) scan.computed.push(`${file}: createRequire() under another name`);
    for (const [kind, re, all] of [
      ['import', /\bimport\s*\(\s*(['"])([^'"]+)\1\s*\)/g, /\bimport\s*\(/g],
      ['require', /(?:\brequire|\bcreateRequire\([^()]*\))\s*\(\s*(['"])([^'"]+)\1\s*\)/g, /(?:\brequire|\bcreateRequire\([^()]*\))\s*\(/g],
    ] as const) {
      const literal = [...code.matchAll(re)];
      for (const m of literal) found.push({ spec: m[2], kind });
      const total = [...code.matchAll(all)].length;
      if (total !== literal.length) scan.computed.push(`${file}: ${total - literal.length} ${kind}() without a string literal`);
    }
    for (const { spec, kind } of found) {
      if (spec.startsWith('.')) queue.push(posix.join(posix.dirname(file), spec));
      else (kind === 'require' ? scan.requires : scan.imports).add(spec);
    }
  }
  return scan;
}
const packageOf = (spec: string): string => spec.split('/').slice(0, spec.startsWith('@') ? 2 : 1).join('/');

/** The production dependency closure as npm ci --omit=dev installs it (top-level folders; nested ones come inside). */
function productionPackages(): string[] {
  return Object.entries(lock.packages)
    .filter(([k, v]) => k.startsWith('node_modules/') && !k.slice('node_modules/'.length).includes('node_modules/') && !v.dev)
    .map(([k]) => k.slice('node_modules/'.length))
    .filter((name) => existsSync(join(ROOT, 'node_modules', name)));
}

/**
 * Lays out what the runtime stage puts into its WORKDIR: each COPY from the build context (with
 * .dockerignore applied), and for COPY --from=deps a node_modules of symlinks to the production
 * packages only. Run with --preserve-symlinks, packages resolve their own dependencies there too.
 */
function layOutImage(into: string): void {
  const workdir = workdirOf('runtime');
  const depsDir = posix.join(workdirOf('deps'), 'node_modules');
  const target = (dest: string): string => join(into, posix.relative(workdir, posix.resolve(workdir, dest)));
  for (const copy of instructions('runtime', 'COPY')) {
    const words = copy.args.split(' ');
    const flags = words.filter((w) => w.startsWith('--'));
    const [dest, ...sources] = words.filter((w) => !w.startsWith('--')).reverse();
    sources.reverse();
    if (flags.length > 0) {
      assert.deepEqual(flags, ['--from=deps'], `COPY ${copy.args}: only --from=deps is reproduced here`);
      const addon = posix.relative(workdirOf('deps'), sources[0]);
      if (addon.startsWith('native/') && addon.endsWith('.node')) {
        // the addons deps builds are the ones `npm ci` built here (scripts/build-native.sh, same sources)
        assert.ok(existsSync(join(ROOT, addon)), `${addon} is built here (npm ci with libdeflate-dev installed)`);
        mkdirSync(target(dest), { recursive: true });
        copyFileSync(join(ROOT, addon), join(target(dest), posix.basename(addon)));
        continue;
      }
      assert.deepEqual(sources, [depsDir], 'what is taken from deps is its node_modules and the native addon');
      for (const name of productionPackages()) {
        mkdirSync(dirname(join(target(dest), name)), { recursive: true });
        symlinkSync(join(ROOT, 'node_modules', name), join(target(dest), name));
      }
      continue;
    }
    for (const src of sources) {
      assert.ok(!ignored(src), `COPY ${src}: excluded by .dockerignore`);
      const isDir = statSync(join(ROOT, src)).isDirectory();
      const files = isDir ? sourceFiles([src]) : [src];
      for (const f of files) {
        if (ignored(f)) continue;
        const to = isDir ? join(target(dest), relative(join(ROOT, src), join(ROOT, f))) : dest.endsWith('/') ? join(target(dest), posix.basename(f)) : target(dest);
        mkdirSync(dirname(to), { recursive: true });
        copyFileSync(join(ROOT, f), to);
      }
    }
  }
  for (const r of instructions('runtime', 'RUN')) {
    const m = /chmod (\d+) (\S+)/.exec(r.args);
    if (m) chmodSync(target(m[2]), parseInt(m[1], 8));
  }
}

/** `docker run` in docs/deploy.md (the first one, with the local backend): its -p, -v, -e and image. */
function docsDockerRun(): { ports: string[]; volumes: string[]; env: Array<[string, string | undefined]>; image: string } {
  const block = codeBlocks(docs, 'sh').find((b) => b.includes('docker run') && b.includes('-e '));
  assert.ok(block, 'docs/deploy.md has a docker run example with -e');
  const words = block.replace(/\\\n/g, ' ').split('\n').find((l) => l.includes('docker run'))?.trim().split(/\s+/) ?? [];
  const out = { ports: [] as string[], volumes: [] as string[], env: [] as Array<[string, string | undefined]>, image: '' };
  for (let i = words.indexOf('run') + 1; i < words.length; i++) {
    const w = words[i];
    if (w === '-p') out.ports.push(words[++i]);
    else if (w === '-v') out.volumes.push(words[++i]);
    else if (w === '-e') {
      const [k, ...v] = words[++i].split('=');
      out.env.push([k, v.length > 0 ? v.join('=') : undefined]);
    } else if (w === '--name' || w === '--restart') i++;
    else if (!w.startsWith('-')) {
      out.image = w;
      break;
    }
  }
  return out;
}

interface Probe {
  httpGet: { path: string; port: string };
  timeoutSeconds: number;
}
interface K8sContainer {
  image: string;
  env: Array<{ name: string; value: string }>;
  ports: unknown;
  livenessProbe: Probe;
  readinessProbe: Probe;
  volumeMounts: Array<{ name: string; mountPath: string }>;
}
interface K8sPod {
  securityContext: { runAsNonRoot: boolean; runAsUser: number; runAsGroup: number };
  containers: K8sContainer[];
  volumes: Array<{ name: string; secret?: { secretName: string } }>;
}

/** The Kubernetes example in docs/deploy.md: the pod, its container, and the config.toml its Secret mounts at CACHEGATE_CONFIG. */
function docsKubernetes(): { pod: K8sPod; container: K8sContainer; configToml: string } {
  const block = codeBlocks(docs, 'yaml').find((b) => b.includes('kind: Deployment'));
  assert.ok(block, 'docs/deploy.md has a Kubernetes Deployment');
  const objects = parseAllDocuments(block).map((d) => d.toJS() as { kind: string; metadata: { name: string }; spec?: { template: { spec: K8sPod } }; stringData?: Record<string, string> });
  const pod = objects.find((o) => o.kind === 'Deployment')?.spec?.template.spec as K8sPod;
  const container = pod.containers[0];
  const configPath = container.env.find((e) => e.name === 'CACHEGATE_CONFIG')?.value ?? '';
  const mount = container.volumeMounts.find((m) => m.mountPath === posix.dirname(configPath));
  assert.ok(mount, 'CACHEGATE_CONFIG is inside a mounted volume');
  const secretName = pod.volumes.find((v) => v.name === mount.name)?.secret?.secretName;
  const secret = objects.find((o) => o.kind === 'Secret' && o.metadata.name === secretName);
  const configToml = secret?.stringData?.[posix.basename(configPath)];
  assert.ok(configToml, 'the mounted Secret holds the file CACHEGATE_CONFIG names');
  return { pod, container, configToml };
}

function codeBlocks(md: string, lang: string): string[] {
  return [...md.matchAll(new RegExp('```' + lang + '\\n([\\s\\S]*?)```', 'g'))].map((m) => m[1]);
}

describe('the image, reproduced from the COPY lines with production dependencies only', () => {
  let tree = '';
  let scan: Scan;
  /** Node in the tree: no NODE_PATH, HOME there, symlinks kept so packages resolve inside it. */
  const run = (args: string[]) => spawnSync(process.execPath, ['--preserve-symlinks', ...args], { cwd: tree, encoding: 'utf8', timeout: 60_000, env: { PATH: process.env.PATH ?? '', HOME: tree } });
  /** The Dockerfile's `ln -s` target for the `cachegate` command, inside the tree. */
  const cachegateBin = (): string => join(tree, pkg.bin.cachegate);

  before(() => {
    tree = mkdtempSync(join(tmpdir(), 'cachegate-image-'));
    for (let d = tree; d !== dirname(d); d = dirname(d)) {
      assert.ok(!existsSync(join(dirname(d), 'node_modules')), `no node_modules above ${tree} that modules could resolve from`);
    }
    layOutImage(tree);
    scan = scanImports(pkg.bin.cachegate);
  });
  after(() => rmSync(tree, { recursive: true, force: true }));

  test('.dockerignore keeps the context to what the COPY lines need', () => {
    for (const p of ['node_modules/zod/package.json', '.git/HEAD', 'test/unit/deploy.test.ts', 'docs/deploy.md', '.cachegate/.signing-key', 'bench/load.ts']) {
      assert.ok(ignored(p), `${p} is not sent to the builder`);
    }
    for (const f of scan.files) assert.ok(!ignored(f) && existsSync(join(tree, f)), `${f} (reached from bin) is in the image`);
    assert.ok(existsSync(join(tree, 'package.json')), 'package.json ("type": "module", the version)');
  });

  test('every package reached from bin/cachegate.js, lazy imports included, is a production dependency', () => {
    assert.deepEqual(scan.computed, []);
    assert.ok(scan.files.includes('adapters/s3/index.ts') && scan.files.length > 40, `the walk reaches the adapters (${scan.files.length} files)`);
    const packages = new Set([...scan.imports, ...scan.requires].filter((s) => !isBuiltin(s)).map(packageOf));
    assert.ok(packages.has('@aws-sdk/client-s3') && packages.has('zstd-napi'), 'lazy import() and createRequire are seen');
    for (const p of packages) assert.ok(p in pkg.dependencies, `${p} is in dependencies (npm ci --omit=dev installs it)`);
  });

  test('cachegate --version and the helper\'s CMD run there', () => {
    const v = run([cachegateBin(), '--version']);
    assert.equal(v.status, 0, v.stderr);
    assert.equal(v.stdout.trim(), `cachegate ${pkg.version}`);
    const [, ...helperArgs] = execForm(lastOf('helper', 'CMD')?.args ?? '[]');
    const h = run([cachegateBin(), ...helperArgs]);
    assert.equal(h.status, 0, h.stderr);
    assert.match(h.stdout, /cache-archiver/);
  });

  test('every module reached, every package they load and the native zstd binding load from the tree alone', () => {
    const files = scan.files.filter((f) => f !== pkg.bin.cachegate); // importing bin would run the CLI
    const probe = join(tree, 'probe.mjs');
    writeFileSync(
      probe,
      `import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
const { files, imports, requires } = JSON.parse(process.argv[2]);
const where = {};
for (const f of files) await import(new URL(f, import.meta.url));
for (const s of imports) { await import(s); where[s] = import.meta.resolve(s); }
for (const s of requires) { require(s); where[s] = require.resolve(s); }
process.stdout.write(JSON.stringify(where));
`,
    );
    const bare = (set: Set<string>): string[] => [...set].filter((s) => !isBuiltin(s));
    const r = run([probe, JSON.stringify({ files, imports: bare(scan.imports), requires: bare(scan.requires) })]);
    assert.equal(r.status, 0, r.stderr);
    const where = JSON.parse(r.stdout) as Record<string, string>;
    assert.ok('zstd-napi/binding' in where, 'the native binding is required');
    for (const [spec, at] of Object.entries(where)) {
      assert.ok(at.replace(/^file:\/\//, '').startsWith(tree), `${spec} resolved inside the tree (${at})`);
    }
  });

  test('the helper image zips with the native addon: the runtime stage\'s checks of both addons pass in the tree, and the archiver says so', () => {
    const checks = instructions('runtime', 'RUN').flatMap((r) => [...r.args.matchAll(/node --input-type=module -e "([^"]+)"/g)].map((m) => m[1]));
    assert.equal(checks.length, 2, 'the runtime stage checks both addons');
    for (const check of checks) {
      const c = run(['--input-type=module', '-e', check.replace('/app/', `${tree}/`)]);
      assert.equal(c.status, 0, c.stderr);
    }
    mkdirSync(join(tree, 'work/t'), { recursive: true });
    writeFileSync(join(tree, 'work/t/f'), 'x'.repeat(1000));
    const a = spawnSync(process.execPath, ['--preserve-symlinks', cachegateBin(), 'cache-archiver', '--file', join(tree, 'work/a.zip'), '--path', 't'], { cwd: join(tree, 'work'), encoding: 'utf8', timeout: 60_000, env: { PATH: process.env.PATH ?? '', HOME: tree } });
    assert.equal(a.status, 0, a.stderr);
    assert.match(a.stdout + a.stderr, /deflate: libdeflate [\d.]+ \(native addon\)/);
  });

  /**
   * Runs the service image's ENTRYPOINT + CMD in the tree with the image's ENV plus `env`, on the
   * same host as CACHEGATE_LISTEN but a free port; resolves once it listens.
   */
  async function startService(env: Record<string, string>): Promise<{ port: number; output: () => string; exited: Promise<number | null>; kill: (signal: NodeJS.Signals) => void }> {
    const entry = [...execForm(lastOf('service', 'ENTRYPOINT')?.args ?? '[]'), ...execForm(lastOf('service', 'CMD')?.args ?? '[]')];
    assert.equal(entry[0], 'cachegate');
    const listen = serviceEnv.CACHEGATE_LISTEN.replace(/:\d+$/, ':0');
    const child = spawn(process.execPath, ['--preserve-symlinks', cachegateBin(), ...entry.slice(1)], {
      cwd: tree,
      env: { PATH: process.env.PATH ?? '', HOME: tree, ...serviceEnv, ...env, CACHEGATE_LISTEN: listen },
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
    const port = await new Promise<number>((res, rej) => {
      const timer = setTimeout(() => rej(new Error(`no "listening" line: ${out}`)), 20_000);
      const look = (): void => {
        const m = /listening on http:\/\/0\.0\.0\.0:(\d+)/.exec(out);
        if (m) {
          clearTimeout(timer);
          child.stdout.off('data', look);
          res(Number(m[1]));
        }
      };
      child.stdout.on('data', look);
      void exited.then((code) => {
        clearTimeout(timer);
        rej(new Error(`serve exited with ${code}: ${out}`));
      });
    }).catch((err: unknown) => {
      child.kill('SIGKILL');
      throw err;
    });
    return { port, output: () => out, exited, kill: (signal) => child.kill(signal) };
  }

  /** The image's HEALTHCHECK command against a port: its exit status. */
  function healthcheck(port: number): number | null {
    const hc = lastOf('service', 'HEALTHCHECK')?.args ?? '';
    const [node, ...args] = execForm(hc.slice(hc.indexOf('CMD ') + 4));
    assert.equal(node, 'node');
    return spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 10_000, env: { PATH: process.env.PATH ?? '', CACHEGATE_LISTEN: `0.0.0.0:${port}` } }).status;
  }

  test('serve with the docs\' docker run settings: HEALTHCHECK passes, a presign works, SIGTERM exits 0', async () => {
    const example = docsDockerRun();
    const token = `glrt-deploytest${Date.now()}`;
    const env: Record<string, string> = {};
    for (const [k, v] of example.env) env[k] = v ?? (k === 'CACHEGATE_RUNNER_TOKEN' ? token : assert.fail(`-e ${k} without a value`));
    assert.ok(!example.env.some(([k, v]) => SECRET_NAME.test(k) && v !== undefined), 'the example takes secrets from the environment, not the command line');
    const dataDir = join(tree, 'volume'); // the volume at serviceEnv.CACHEGATE_DATA_DIR
    const svc = await startService({ ...env, CACHEGATE_DATA_DIR: dataDir });
    try {
      assert.match(svc.output().split('\n')[0], /^\{"level":"info"/, 'CACHEGATE_LOG_FORMAT=json from the example');
      assert.equal(healthcheck(svc.port), 0, 'HEALTHCHECK passes against the running service');
      const res = await fetch(`http://127.0.0.1:${svc.port}/v1/presign`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ operation: 'upload', key: 'deploy/main', projectId: '42' }),
      });
      const answer = (await res.json()) as { url: string };
      assert.equal(res.status, 200, JSON.stringify(answer));
      assert.ok(answer.url.startsWith(`${env.CACHEGATE_PUBLIC_URL}/`), `local-backend URLs use CACHEGATE_PUBLIC_URL: ${answer.url}`);
      assert.ok(existsSync(join(dataDir, '.signing-key')), 'the signing key lives in the data directory (the volume)');

      svc.kill('SIGTERM');
      assert.equal(await svc.exited, 0, svc.output());
      assert.match(svc.output(), /SIGTERM: shutting down/);
      assert.equal(healthcheck(svc.port), 1, 'HEALTHCHECK fails once the service is gone');
    } finally {
      svc.kill('SIGKILL');
    }
  });

  test('serve with the Kubernetes example\'s configuration starts without writing to disk (readOnlyRootFilesystem)', async () => {
    const { configToml } = docsKubernetes();
    const dir = join(tree, 'k8s');
    mkdirSync(dir);
    writeFileSync(join(dir, 'config.toml'), configToml);
    const dataDir = join(dir, 'not-mounted'); // serviceEnv.CACHEGATE_DATA_DIR, not a volume in Kubernetes
    const svc = await startService({ CACHEGATE_CONFIG: join(dir, 'config.toml'), CACHEGATE_DATA_DIR: dataDir });
    try {
      assert.equal(healthcheck(svc.port), 0);
      assert.deepEqual(readdirSync(dir), ['config.toml']);
    } finally {
      svc.kill('SIGKILL');
    }
  });
});

// ---------------------------------------------------------------------------------------------
// .gitlab-ci.yml

interface Job {
  stage?: string;
  extends?: string;
  image?: string | { name: string; entrypoint?: string[] };
  variables?: Record<string, string>;
  before_script?: string[];
  script?: string[];
}
const ci = parseYaml(read('.gitlab-ci.yml')) as Record<string, unknown> & { stages: string[]; variables?: Record<string, string> };
const KEYWORDS = new Set(['stages', 'variables', 'default', 'workflow', 'include', 'image', 'services', 'before_script', 'after_script', 'cache']);
/** A job with its `extends` template merged in (one level, as this file uses). */
function job(name: string): Job {
  const j = ci[name] as Job;
  const base = j.extends ? (ci[j.extends] as Job) : {};
  return { ...base, ...j, variables: { ...base.variables, ...j.variables } };
}
const jobNames = Object.keys(ci).filter((k) => !KEYWORDS.has(k) && !k.startsWith('.'));
const buildJobs = jobNames.filter((n) => job(n).stage === 'build');
const imageName = (j: Job): string => (typeof j.image === 'string' ? j.image : (j.image?.name ?? ''));
/** GitLab's predefined variables this pipeline may use (docs.gitlab.com/ci/variables/predefined_variables). */
const PREDEFINED = new Set(['CI_REGISTRY', 'CI_REGISTRY_USER', 'CI_REGISTRY_PASSWORD', 'CI_REGISTRY_IMAGE', 'CI_PROJECT_DIR', 'CI_COMMIT_SHORT_SHA', 'CI_COMMIT_SHA', 'CI_COMMIT_TAG', 'CI_COMMIT_BRANCH', 'CI_DEFAULT_BRANCH', 'CI_COMMIT_REF_SLUG', 'CI_PIPELINE_SOURCE']);

/** Runs a build job's script with sh, kaniko's paths moved into a temp dir and the executor a stub that records its arguments. */
function runKanikoJob(name: string, ciEnv: Record<string, string>): { config: unknown; executorArgs: string[] } {
  const dir = mkdtempSync(join(tmpdir(), 'cachegate-kaniko-'));
  try {
    mkdirSync(join(dir, 'kaniko'));
    writeFileSync(join(dir, 'kaniko/executor'), `#!/bin/sh\nprintf '%s\\n' "$@" > "${dir}/args"\n`, { mode: 0o755 });
    const j = job(name);
    const env: Record<string, string> = { PATH: process.env.PATH ?? '', ...ciEnv };
    for (const [k, v] of Object.entries({ ...ci.variables, ...j.variables })) env[k] = String(v).replace(/\$\{?(\w+)\}?/g, (_, n: string) => env[n] ?? '');
    const script = ['set -e', ...(j.before_script ?? []), ...(j.script ?? [])].join('\n').replaceAll('/kaniko/', `${dir}/kaniko/`);
    const r = spawnSync('sh', ['-c', script], { encoding: 'utf8', env });
    assert.equal(r.status, 0, r.stderr);
    return { config: JSON.parse(readFileSync(join(dir, 'kaniko/.docker/config.json'), 'utf8')), executorArgs: readFileSync(join(dir, 'args'), 'utf8').trim().split('\n') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
const flagValues = (args: string[], flag: string): string[] => args.flatMap((a, i) => (a === flag ? [args[i + 1]] : []));

describe('.gitlab-ci.yml', () => {
  const CI_ENV = {
    CI_REGISTRY: 'registry.example.com',
    CI_REGISTRY_USER: 'gitlab-ci-token',
    CI_REGISTRY_PASSWORD: `job-password-${Date.now()}`,
    CI_REGISTRY_IMAGE: DOCS_REGISTRY_IMAGE,
    CI_PROJECT_DIR: '/builds/ops/cachegate',
    CI_COMMIT_SHORT_SHA: '1a2b3c4d',
    CI_DEFAULT_BRANCH: 'main',
  };

  test('tests first, then one kaniko job per Dockerfile target, to different images', () => {
    assert.deepEqual(ci.stages, ['test', 'build']);
    const test = job('test');
    assert.equal(test.stage, 'test');
    assert.ok(test.script?.includes('bash .ci/run') && existsSync(join(ROOT, '.ci/run')));
    assert.equal(imageName(test), `node:${nodeVersionLocked}-bookworm`, 'Debian (apt-get for the test servers) with the pinned Node');
    const targets = buildJobs.map((n) => job(n).variables?.TARGET);
    assert.deepEqual([...targets].sort(), ['helper', 'service']);
    const images = buildJobs.map((n) => job(n).variables?.IMAGE);
    assert.equal(new Set(images).size, 2, 'each target has its own image');
    for (const n of buildJobs) assert.equal(job(n).variables?.IMAGE, `\${CI_REGISTRY_IMAGE}/${job(n).variables?.TARGET}`);
  });

  test('kaniko: a pinned debug image with its entrypoint overridden, unprivileged', () => {
    for (const n of buildJobs) {
      const j = job(n);
      assert.match(imageName(j), /^gcr\.io\/kaniko-project\/executor:v\d+\.\d+\.\d+-debug$/, 'pinned, with the busybox shell GitLab needs');
      assert.deepEqual(typeof j.image === 'object' ? j.image.entrypoint : undefined, ['']);
      assert.ok(!JSON.stringify(j).includes('privileged') && !JSON.stringify(j).includes('docker:dind'));
    }
  });

  test('the script writes the registry auth to /kaniko/.docker/config.json and passes context, Dockerfile, target and tags', () => {
    for (const n of buildJobs) {
      const { TARGET, IMAGE } = job(n).variables as Record<string, string>;
      const image = IMAGE.replace('${CI_REGISTRY_IMAGE}', CI_ENV.CI_REGISTRY_IMAGE);
      const scenarios: Array<[Record<string, string>, string[]]> = [
        [{ CI_COMMIT_BRANCH: 'main' }, ['1a2b3c4d', 'latest']],
        [{ CI_COMMIT_BRANCH: 'feature' }, ['1a2b3c4d']],
        [{ CI_COMMIT_TAG: 'v1.2.0' }, ['1a2b3c4d', 'v1.2.0']],
      ];
      for (const [extra, tags] of scenarios) {
        const { config, executorArgs } = runKanikoJob(n, { ...CI_ENV, ...extra });
        const auth = Buffer.from(String((config as { auths: Record<string, { auth: string }> }).auths[CI_ENV.CI_REGISTRY]?.auth), 'base64').toString();
        assert.equal(auth, `${CI_ENV.CI_REGISTRY_USER}:${CI_ENV.CI_REGISTRY_PASSWORD}`, 'auth = base64(user:password)');
        assert.deepEqual(Object.keys((config as { auths: object }).auths), [CI_ENV.CI_REGISTRY]);
        assert.deepEqual(flagValues(executorArgs, '--context'), [CI_ENV.CI_PROJECT_DIR]);
        assert.deepEqual(flagValues(executorArgs, '--dockerfile'), [`${CI_ENV.CI_PROJECT_DIR}/Dockerfile`]);
        assert.deepEqual(flagValues(executorArgs, '--target'), [TARGET]);
        assert.deepEqual(flagValues(executorArgs, '--destination'), tags.map((t) => `${image}:${t}`), JSON.stringify(extra));
        assert.ok(!executorArgs.join(' ').includes(CI_ENV.CI_REGISTRY_PASSWORD), 'the password is not on the command line');
      }
      assert.ok(dockerfile.stages.some((s) => s.name === TARGET));
    }
  });

  test('uses only GitLab\'s predefined variables and its own; no credential literal', () => {
    const text = read('.gitlab-ci.yml');
    const declared = new Set([...Object.keys(ci.variables ?? {}), ...jobNames.flatMap((n) => Object.keys(job(n).variables ?? {}))]);
    for (const n of jobNames) {
      for (const line of [...(job(n).before_script ?? []), ...(job(n).script ?? [])]) {
        for (const m of line.matchAll(/(?:^|[;&|]\s*|\bthen\s+|\bdo\s+)([A-Za-z_]\w*)=/g)) declared.add(m[1]);
      }
    }
    const used = new Set([...stripYamlComments(text).matchAll(/\$\{?([A-Za-z_]\w*)/g)].map((m) => m[1]));
    assert.ok(used.has('CI_REGISTRY_PASSWORD'));
    for (const v of used) assert.ok(PREDEFINED.has(v) || declared.has(v), `$${v} is predefined by GitLab or set in the file`);
    assert.doesNotMatch(text, SECRET_VALUE);
    assert.doesNotMatch(text, /(password|secret|token)\s*:\s*["']?[^$\s"'][^\s"']*/i, 'no secret value in variables');
  });
});

function stripYamlComments(text: string): string {
  return text
    .split('\n')
    .filter((l) => !/^\s*#/.test(l))
    .join('\n');
}

// ---------------------------------------------------------------------------------------------
// docs/deploy.md

describe('docs/deploy.md agrees with the Dockerfile and the pipeline', () => {
  const serviceImage = `${DOCS_REGISTRY_IMAGE}/service`;
  const helperImage = `${DOCS_REGISTRY_IMAGE}/helper`;
  const [uid, gid] = userOf('service').split(':').map(Number);

  test('targets, image names, port, volume, user, base images, kaniko and test images', () => {
    for (const n of buildJobs) {
      const { TARGET, IMAGE } = job(n).variables as Record<string, string>;
      assert.ok(docs.includes(`--target ${TARGET}`), `docker build --target ${TARGET}`);
      assert.ok(docs.includes(IMAGE.replace('${CI_REGISTRY_IMAGE}', '$CI_REGISTRY_IMAGE')), IMAGE);
      assert.ok(docs.includes(`\`${IMAGE.replace('${CI_REGISTRY_IMAGE}', DOCS_REGISTRY_IMAGE)}\``), 'the image table');
      assert.ok(docs.includes(imageName(job(n))), 'the kaniko image');
    }
    assert.ok(docs.includes(imageName(job('test'))));
    assert.ok(docs.includes(`0.0.0.0:${exposed[0]}`) && docs.includes(`\`${volumes[0]}\``));
    assert.ok(docs.includes(`\`${userOf('service')}\``) && userOf('helper') === userOf('service'));
    assert.ok(docs.includes(expandArgs(stage('deps').from)) && docs.includes(expandArgs(stage('runtime').from)));
    for (const phrase of ['/kaniko/.docker/config.json', 'entrypoint: [""]', 'CI_REGISTRY_USER', 'CI_REGISTRY_PASSWORD', '--omit=dev', 'SIGTERM: shutting down']) {
      assert.ok(docs.includes(phrase), phrase);
    }
  });

  test('the docker run example: the EXPOSEd port, the VOLUME, the service image', () => {
    const example = docsDockerRun();
    assert.ok(example.ports.some((p) => p.endsWith(`:${exposed[0]}`)), example.ports.join());
    assert.ok(example.volumes.some((v) => v.split(':')[1] === volumes[0]), example.volumes.join());
    assert.equal(example.image.split(':')[0], serviceImage);
  });

  test('the Kubernetes example: image, port, probes, user, configuration path; its config.toml loads', () => {
    const { pod, container, configToml } = docsKubernetes();
    assert.equal(container.image.split(':')[0], serviceImage);
    assert.deepEqual(container.ports, [{ name: 'http', containerPort: exposed[0] }]);
    assert.deepEqual([container.livenessProbe.httpGet.path, container.livenessProbe.httpGet.port], ['/healthz', 'http']);
    assert.deepEqual([container.readinessProbe.httpGet.path, container.readinessProbe.httpGet.port], ['/readyz', 'http']);
    assert.ok(container.readinessProbe.timeoutSeconds > 5, '/readyz may take up to 5 s');
    assert.deepEqual([pod.securityContext.runAsNonRoot, pod.securityContext.runAsUser, pod.securityContext.runAsGroup], [true, uid, gid]);
    const config = parseConfigText(configToml, 'docs/deploy.md', {});
    assert.deepEqual(config.findings.filter((f) => f.level === 'error'), []);
    assert.ok(config.profiles.length > 0 && config.profiles.every((p) => p.cache.type !== 'local'), 'replicas use a cloud backend');
  });

  test('the helper job example uses the helper image', () => {
    const block = codeBlocks(docs, 'yaml').find((b) => b.includes('cachegate cache-archiver'));
    assert.ok(block);
    const jobs = parseYaml(block) as Record<string, Job>;
    assert.equal(imageName(Object.values(jobs)[0]).split(':')[0], helperImage);
  });

  test('ECR: DOCKER_AUTH_CONFIG with ecr-login, in the runner\'s config.toml, the helper binary and the IAM actions', () => {
    const line = docs.split('\n').map((l) => l.trim()).find((l) => l.startsWith('DOCKER_AUTH_CONFIG='));
    assert.equal(line, 'DOCKER_AUTH_CONFIG={"credsStore":"ecr-login"}');
    assert.deepEqual(JSON.parse(line.slice('DOCKER_AUTH_CONFIG='.length)), { credsStore: 'ecr-login' });
    const runnerToml = parseToml(codeBlocks(docs, 'toml').find((b) => b.includes('DOCKER_AUTH_CONFIG')) ?? '') as { runners: Array<{ environment: string[] }> };
    const envEntry = runnerToml.runners[0].environment.find((e) => e.startsWith('DOCKER_AUTH_CONFIG='));
    assert.deepEqual(JSON.parse(envEntry?.slice('DOCKER_AUTH_CONFIG='.length) ?? ''), { credsStore: 'ecr-login' });
    const perRegistry = /`DOCKER_AUTH_CONFIG=(\{"credHelpers".*?\})`/.exec(docs);
    assert.ok(perRegistry, 'the credHelpers variant');
    assert.deepEqual(Object.values(JSON.parse(perRegistry[1]).credHelpers), ['ecr-login']);
    for (const phrase of ['docker-credential-ecr-login', 'ecr:GetAuthorizationToken', 'ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer', 'PATH']) {
      assert.ok(docs.includes(phrase), phrase);
    }
  });
});
