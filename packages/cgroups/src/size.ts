import { CgroupError } from './errors.js';

const UNITS: Record<string, number> = {
  k: 1024,
  m: 1024 ** 2,
  g: 1024 ** 3,
  t: 1024 ** 4,
  p: 1024 ** 5,
};

// A number, an optional space, then nothing, `b`, or a unit letter with an optional `b`/`ib`.
const SIZE = /^(\d+(?:\.\d*)?|\.\d+) ?(?:(b)|([kmgtp])(b|ib)?)?$/i;

function invalid(message: string): CgroupError {
  return new CgroupError('ECGROUPVALUE', message);
}

/**
 * Bytes in a human size, like docker's `RAMInBytes`: `123`, `512k`, `64m`, `64mb`, `1.5g`, `1GiB`
 * (binary units, case-insensitive; fractions are truncated to whole bytes).
 */
export function parseSize(text: string): number {
  const match = SIZE.exec(text.trim());
  if (!match) {
    throw invalid(
      `invalid size ${JSON.stringify(text)}: expected a number with an optional b, k, m, g, t or p`,
    );
  }
  const unit = match[3]?.toLowerCase();
  const bytes = Math.trunc(Number(match[1]) * (unit ? UNITS[unit]! : 1));
  if (!Number.isSafeInteger(bytes)) throw invalid(`size ${JSON.stringify(text)} is too large`);
  return bytes;
}

/** Microseconds per period that docker uses for `--cpus`. */
export const DEFAULT_CPU_PERIOD = 100_000;

/**
 * A CFS quota for a number of CPUs, as docker turns `--cpus` into NanoCPUs and then into
 * `cpu.cfs_quota_us`: `parseCpus('0.5')` is `{ quota: 50000, period: 100000 }`.
 * `available` (the number of CPUs) is the upper bound when given.
 */
export function parseCpus(value: string | number, available?: number): { quota: number; period: number } {
  const text = String(value).trim();
  const match = /^(\d*)(?:\.(\d*))?$/.exec(text);
  if (!match || text === '' || text === '.') {
    throw invalid(`invalid number of CPUs ${JSON.stringify(String(value))}`);
  }
  const fraction = match[2] ?? '';
  if (fraction.replace(/0+$/, '').length > 9) {
    throw invalid(`number of CPUs ${JSON.stringify(text)} is too precise (at most 9 decimals)`);
  }
  const nanoCpus = BigInt(match[1] || '0') * 1_000_000_000n + BigInt(fraction.padEnd(9, '0').slice(0, 9));
  if (nanoCpus <= 0n) throw invalid(`number of CPUs must be above 0, got ${JSON.stringify(text)}`);
  const quota = (nanoCpus * BigInt(DEFAULT_CPU_PERIOD)) / 1_000_000_000n;
  // The kernel refuses a CFS quota under 1 ms; docker likewise requires at least 0.01 CPUs.
  if (quota < 1000n) throw invalid(`number of CPUs must be at least 0.01, got ${JSON.stringify(text)}`);
  if (available !== undefined && nanoCpus > BigInt(available) * 1_000_000_000n) {
    throw invalid(`${text} CPUs asked for, but only ${available} are available`);
  }
  return { quota: Number(quota), period: DEFAULT_CPU_PERIOD };
}

/** The numbers in a kernel list such as `0-2,4` (as in `cpuset.cpus`). An empty list is `[]`. */
export function parseCpuList(text: string): number[] {
  const trimmed = text.trim();
  if (trimmed === '') return [];
  const result = new Set<number>();
  for (const item of trimmed.split(',')) {
    const match = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(item);
    if (!match) throw invalid(`invalid CPU list ${JSON.stringify(text)}: bad item ${JSON.stringify(item)}`);
    const first = Number(match[1]);
    const last = match[2] === undefined ? first : Number(match[2]);
    if (last < first)
      throw invalid(`invalid CPU list ${JSON.stringify(text)}: range ${first}-${last} runs backwards`);
    if (last - first > 65_536) throw invalid(`invalid CPU list ${JSON.stringify(text)}: range too large`);
    for (let n = first; n <= last; n++) result.add(n);
  }
  return [...result].sort((a, b) => a - b);
}

/** Writes numbers back in list format: `[0, 1, 2, 4]` → `0-2,4`. */
export function formatCpuList(numbers: readonly number[]): string {
  const sorted = [...new Set(numbers)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    parts.push(i === j ? `${sorted[i]}` : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}

/**
 * Checks a CPU (or memory node) list such as `0-2,4` against the ones available (a list in the
 * same format, or the numbers), and returns it in canonical form. An empty list is an error.
 */
export function parseCpuset(text: string, available: string | readonly number[]): string {
  const wanted = parseCpuList(text);
  if (wanted.length === 0) throw invalid('empty CPU list: at least one CPU is needed');
  const have = new Set(typeof available === 'string' ? parseCpuList(available) : available);
  const missing = wanted.filter((n) => !have.has(n));
  if (missing.length > 0) {
    throw invalid(
      `CPU list ${JSON.stringify(text)} names ${formatCpuList(missing)}, which ` +
        `${missing.length === 1 ? 'is' : 'are'} not available (available: ${formatCpuList([...have]) || 'none'})`,
    );
  }
  return formatCpuList(wanted);
}
