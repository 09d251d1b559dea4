import { ChildProgram } from '@box/sys';
import { describe, expect, it } from 'vitest';
import { SafeSteps } from './safe-path.js';

/** The program's steps as `syscall step`, read back through the names its failures give. */
function steps(program: ChildProgram): string[] {
  return Array.from({ length: program.length }, (_, index) => {
    const report = Buffer.alloc(16);
    report.writeBigInt64LE(BigInt(index), 0);
    const { syscall, step } = program.failure(report);
    return `${syscall} ${step}`;
  });
}

describe('SafeSteps.mkdirAll', () => {
  it('makes each directory below the rootfs from an fd of its parent opened without symlinks', () => {
    const program = new ChildProgram();
    new SafeSteps(program, '/r/rootfs').mkdirAll('/r/rootfs/dev/pts');
    expect(steps(program)).toEqual([
      'openat2 open /r/rootfs (no symlinks)',
      'mkdirat mkdir /r/rootfs/dev',
      'close close /r/rootfs',
      'openat2 open /r/rootfs/dev (no symlinks)',
      'mkdirat mkdir /r/rootfs/dev/pts',
      'close close /r/rootfs/dev',
    ]);
  });

  it('makes nothing for the rootfs itself, and reads "." and ".." segments and doubled slashes as path.relative does', () => {
    const rootOnly = new ChildProgram();
    new SafeSteps(rootOnly, '/r/rootfs').mkdirAll('/r/rootfs');
    expect(rootOnly.length).toBe(0);
    for (const target of ['/r/rootfs//etc/./x', '/r/rootfs/tmp/../etc/x', '/r/rootfs/etc/x/']) {
      const program = new ChildProgram();
      new SafeSteps(program, '/r/rootfs').mkdirAll(target);
      expect(steps(program).filter((s) => s.startsWith('mkdirat'))).toEqual([
        'mkdirat mkdir /r/rootfs/etc',
        'mkdirat mkdir /r/rootfs/etc/x',
      ]);
    }
  });
});
