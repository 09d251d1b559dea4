import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CgroupError } from '../errors.js';
import { type CgroupFs, readCgroupFile, writeCgroupFile } from '../fs.js';
import type { Resources } from '../manager.js';

export const controller = 'freezer';

const POLLS = 500;
const POLL_MS = 4;

export function isRequested(resources: Resources): boolean {
  return resources.freezer !== undefined;
}

/**
 * freezer.state: FROZEN or THAWED, then waits until the kernel reports it (FREEZING is the state in
 * between). Like runc, FROZEN is written again while waiting, which nudges tasks that were forking.
 */
export async function apply(dir: string, resources: Resources, fs: CgroupFs): Promise<void> {
  if (resources.freezer === undefined) return;
  const wanted = resources.freezer === 'frozen' ? 'FROZEN' : 'THAWED';
  for (let poll = 0; poll < POLLS; poll++) {
    if (poll === 0 || wanted === 'FROZEN') await writeCgroupFile(fs, dir, 'freezer.state', wanted);
    if ((await readCgroupFile(fs, dir, 'freezer.state')).trim() === wanted) return;
    await sleep(POLL_MS);
  }
  if (wanted === 'FROZEN') await writeCgroupFile(fs, dir, 'freezer.state', 'THAWED');
  throw new CgroupError('ECGROUPTIMEOUT', `${join(dir, 'freezer.state')} did not become ${wanted}`, {
    path: join(dir, 'freezer.state'),
    controller,
  });
}
