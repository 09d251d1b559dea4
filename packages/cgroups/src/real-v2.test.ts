/**
 * The v2 backend against the real kernel, on what this kind of host has: a hybrid machine's
 * unified hierarchy (/sys/fs/cgroup/unified), whose only controller is hugetlb. So it checks
 * the parts of v2 that need no controller: making and removing cgroups, cgroup.procs,
 * cgroup.freeze / cgroup.events, cgroup.kill. Limits are tested on the fake tree.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createCgroupManager } from './create.js';
import type { CgroupManager } from './manager.js';

const ROOT = '/sys/fs/cgroup/unified';
const canRun =
  process.getuid?.() === 0 &&
  existsSync(join(ROOT, 'cgroup.procs')) &&
  existsSync(join(ROOT, 'cgroup.subtree_control'));

describe('v2 manager on the real unified hierarchy (hybrid host, no v2 controllers)', () => {
  // Not run as root, or no unified hierarchy: fails here, never skips.
  beforeAll(() => {
    if (!canRun) throw new Error(`needs root and the unified hierarchy at ${ROOT}`);
  });

  let manager: CgroupManager | undefined;
  let child: ChildProcess | undefined;
  let dir = '';

  afterEach(async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
    await manager?.destroy();
    expect(existsSync(dir)).toBe(false);
    manager = undefined;
    child = undefined;
  });

  it('creates, adds a process, freezes, thaws, kills and removes (real cgroup v2)', async () => {
    const path = `box-test-v2-${randomBytes(6).toString('hex')}`;
    dir = join(ROOT, path);
    manager = await createCgroupManager({ path, root: ROOT });
    expect(manager.mode).toBe('unified');
    await manager.create();
    expect(existsSync(join(dir, 'cgroup.freeze'))).toBe(true);

    child = spawn('sleep', ['30'], { stdio: 'ignore' });
    await once(child, 'spawn');
    await manager.addProcess(child.pid!);
    expect(await manager.pids()).toEqual([child.pid]);
    expect(readFileSync(`/proc/${child.pid}/cgroup`, 'utf8')).toContain(`0::/${path}\n`);

    await manager.freeze();
    expect(readFileSync(join(dir, 'cgroup.events'), 'utf8')).toMatch(/^frozen 1$/m);
    expect(readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1]![0]).toMatch(/[DST]/);
    await manager.thaw();
    expect(readFileSync(join(dir, 'cgroup.events'), 'utf8')).toMatch(/^frozen 0$/m);

    const exited = once(child, 'exit');
    await manager.killAll();
    const [, signal] = await exited;
    expect(signal).toBe('SIGKILL');
  });

  it('refuses a limit whose controller the hierarchy lacks, naming it (real cgroup v2)', async () => {
    const path = `box-test-v2-${randomBytes(6).toString('hex')}`;
    dir = join(ROOT, path);
    manager = await createCgroupManager({ path, root: ROOT });
    await manager.create();
    await expect(manager.apply({ pids: { limit: 10 } })).rejects.toMatchObject({
      code: 'ECGROUPCONTROLLER',
      controller: 'pids',
    });
  });
});
