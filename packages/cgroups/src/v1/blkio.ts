import { join } from 'node:path';
import { CgroupError } from '../errors.js';
import { type CgroupFs, hasCgroupFile, writeCgroupFile } from '../fs.js';
import type { Resources } from '../manager.js';

export const controller = 'blkio';

export function isRequested(resources: Resources): boolean {
  return resources.blockIO?.weight !== undefined;
}

/** blkio.weight, or blkio.bfq.weight on kernels where only BFQ offers weights (as runc picks). */
export async function apply(dir: string, resources: Resources, fs: CgroupFs): Promise<void> {
  const weight = resources.blockIO?.weight;
  if (weight === undefined) return;
  for (const file of ['blkio.weight', 'blkio.bfq.weight']) {
    if (await hasCgroupFile(fs, dir, file)) {
      await writeCgroupFile(fs, dir, file, weight);
      return;
    }
  }
  throw new CgroupError(
    'ECGROUPUNSUPPORTED',
    `a block I/O weight was asked for, but ${join(dir, 'blkio.weight')} and blkio.bfq.weight do not exist (no I/O scheduler with weights)`,
    { path: join(dir, 'blkio.weight'), controller },
  );
}
