import { describe, expect, it } from 'vitest';
import { MS, mountFlagsToString } from './constants.js';
import { ChildSetupError, describeErrno, errnoName, errnoValue, SyscallError } from './errors.js';
import { mount, umount2 } from './syscalls.js';

describe('errnoName / errnoValue', () => {
  it('maps errno numbers to names and back', () => {
    expect(errnoName(2)).toBe('ENOENT');
    expect(errnoName(1)).toBe('EPERM');
    expect(errnoName(17)).toBe('EEXIST');
    expect(errnoName(22)).toBe('EINVAL');
    expect(errnoValue('ENOENT')).toBe(2);
    expect(errnoValue('EBUSY')).toBe(16);
  });

  it('names an unknown errno by its number', () => {
    expect(errnoName(9999)).toBe('E9999');
  });

  it('describes an errno in a few words, or by its number', () => {
    expect(describeErrno(19)).toBe('no such device');
    expect(describeErrno(101)).toBe('network is unreachable');
    expect(describeErrno(9999)).toBe('errno 9999');
  });
});

describe('SyscallError', () => {
  it('carries the call, errno and path of a real failure', () => {
    let error: unknown;
    try {
      umount2('/nonexistent-box-test');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(SyscallError);
    const e = error as SyscallError;
    expect(e.name).toBe('SyscallError');
    expect(e.syscall).toBe('umount2');
    expect(e.code).toBe('ENOENT');
    expect(e.errno).toBe(2);
    expect(e.path).toBe('/nonexistent-box-test');
    expect(e.message).toBe('umount2 /nonexistent-box-test: ENOENT (no such file or directory)');
  });

  it('renders mount flags as names in the message', () => {
    expect(() => mount('/nonexistent-box-src', '/nonexistent-box-test', null, MS.BIND | MS.REC)).toThrow(
      'mount /nonexistent-box-test (source /nonexistent-box-src, type none, flags MS_BIND|MS_REC): ENOENT',
    );
  });

  it('builds a message without path or arguments', () => {
    const e = new SyscallError('clone', 22);
    expect(e.message).toBe('clone: EINVAL (invalid argument)');
    expect(e.path).toBeUndefined();
  });

  it('describes errno values it has no text for by number', () => {
    expect(new SyscallError('x', 9999).message).toBe('x: E9999 (errno 9999)');
  });
});

describe('ChildSetupError', () => {
  it('names the step and the errno', () => {
    const e = new ChildSetupError('mount proc on /proc', 'mount', 1);
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe('ChildSetupError');
    expect(e.message).toBe('mount proc on /proc: EPERM (operation not permitted)');
    expect(e).toMatchObject({ code: 'EPERM', step: 'mount proc on /proc', syscall: 'mount', errno: 1 });
  });
});

describe('mountFlagsToString', () => {
  it('renders 0 as "0"', () => {
    expect(mountFlagsToString(0)).toBe('0');
  });

  it('joins the names of the set bits in declaration order', () => {
    expect(mountFlagsToString(MS.BIND | MS.REC)).toBe('MS_BIND|MS_REC');
    expect(mountFlagsToString(MS.RDONLY | MS.NOSUID | MS.NODEV | MS.NOEXEC)).toBe(
      'MS_RDONLY|MS_NOSUID|MS_NODEV|MS_NOEXEC',
    );
    expect(mountFlagsToString(MS.PRIVATE | MS.REC)).toBe('MS_REC|MS_PRIVATE');
  });

  it('ignores bits it has no name for', () => {
    expect(mountFlagsToString(MS.REMOUNT | 0x40000000)).toBe('MS_REMOUNT');
  });
});
