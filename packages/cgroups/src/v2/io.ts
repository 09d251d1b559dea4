import { join } from 'node:path';
import { blkioWeightToIoWeight } from '../convert.js';
import { CgroupError } from '../errors.js';
import { type CgroupFs, hasCgroupFile, writeCgroupFile } from '../fs.js';
import type { Resources } from '../manager.js';

export const controller = 'io';

export function isRequested(resources: Resources): boolean {
  return resources.blockIO?.weight !== undefined;
}

/** io.bfq.weight takes the v1 weight as it is; otherwise io.weight gets runc's conversion. */
export async function apply(dir: string, resources: Resources, fs: CgroupFs): Promise<void> {
  const weight = resources.blockIO?.weight;
  if (weight === undefined) return;
  if (await hasCgroupFile(fs, dir, 'io.bfq.weight')) {
    await writeCgroupFile(fs, dir, 'io.bfq.weight', weight);
  } else if (await hasCgroupFile(fs, dir, 'io.weight')) {
    await writeCgroupFile(fs, dir, 'io.weight', blkioWeightToIoWeight(weight));
  } else {
    throw new CgroupError(
      'ECGROUPUNSUPPORTED',
      `a block I/O weight was asked for, but ${join(dir, 'io.weight')} and io.bfq.weight do not exist`,
      { path: join(dir, 'io.weight'), controller },
    );
  }
}
