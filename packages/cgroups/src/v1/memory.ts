import { join } from 'node:path';
import { CgroupError } from '../errors.js';
import { type CgroupFs, hasCgroupFile, readCgroupFile, writeCgroupFile } from '../fs.js';
import type { CgroupStats, Resources } from '../manager.js';
import { parseCounter, parseKeyedCounters, parseLimit } from '../values.js';

export const controller = 'memory';

const LIMIT = 'memory.limit_in_bytes';
const SOFT_LIMIT = 'memory.soft_limit_in_bytes';
const SWAP_LIMIT = 'memory.memsw.limit_in_bytes';

export function isRequested(resources: Resources): boolean {
  return resources.memory !== undefined;
}

/**
 * memory.limit_in_bytes, memory.soft_limit_in_bytes and memory.memsw.limit_in_bytes. The kernel
 * wants limit <= memsw at every moment, so the order of the two writes depends on the change (runc).
 */
export async function apply(dir: string, resources: Resources, fs: CgroupFs): Promise<void> {
  const memory = resources.memory;
  if (!memory) return;
  const hasSwapFile = await hasCgroupFile(fs, dir, SWAP_LIMIT);
  if (memory.swap !== undefined && !hasSwapFile) {
    throw new CgroupError(
      'ECGROUPUNSUPPORTED',
      `a swap limit was asked for, but ${join(dir, SWAP_LIMIT)} does not exist (swap accounting is off; boot with swapaccount=1)`,
      { path: join(dir, SWAP_LIMIT), controller },
    );
  }
  const { limit } = memory;
  // Unlimited memory without a swap value means unlimited memory+swap as well (runc).
  const swap = memory.swap ?? (limit === -1 && hasSwapFile ? -1 : undefined);

  if (memory.reservation !== undefined) await writeCgroupFile(fs, dir, SOFT_LIMIT, memory.reservation);

  if (limit !== undefined && swap !== undefined) {
    const current = parseLimit(await readCgroupFile(fs, dir, LIMIT), join(dir, LIMIT));
    const growing = swap === -1 || (current !== null && current < swap);
    if (growing) {
      await writeCgroupFile(fs, dir, SWAP_LIMIT, swap);
      await writeCgroupFile(fs, dir, LIMIT, limit);
      return;
    }
  }
  if (limit !== undefined) await writeCgroupFile(fs, dir, LIMIT, limit);
  if (swap !== undefined) await writeCgroupFile(fs, dir, SWAP_LIMIT, swap);
}

export async function stats(dir: string, fs: CgroupFs): Promise<NonNullable<CgroupStats['memory']>> {
  return {
    usage: parseCounter(
      await readCgroupFile(fs, dir, 'memory.usage_in_bytes'),
      join(dir, 'memory.usage_in_bytes'),
    ),
    peak: parseCounter(
      await readCgroupFile(fs, dir, 'memory.max_usage_in_bytes'),
      join(dir, 'memory.max_usage_in_bytes'),
    ),
    limit: parseLimit(await readCgroupFile(fs, dir, LIMIT), join(dir, LIMIT)),
  };
}

/** `oom_kill` counts kills (Linux 4.13+); `under_oom` is 1 while the cgroup is stuck at its limit. */
export async function oomKilled(dir: string, fs: CgroupFs): Promise<boolean> {
  const counters = parseKeyedCounters(await readCgroupFile(fs, dir, 'memory.oom_control'));
  return (counters.get('oom_kill') ?? 0) > 0 || counters.get('under_oom') === 1;
}
