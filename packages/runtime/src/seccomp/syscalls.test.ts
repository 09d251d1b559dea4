import { describe, expect, it } from 'vitest';
// The generator itself: the checked-in table must be what it makes from this machine's headers.
import { generate } from '../../scripts/gen-syscalls.mjs';
import { GENERATED_SYSCALLS } from './syscalls.generated.js';
import { isSyscallOn, NEWER_SYSCALL_NAMES, syscallTable, TABLE_ARCHES } from './syscalls.js';

describe('syscall tables', () => {
  it('are what scripts/gen-syscalls.mjs makes from the kernel headers', () => {
    // Throws, naming the missing header or gcc, where linux-libc-dev or gcc is not installed:
    // this test fails then, it does not skip.
    const { tables } = generate();
    expect(tables).toEqual(GENERATED_SYSCALLS);
  });

  it('are not generated without the headers: the error names what is missing', () => {
    expect(() => generate({ includeDir: '/nonexistent' })).toThrow(
      /kernel headers not found: \/nonexistent\/x86_64-linux-gnu\/asm\/unistd_64\.h.*linux-libc-dev/,
    );
  });

  it('have the numbers of a few well-known syscalls', () => {
    expect(syscallTable('x86_64').get('read')).toBe(0);
    expect(syscallTable('x86_64').get('clone')).toBe(56);
    expect(syscallTable('x86_64').get('clone3')).toBe(435);
    expect(syscallTable('x86').get('read')).toBe(3);
    expect(syscallTable('x86').get('socketcall')).toBe(102);
    expect(syscallTable('x32').get('read')).toBe(0x40000000);
    expect(syscallTable('x32').get('execve')).toBe(0x40000000 + 520); // x32's own numbering
    expect(syscallTable('aarch64').get('read')).toBe(63);
    expect(syscallTable('aarch64').get('renameat')).toBe(38); // __ARCH_WANT_RENAMEAT
    expect(syscallTable('aarch64').get('memfd_secret')).toBe(447); // __ARCH_WANT_MEMFD_SECRET
    expect(syscallTable('aarch64').has('open')).toBe(false);
  });

  it('add the syscalls newer than the headers, with the same number everywhere', () => {
    for (const arch of TABLE_ARCHES) {
      const bit = arch === 'x32' ? 0x40000000 : 0;
      expect(syscallTable(arch).get('fchmodat2')).toBe(bit + 452);
      expect(syscallTable(arch).get('futex_requeue')).toBe(bit + 456);
    }
    // x86_64's table has map_shadow_stack as a 64-bit-only entry: x32 has no such syscall.
    expect(syscallTable('x86_64').get('map_shadow_stack')).toBe(453);
    expect(syscallTable('x86').get('map_shadow_stack')).toBe(453);
    expect(syscallTable('x32').has('map_shadow_stack')).toBe(false);
    // Where the headers already have one, their number is the one used, and it agrees.
    for (const arch of TABLE_ARCHES) {
      const generated: Record<string, number> = GENERATED_SYSCALLS[arch];
      for (const name of NEWER_SYSCALL_NAMES)
        if (name in generated) expect(syscallTable(arch).get(name)).toBe(generated[name]);
      // No newer syscall reuses a number the headers give to another.
      const numbers = new Map(Object.entries(generated).map(([name, nr]) => [nr, name]));
      for (const name of NEWER_SYSCALL_NAMES) {
        const nr = syscallTable(arch).get(name);
        if (nr !== undefined && !(name in generated)) expect(numbers.get(nr)).toBeUndefined();
      }
    }
  });

  it('know the names of architectures without a table, and no typos', () => {
    expect(isSyscallOn('arm_fadvise64_64', undefined)).toBe(true);
    expect(isSyscallOn('arm_fadvise64_64', 'x86_64')).toBe(false);
    expect(isSyscallOn('mmap2', undefined)).toBe(true); // x86's
    expect(isSyscallOn('mkdirr', undefined)).toBe(false);
  });
});
