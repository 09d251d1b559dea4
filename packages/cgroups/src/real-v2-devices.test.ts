/**
 * cgroup v2 device rules for real: the BPF program attached to a cgroup of the hybrid host's
 * unified hierarchy decides what a process in it may open.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createCgroupManager } from './create.js';
import { DEFAULT_DEVICE_RULES } from './devices.js';
import type { CgroupManager } from './manager.js';

const ROOT = '/sys/fs/cgroup/unified';
const canRun = process.getuid?.() === 0 && existsSync(join(ROOT, 'cgroup.procs'));

describe('v2 device rules on the real kernel (BPF_PROG_TYPE_CGROUP_DEVICE)', () => {
  // Not run as root, or no unified hierarchy: fails here, never skips.
  beforeAll(() => {
    if (!canRun) throw new Error(`needs root and the unified hierarchy at ${ROOT}`);
  });

  let manager: CgroupManager | undefined;

  afterEach(async () => {
    await manager?.destroy();
    manager = undefined;
  });

  it("allows docker's device list and denies the rest (real cgroup v2)", async () => {
    const path = `box-test-dev-${randomBytes(6).toString('hex')}`;
    manager = await createCgroupManager({ path, root: ROOT });
    await manager.create();
    await manager.apply({ devices: DEFAULT_DEVICE_RULES });
    // A shell that moves itself into the cgroup, then opens devices.
    const script = [
      `echo $$ > ${join(ROOT, path, 'cgroup.procs')}`,
      'head -c 4 /dev/zero | wc -c',
      'echo x > /dev/null && echo null-ok',
      'head -c 1 /dev/mem >/dev/null 2>&1 && echo mem-open || echo mem-denied',
      'mknod /tmp/box-dev-test-$$ b 7 0 2>/dev/null && echo mknod-ok; rm -f /tmp/box-dev-test-$$',
    ].join('; ');
    const r = spawnSync('sh', ['-c', script], { encoding: 'utf8' });
    expect(r.stdout.split('\n').filter(Boolean)).toEqual(['4', 'null-ok', 'mem-denied', 'mknod-ok']);
  });

  it('later rules override earlier ones (real cgroup v2)', async () => {
    const path = `box-test-dev-${randomBytes(6).toString('hex')}`;
    manager = await createCgroupManager({ path, root: ROOT });
    await manager.create();
    await manager.apply({
      devices: [
        { allow: true, type: 'c', major: 1, minor: '*', access: 'rwm' },
        { allow: false, type: 'c', major: 1, minor: 5, access: 'r' }, // no reading /dev/zero
      ],
    });
    const script = `echo $$ > ${join(ROOT, path, 'cgroup.procs')}; head -c 1 /dev/zero >/dev/null 2>&1 && echo zero-read || echo zero-denied; echo x > /dev/zero && echo zero-write; echo x > /dev/null && echo null-ok`;
    const r = spawnSync('sh', ['-c', script], { encoding: 'utf8' });
    expect(r.stdout.split('\n').filter(Boolean)).toEqual(['zero-denied', 'zero-write', 'null-ok']);
  });
});
