/**
 * A secret given in the file (`<name> = "…"`) or through the environment (`<name>_env = "VAR"`, which
 * wins): API tokens, the admin token, the S3 front door's secret keys. A named variable that is unset
 * or empty is an error; so is neither form when the secret is required.
 */
import type { Finding } from './types.ts';

export interface SecretSetting {
  /** The table's field path, e.g. `cachegate.api_tokens[0]`. */
  field: string;
  /** The key's name, e.g. `token`; its variable form is `<name>_env`. */
  name: string;
  literal: string | undefined;
  envVar: string | undefined;
  env: Record<string, string | undefined>;
  required: boolean;
  /** Warn when shorter than this (tokens that are guessed, not keys that sign). */
  warnBelow?: number;
}

/** The secret's value ('' when none); problems are added to `findings`. */
export function secretSetting(s: SecretSetting, findings: Finding[]): string {
  let value = s.literal ?? '';
  if (s.envVar !== undefined) {
    value = s.env[s.envVar] ?? '';
    if (value === '') findings.push({ level: 'error', field: `${s.field}.${s.name}_env`, message: `environment variable ${s.envVar} is not set` });
  } else if (value === '' && s.required) {
    findings.push({ level: 'error', field: `${s.field}.${s.name}`, message: `${s.name} or ${s.name}_env is required` });
  }
  if (s.warnBelow !== undefined && value !== '' && value.length < s.warnBelow) {
    findings.push({ level: 'warning', field: `${s.field}.${s.name}`, message: `shorter than ${s.warnBelow} characters: easy to guess` });
  }
  return value;
}
