/** What the bench scripts share: running a command that must succeed, and reading numeric settings. */
import { spawnSync } from 'node:child_process';

/** spawnSync that throws, with the command's stderr, unless the command exits 0. */
export function run(command, args, options = {}) {
  const result = spawnSync(command, args, {
    stdio: ['ignore', 'ignore', 'pipe'],
    encoding: 'utf8',
    ...options,
  });
  if (result.error) throw new Error(`${command}: ${result.error.message}`);
  if (result.status !== 0) {
    const how = result.signal ? `signal ${result.signal}` : `exit code ${result.status}`;
    const stderr = result.stderr ? `: ${result.stderr.trim()}` : '';
    throw new Error(`${[command, ...args].join(' ')} failed with ${how}${stderr}`);
  }
  return result;
}

/** The positive integer in environment variable `name`, or `fallback`; exits 2 with one line otherwise. */
export function positiveInteger(name, fallback, who) {
  const value = process.env[name];
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) {
    console.error(`${who}: ${name} must be a positive integer, not "${value}"`);
    process.exit(2);
  }
  return n;
}
