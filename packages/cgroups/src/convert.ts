import { CgroupError } from './errors.js';

/** v1 `cpu.shares` → v2 `cpu.weight`, with runc's formula (2..262144 → 1..10000; 0 stays unset). */
export function sharesToWeight(shares: number): number {
  if (shares === 0) return 0;
  return 1 + Math.floor(((shares - 2) * 9999) / 262142);
}

/** v1 `blkio.weight` → v2 `io.weight`, with runc's formula (10..1000 → 1..10000). */
export function blkioWeightToIoWeight(weight: number): number {
  if (weight === 0) return 0;
  return 1 + Math.floor(((weight - 10) * 9999) / 990);
}

/**
 * The v2 `memory.swap.max` for an OCI/docker memory+swap total, as runc computes it: swap alone is
 * the total minus the memory limit. -1 means `max`; undefined means leave it alone.
 */
export function memorySwapToV2(
  swap: number | undefined,
  limit: number | undefined,
): number | 'max' | undefined {
  if (swap === undefined) return limit === -1 ? 'max' : undefined; // unlimited memory: unlimited swap too
  if (swap === -1) return 'max';
  if (limit === undefined || limit === -1) {
    throw new CgroupError(
      'ECGROUPVALUE',
      'a swap limit (memory.swap) needs a memory limit (memory.limit) too',
      {
        controller: 'memory',
      },
    );
  }
  if (swap < limit) {
    throw new CgroupError(
      'ECGROUPVALUE',
      `memory.swap (${swap}) is memory plus swap and must be >= memory.limit (${limit})`,
      {
        controller: 'memory',
      },
    );
  }
  return swap - limit;
}
