import { ChildSetupError } from '@box/sys';
import { UnionfsError } from '@box/unionfs';
import { describe, expect, it } from 'vitest';
import { RuntimeError } from '../errors.js';
import { normalizeStartError } from './launch.js';
import { kernelRefusal } from './rootless-overlay.js';

// errno numbers: EPERM 1, ENOENT 2, EACCES 13, ENODEV 19, EINVAL 22.
describe('the kernel’s refusal of an overlay mount (what makes a rootless start fall back to fuse-overlayfs)', () => {
  it('the container’s own overlay mount refused, as launch sees it (normalized) or raw', () => {
    for (const errno of [1, 19]) {
      const raw = new ChildSetupError('mount overlay on /r/rootfs', 'mount', errno);
      expect(kernelRefusal(raw)).toBe(true);
      expect(kernelRefusal(normalizeStartError(raw))).toBe(true);
    }
  });

  it('not another step, another errno, or another error', () => {
    // EINVAL and EACCES: what an ordinary problem of the layers gives too.
    for (const errno of [2, 13, 22])
      expect(kernelRefusal(new ChildSetupError('mount overlay on /r/rootfs', 'mount', errno))).toBe(false);
    expect(kernelRefusal(new ChildSetupError('mount fuse on /r/rootfs', 'mount', 1))).toBe(false);
    expect(kernelRefusal(new ChildSetupError('mount proc on /proc', 'mount', 1))).toBe(false);
    expect(kernelRefusal(new RuntimeError('ESTART', 'failed'))).toBe(false);
    expect(kernelRefusal(undefined)).toBe(false);
  });

  it('this process’s own overlay mount (cp, export) refused by the kernel', () => {
    const refused = new UnionfsError('EUNIONFSMOUNT', 'cannot mount overlay on /t: EPERM', {
      errno: 'EPERM',
    });
    expect(kernelRefusal(refused)).toBe(true);
    const missing = new UnionfsError('EUNIONFSMOUNT', 'cannot mount overlay on /t: ENOENT', {
      errno: 'ENOENT',
    });
    expect(kernelRefusal(missing)).toBe(false);
  });
});
