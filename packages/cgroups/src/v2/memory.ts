import { join } from 'node:path';
import { memorySwapToV2 } from '../convert.js';
import { CgroupError } from '../errors.js';
import { type CgroupFs, hasCgroupFile, readCgroupFile, writeCgroupFile } from '../fs.js';
import type { CgroupStats, Resources } from '../manager.js';
import { parseCounter, parseKeyedCounters, parseLimit, v2Limit } from '../values.js';

export const controller = 'memory';

export function isRequested(resources: Resources): boolean {
  return resources.memory !== undefined;
}

/** memory.max, memory.low and memory.swap.max (swap alone = memory+swap minus memory, as runc). */
export async function apply(dir: string, resources: Resources, fs: CgroupFs): Promise<void> {
  const memory = resources.memory;
  if (!memory) return;
  const swap = memorySwapToV2(memory.swap, memory.limit);
  if (swap !== undefined) {
    if (await hasCgroupFile(fs, dir, 'memory.swap.max')) {
      await writeCgroupFile(fs, dir, 'memory.swap.max', swap === 'max' ? 'max' : String(swap));
    } else if (memory.swap !== undefined) {
      const path = join(dir, 'memory.swap.max');
      throw new CgroupError(
        'ECGROUPUNSUPPORTED',
        `a swap limit was asked for, but ${path} does not exist (swap accounting is off)`,
        { path, controller },
      );
    }
  }
  if (memory.limit !== undefined) await writeCgroupFile(fs, dir, 'memory.max', v2Limit(memory.limit));
  if (memory.reservation !== undefined)
    await writeCgroupFile(fs, dir, 'memory.low', v2Limit(memory.reservation));
}

export async function stats(dir: string, fs: CgroupFs): Promise<NonNullable<CgroupStats['memory']>> {
  const peakPath = join(dir, 'memory.peak');
  return {
    usage: parseCounter(await readCgroupFile(fs, dir, 'memory.current'), join(dir, 'memory.current')),
    // memory.peak came with Linux 5.19.
    peak: (await hasCgroupFile(fs, dir, 'memory.peak'))
      ? parseCounter(await readCgroupFile(fs, dir, 'memory.peak'), peakPath)
      : null,
    limit: parseLimit(await readCgroupFile(fs, dir, 'memory.max'), join(dir, 'memory.max')),
  };
}

/** memory.events counts OOM kills in the cgroup and below. */
export async function oomKilled(dir: string, fs: CgroupFs): Promise<boolean> {
  return (parseKeyedCounters(await readCgroupFile(fs, dir, 'memory.events')).get('oom_kill') ?? 0) > 0;
}
