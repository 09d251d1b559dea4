import { afterEach, describe, expect, it } from 'vitest';
import { createCgroupManager } from './create.js';
import { CgroupError, isCgroupError } from './errors.js';
import { createFakeCgroupfs, type FakeCgroupfs } from './testing.js';

let fake: FakeCgroupfs | undefined;
afterEach(async () => {
  await fake?.cleanup();
  fake = undefined;
});

describe('createCgroupManager', () => {
  it('lets the mode be forced: unified on a hybrid host uses its v2 hierarchy (fake cgroupfs)', async () => {
    fake = await createFakeCgroupfs({ layout: 'hybrid' });
    const manager = await createCgroupManager({
      path: 'box/c1',
      mountinfo: fake.mountinfo,
      fs: fake.fs,
      mode: 'unified',
    });
    expect(manager.mode).toBe('unified');
    expect(manager.dirs).toEqual([fake.path('unified', 'box/c1')]);
    await manager.create();
    // That hierarchy only offers hugetlb, so asking for memory names the controller.
    await expect(manager.apply({ memory: { limit: 1 << 20 } })).rejects.toMatchObject({
      code: 'ECGROUPCONTROLLER',
      controller: 'memory',
    });
    await manager.destroy();
    expect(await fake.exists('unified', 'box', 'c1')).toBe(false);
  });

  it('refuses a mode the host cannot give (fake cgroupfs)', async () => {
    fake = await createFakeCgroupfs({ layout: 'legacy' });
    await expect(
      createCgroupManager({ path: 'box/c1', mountinfo: fake.mountinfo, fs: fake.fs, mode: 'unified' }),
    ).rejects.toMatchObject({ code: 'ECGROUPMODE' });
    const v2 = await createFakeCgroupfs({ layout: 'unified' });
    try {
      await expect(
        createCgroupManager({ path: 'box/c1', root: v2.root, fs: v2.fs, mode: 'legacy' }),
      ).rejects.toMatchObject({ code: 'ECGROUPMODE' });
    } finally {
      await v2.cleanup();
    }
  });

  it('refuses paths that could leave the hierarchy (fake cgroupfs)', async () => {
    fake = await createFakeCgroupfs({ layout: 'legacy' });
    for (const path of ['', '/', 'box/../x', 'box//c1', './c1', '..']) {
      await expect(
        createCgroupManager({ path, mountinfo: fake.mountinfo, fs: fake.fs }),
        path,
      ).rejects.toMatchObject({
        code: 'ECGROUPPATH',
        path,
      });
    }
  });

  it('takes root or mountinfo, not both (fake cgroupfs)', async () => {
    fake = await createFakeCgroupfs({ layout: 'legacy' });
    await expect(
      createCgroupManager({ path: 'box/c1', root: fake.root, mountinfo: fake.mountinfo, fs: fake.fs }),
    ).rejects.toMatchObject({ code: 'ECGROUPVALUE' });
  });

  it('wraps file errors with the path, the errno and the cause (fake cgroupfs)', async () => {
    fake = await createFakeCgroupfs({ layout: 'legacy' });
    const manager = await createCgroupManager({ path: 'box/c1', mountinfo: fake.mountinfo, fs: fake.fs });
    // Not created yet: the write fails with ENOENT on a named file.
    const error = await manager.apply({ pids: { limit: 3 } }).catch((e: unknown) => e);
    expect(isCgroupError(error, 'ECGROUPIO')).toBe(true);
    const cgroupError = error as CgroupError;
    expect(cgroupError.path).toBe(fake.path('pids', 'box/c1/pids.max'));
    expect(cgroupError.errno).toBe('ENOENT');
    expect(cgroupError.controller).toBe('pids');
    expect(cgroupError.message).toMatch(/^pids: write "3" to .*pids\.max/);
    expect(cgroupError.cause).toBeInstanceOf(CgroupError);
    expect((cgroupError.cause as Error).cause).toMatchObject({ code: 'ENOENT' });
  });
});
