/** Runs the `cachegate` command as a user does: a real process. */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';

export const BIN = resolve(import.meta.dirname, '../../bin/cachegate.js');

/** Async on purpose: a service under test in this process would deadlock a blocking spawn. */
export function cachegate(args: string[], cwd: string, env: Record<string, string> = {}): Promise<{ status: number | null; out: string }> {
  return new Promise((res) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env } });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('close', (status) => {
      clearTimeout(timer);
      res({ status, out });
    });
  });
}
