/** `cachegate presign`: one presign from a configuration, printed as the same JSON as POST /v1/presign. */
import { randomBytes } from 'node:crypto';
import { formatFindings } from '../config/check.ts';
import { hasErrors, loadConfig } from '../config/load.ts';
import { CacheGateError } from '../errors.ts';
import { silentLogger } from '../log.ts';
import { parsePresignRequest, presign } from '../service/presign.ts';
import { ServiceState, type Principal } from '../service/state.ts';
import { configOptions, loadOptions, parse } from './args.ts';

const options = {
  ...configOptions,
  runner: { type: 'string' },
  token: { type: 'string' },
  operation: { type: 'string' },
  key: { type: 'string' },
  project: { type: 'string' },
  'hash-keys': { type: 'boolean' },
  timeout: { type: 'string' },
  'content-length': { type: 'string' },
  'fallback-key': { type: 'string', multiple: true },
  'cache-fallback-key': { type: 'string' },
} as const;

/** The request field → the flag that sets it, so errors name what the user typed. */
const FLAG_OF: Record<string, string> = {
  operation: '--operation', key: '--key', projectId: '--project', hashKeys: '--hash-keys', timeoutSeconds: '--timeout',
  contentLength: '--content-length', fallbackKeys: '--fallback-key', fallbackKey: '--cache-fallback-key',
};

function withFlagNames<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (!(err instanceof CacheGateError)) throw err;
    const m = /^([A-Za-z]+)(\.\d+)?: (.*)$/s.exec(err.message);
    if (!m || FLAG_OF[m[1]] === undefined) throw err;
    throw new CacheGateError(err.code, err.status, `${FLAG_OF[m[1]]}: ${m[3]}`);
  }
}

export async function main(argv: string[]): Promise<number> {
  const { values } = parse(argv, options);
  if (values.help) {
    process.stdout.write(
      'cachegate presign --config FILE (--runner NAME | --token TOKEN) --operation download|upload|head --key KEY --project ID\n' +
        '  [--hash-keys] [--timeout SECONDS] [--content-length BYTES] [--fallback-key KEY]... [--cache-fallback-key KEY] [--listen HOST:PORT] [--data-dir DIR]\n' +
        'Prints the same JSON as POST /v1/presign.\n',
    );
    return 0;
  }
  const config = loadConfig(loadOptions(values));
  if (hasErrors(config)) {
    for (const line of formatFindings(config)) process.stderr.write(line + '\n');
    return 1;
  }
  const num = (v: string | undefined, name: string): number | undefined => {
    if (v === undefined) return undefined;
    if (!/^[0-9]+$/.test(v)) throw new CacheGateError('invalid_request', 400, `--${name}: not a number`);
    return Number(v);
  };
  const req = withFlagNames(() => parsePresignRequest({
    operation: values.operation,
    key: values.key,
    projectId: values.project,
    hashKeys: values['hash-keys'],
    timeoutSeconds: num(values.timeout, 'timeout'),
    contentLength: num(values['content-length'], 'content-length'),
    fallbackKeys: values['fallback-key'],
    fallbackKey: values['cache-fallback-key'],
  }));
  const publicUrl = config.service.publicUrl || `http://${config.service.listen}`;
  const signingKey = config.service.localSigningKey !== '' ? Buffer.from(config.service.localSigningKey, 'utf8') : undefined;
  const state = await ServiceState.build(config, { log: silentLogger(), publicUrl: () => publicUrl, signingKey: signingKey ?? randomBytes(32) });
  let principal: Principal | undefined;
  if (values.token !== undefined) principal = state.authenticate(values.token);
  else if (values.runner !== undefined) {
    const found = state.runner(values.runner);
    if (!found.ok && found.reason === 'ambiguous') throw new CacheGateError('invalid_request', 400, `--runner: ${found.message}; use --token`);
    if (found.ok) principal = { profile: found.profile, readOnly: false, label: `runner:${values.runner}`, id: 'cli' };
  } else principal = state.anonymous ?? (config.profiles.length === 1 ? { profile: config.profiles[0], readOnly: false, label: 'cli', id: 'cli' } : undefined);
  if (!principal) throw new CacheGateError('unauthorized', 401, 'no such runner or token (give --runner NAME or --token TOKEN)');
  if (principal.profile.cache.type === 'local' && signingKey === undefined) {
    process.stderr.write('warning: local backend without [cachegate] local_signing_key: the URL is signed with a one-off key and a running service will refuse it\n');
  }
  const answer = await presign(req, {
    principal,
    adapter: state.adapterFor(principal.profile),
    defaultLifetime: config.service.defaultUrlLifetime,
    maxLifetime: config.service.maxUrlLifetime,
  });
  process.stdout.write(JSON.stringify(answer, null, 2) + '\n');
  return 0;
}
