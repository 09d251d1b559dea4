import { CgroupError } from './errors.js';

// v1 shows "unlimited" as the largest page-aligned 64-bit value; anything this big is no limit.
const UNLIMITED_FROM = 2n ** 62n;

function bad(path: string, text: string, what: string): CgroupError {
  return new CgroupError(
    'ECGROUPIO',
    `unexpected content in ${path}: ${JSON.stringify(text)} (expected ${what})`,
    {
      path,
    },
  );
}

/** A counter from a cgroup file. `path` is for the error message. */
export function parseCounter(text: string, path: string): number {
  if (!/^\d+$/.test(text.trim())) throw bad(path, text, 'a number');
  return Number(text.trim());
}

/** A limit from a cgroup file: `max` (v2) or a huge value (v1) is null, meaning unlimited. */
export function parseLimit(text: string, path: string): number | null {
  const trimmed = text.trim();
  if (trimmed === 'max' || trimmed === '-1') return null;
  if (!/^\d+$/.test(trimmed)) throw bad(path, text, 'a number or "max"');
  return BigInt(trimmed) >= UNLIMITED_FROM ? null : Number(trimmed);
}

/** A flat keyed file (`oom_kill 0\nunder_oom 1`) as a map of numbers. */
export function parseKeyedCounters(text: string): Map<string, number> {
  const result = new Map<string, number>();
  for (const line of text.split('\n')) {
    const [key, value] = line.trim().split(/\s+/);
    if (key && value !== undefined && /^\d+$/.test(value)) result.set(key, Number(value));
  }
  return result;
}

/** `cgroup.procs` content as PIDs. */
export function parsePids(text: string): number[] {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => /^\d+$/.test(line))
    .map(Number);
}

/** A limit for a v2 file: -1 becomes `max`. */
export function v2Limit(value: number): string {
  return value === -1 ? 'max' : String(value);
}
