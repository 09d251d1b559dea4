import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CgroupError } from '../errors.js';
import { type CgroupFs, readCgroupFile, writeCgroupFile } from '../fs.js';
import type { Resources } from '../manager.js';
import { parseKeyedCounters } from '../values.js';

/** Not a controller on v2 but a core file (`cgroup.freeze`, Linux 5.2+); named so in errors. */
export const controller = 'freezer';

const POLLS = 500;
const POLL_MS = 4;

export function isRequested(resources: Resources): boolean {
  return resources.freezer !== undefined;
}

/** cgroup.freeze (1 or 0), then waits for `frozen` in cgroup.events to follow. */
export async function apply(dir: string, resources: Resources, fs: CgroupFs): Promise<void> {
  if (resources.freezer === undefined) return;
  const wanted = resources.freezer === 'frozen' ? 1 : 0;
  await writeCgroupFile(fs, dir, 'cgroup.freeze', wanted);
  for (let poll = 0; poll < POLLS; poll++) {
    if (parseKeyedCounters(await readCgroupFile(fs, dir, 'cgroup.events')).get('frozen') === wanted) return;
    await sleep(POLL_MS);
  }
  if (wanted === 1) await writeCgroupFile(fs, dir, 'cgroup.freeze', 0);
  const path = join(dir, 'cgroup.events');
  throw new CgroupError('ECGROUPTIMEOUT', `${path} did not report frozen ${wanted}`, { path, controller });
}
