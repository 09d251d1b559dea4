/** `box pause`, `box unpause` (the cgroup freezer) and `box update` (new limits for a container). */

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createCgroupManager } from '@box/cgroups';
import { containerDir, findContainer } from '../containers.js';
import { readSpec } from '../create.js';
import { CliError } from '../errors.js';
import { isRunning } from '../lifecycle.js';
import { reconcile } from '../recovery.js';
import { parseResourceFlags, type ResourceFlags } from '../resources.js';
import { writePrivateFile } from '../state-dir.js';

async function eachRunning(
  references: string[],
  fn: (id: string, cgroupsPath: string) => Promise<void>,
): Promise<number> {
  await reconcile();
  let failed = false;
  for (const reference of references) {
    try {
      const state = findContainer(reference);
      if (!isRunning(state)) throw new CliError(`container ${reference} is not running`, 1);
      await fn(state.id, state.cgroupsPath);
      process.stdout.write(`${reference}\n`);
    } catch (error) {
      failed = true;
      process.stderr.write(`box: ${(error as Error).message}\n`);
    }
  }
  return failed ? 1 : 0;
}

export function pause(references: string[]): Promise<number> {
  return eachRunning(references, async (_, path) => (await createCgroupManager({ path })).freeze());
}

export function unpause(references: string[]): Promise<number> {
  return eachRunning(references, async (_, path) => (await createCgroupManager({ path })).thaw());
}

/** Whether a running container's cgroup is frozen (ps and inspect show "Paused"). */
export async function isPaused(cgroupsPath: string): Promise<boolean> {
  try {
    const cgroup = await createCgroupManager({ path: cgroupsPath });
    for (const dir of cgroup.dirs) {
      if (dir.includes('/freezer/'))
        return readFileSync(join(dir, 'freezer.state'), 'utf8').trim() === 'FROZEN';
      if (cgroup.mode === 'unified')
        return /^frozen 1$/m.test(readFileSync(join(dir, 'cgroup.events'), 'utf8'));
    }
  } catch {
    // no cgroup: not paused
  }
  return false;
}

export function update(references: string[], flags: ResourceFlags): Promise<number> {
  const resources = parseResourceFlags(flags);
  if (Object.keys(resources).length === 0)
    throw new CliError('you must provide one or more flags when using this command');
  return eachRunning(references, async (id, path) => {
    await (await createCgroupManager({ path })).update(resources);
    // Kept in the container's config, so inspect and a restart see the new limits.
    const dir = containerDir(id);
    const spec = readSpec(dir);
    const current = spec.linux?.resources ?? {};
    spec.linux = {
      ...spec.linux,
      resources: {
        ...current,
        memory: { ...current.memory, ...resources.memory },
        cpu: { ...current.cpu, ...resources.cpu },
        ...(resources.pids ? { pids: resources.pids } : {}),
      },
    };
    writePrivateFile(join(dir, 'config.json'), `${JSON.stringify(spec, null, 2)}\n`);
  });
}
