import { describe, expect, it } from 'vitest';
import { SeccompError } from '../errors.js';
import { parseProfile, resolveProfile } from './profile.js';
import type { DockerProfile } from './types.js';

function parseError(json: unknown): string {
  try {
    parseProfile(json, './p.json');
  } catch (error) {
    expect(error).toBeInstanceOf(SeccompError);
    expect((error as SeccompError).code).toBe('ESECCOMP');
    return (error as Error).message;
  }
  throw new Error('parsed');
}

const allow = (names: string[], more: object = {}) => ({ names, action: 'SCMP_ACT_ALLOW', ...more });
const profile = (syscalls: object[], more: object = {}) => ({
  defaultAction: 'SCMP_ACT_ERRNO',
  syscalls,
  ...more,
});

describe('parseProfile', () => {
  it('takes the OCI form and docker form', () => {
    const oci = parseProfile(
      {
        defaultAction: 'SCMP_ACT_ERRNO',
        defaultErrnoRet: 38,
        architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86'],
        flags: ['SECCOMP_FILTER_FLAG_LOG'],
        syscalls: [
          { names: ['read', 'write'], action: 'SCMP_ACT_ALLOW', args: null },
          {
            names: ['personality'],
            action: 'SCMP_ACT_ALLOW',
            args: [{ index: 0, value: 8, valueTwo: 0, op: 'SCMP_CMP_EQ' }],
          },
        ],
      },
      'spec',
    );
    expect(oci).toEqual({
      defaultAction: 'SCMP_ACT_ERRNO',
      defaultErrnoRet: 38,
      architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86'],
      flags: ['SECCOMP_FILTER_FLAG_LOG'],
      syscalls: [
        { names: ['read', 'write'], action: 'SCMP_ACT_ALLOW' },
        {
          names: ['personality'],
          action: 'SCMP_ACT_ALLOW',
          args: [{ index: 0, value: 8, valueTwo: 0, op: 'SCMP_CMP_EQ' }],
        },
      ],
    });
    const docker = parseProfile(
      {
        defaultAction: 'SCMP_ACT_ERRNO',
        archMap: [{ architecture: 'SCMP_ARCH_RISCV64', subArchitectures: null }],
        syscalls: [
          { name: 'mount', action: 'SCMP_ACT_ALLOW', includes: { caps: ['CAP_SYS_ADMIN'] }, excludes: {} },
        ],
      },
      'p.json',
    ) as DockerProfile;
    expect(docker.archMap).toEqual([{ architecture: 'SCMP_ARCH_RISCV64', subArchitectures: null }]);
    expect(docker.syscalls).toEqual([
      { names: ['mount'], action: 'SCMP_ACT_ALLOW', includes: { caps: ['CAP_SYS_ADMIN'] } },
    ]);
  });

  it('names the source and the field of what is wrong', () => {
    expect(parseError([])).toBe('seccomp profile ./p.json: expected an object, got an array');
    expect(parseError({})).toBe('seccomp profile ./p.json: defaultAction: missing');
    expect(parseError({ defaultAction: 'SCMP_ACT_NOPE' })).toBe(
      'seccomp profile ./p.json: defaultAction: unknown action "SCMP_ACT_NOPE"',
    );
    expect(
      parseError(
        profile([
          allow(['read']),
          allow(['write']),
          allow(['open']),
          { names: ['x'], action: 'SCMP_ACT_FOO' },
        ]),
      ),
    ).toMatch(/^seccomp profile \.\/p\.json: syscalls\[3\]\.names\[0\]: unknown syscall "x"$/);
    expect(
      parseError(
        profile([
          allow(['read']),
          allow(['write']),
          allow(['open']),
          { names: ['close'], action: 'SCMP_ACT_FOO' },
        ]),
      ),
    ).toBe('seccomp profile ./p.json: syscalls[3].action: unknown action "SCMP_ACT_FOO"');
    expect(parseError(profile([allow(['mkdir', 'mkdirr'])]))).toBe(
      'seccomp profile ./p.json: syscalls[0].names[1]: unknown syscall "mkdirr"',
    );
    expect(parseError(profile([{ name: 'mkdirr', action: 'SCMP_ACT_ALLOW' }]))).toBe(
      'seccomp profile ./p.json: syscalls[0].name: unknown syscall "mkdirr"',
    );
    expect(parseError(profile([allow(['read'], { errnoRet: 1.5 })]))).toBe(
      'seccomp profile ./p.json: syscalls[0].errnoRet: expected an integer, got number 1.5',
    );
    expect(parseError(profile([allow(['read'], { errnoRet: '1' })]))).toBe(
      'seccomp profile ./p.json: syscalls[0].errnoRet: expected an integer, got "1"',
    );
    expect(parseError({ defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: 70000 })).toBe(
      'seccomp profile ./p.json: defaultErrnoRet: 70000 is out of range (0-65535)',
    );
    expect(
      parseError(profile([allow(['read'], { args: [{ index: 6, value: 1, op: 'SCMP_CMP_EQ' }] })])),
    ).toBe('seccomp profile ./p.json: syscalls[0].args[0].index: 6 is not an argument (0-5)');
    expect(
      parseError(profile([allow(['read'], { args: [{ index: 0, value: 1, op: 'SCMP_CMP_LIKE' }] })])),
    ).toBe('seccomp profile ./p.json: syscalls[0].args[0].op: unknown operator "SCMP_CMP_LIKE"');
    expect(parseError(profile([allow(['read'], { args: [{ index: 0, op: 'SCMP_CMP_EQ' }] })]))).toBe(
      'seccomp profile ./p.json: syscalls[0].args[0].value: missing',
    );
    expect(
      parseError(profile([allow(['read'], { args: [{ index: 0, value: -1, op: 'SCMP_CMP_EQ' }] })])),
    ).toMatch(/syscalls\[0\]\.args\[0\]\.value: -1 is negative/);
    expect(
      parseError(profile([allow(['read'], { args: [{ index: 0, value: 2 ** 60, op: 'SCMP_CMP_EQ' }] })])),
    ).toMatch(/syscalls\[0\]\.args\[0\]\.value: .* is above 2\^53/);
    expect(parseError(profile([allow(['read'], { args: { index: 0 } })]))).toBe(
      'seccomp profile ./p.json: syscalls[0].args: expected an array, got an object',
    );
    expect(parseError(profile([{ names: 'read', action: 'SCMP_ACT_ALLOW' }]))).toBe(
      'seccomp profile ./p.json: syscalls[0].names: expected an array, got "read"',
    );
    expect(parseError(profile([{ action: 'SCMP_ACT_ALLOW' }]))).toBe(
      'seccomp profile ./p.json: syscalls[0].names: missing',
    );
    expect(parseError(profile([{ name: 'read', names: ['write'], action: 'SCMP_ACT_ALLOW' }]))).toBe(
      'seccomp profile ./p.json: syscalls[0]: both "name" and "names" are given',
    );
    expect(parseError(profile([], { architectures: ['SCMP_ARCH_Z80'] }))).toBe(
      'seccomp profile ./p.json: architectures[0]: unknown architecture "SCMP_ARCH_Z80"',
    );
    expect(
      parseError(
        profile([], {
          architectures: ['SCMP_ARCH_X86_64'],
          archMap: [{ architecture: 'SCMP_ARCH_X86_64', subArchitectures: [] }],
        }),
      ),
    ).toBe('seccomp profile ./p.json: both "architectures" and "archMap" are given: use one of them');
    expect(parseError(profile([], { flags: ['SECCOMP_FILTER_FLAG_FAST'] }))).toBe(
      'seccomp profile ./p.json: flags[0]: unknown flag "SECCOMP_FILTER_FLAG_FAST"',
    );
    expect(parseError(profile([allow(['read'], { includes: { minKernel: 'four' } })]))).toBe(
      'seccomp profile ./p.json: syscalls[0].includes.minKernel: "four" is not a kernel version "major.minor"',
    );
    expect(parseError(profile([allow(['read'], { excludes: { caps: 'CAP_SYS_ADMIN' } })]))).toBe(
      'seccomp profile ./p.json: syscalls[0].excludes.caps: expected an array, got "CAP_SYS_ADMIN"',
    );
  });

  it('refuses SCMP_ACT_NOTIFY and SECCOMP_FILTER_FLAG_NEW_LISTENER: no agent', () => {
    expect(parseError({ defaultAction: 'SCMP_ACT_NOTIFY' })).toMatch(
      /defaultAction: SCMP_ACT_NOTIFY is not supported/,
    );
    expect(parseError(profile([{ names: ['mount'], action: 'SCMP_ACT_NOTIFY' }]))).toMatch(
      /syscalls\[0\]\.action: SCMP_ACT_NOTIFY is not supported/,
    );
    expect(parseError(profile([], { flags: ['SECCOMP_FILTER_FLAG_NEW_LISTENER'] }))).toMatch(
      /flags\[0\]: SCMP_ACT_NOTIFY is not supported/,
    );
  });

  it("takes a name some architectures lack, as docker does; and other architectures' names", () => {
    // recv exists on no x86 ABI, mmap2 not on x86_64, arm_fadvise64_64 on 32-bit ARM only.
    expect(() =>
      parseProfile(
        profile([allow(['recv', 'mmap2', 'arm_fadvise64_64'])], { architectures: ['SCMP_ARCH_X86_64'] }),
        'p',
      ),
    ).not.toThrow();
  });

  it('takes 64-bit argument values as bigint', () => {
    const parsed = parseProfile(
      profile([allow(['read'], { args: [{ index: 1, value: 0xffff_ffff_ffff_ffffn, op: 'SCMP_CMP_EQ' }] })]),
      'p',
    );
    expect(parsed.syscalls?.[0]?.args?.[0]?.value).toBe(0xffff_ffff_ffff_ffffn);
  });
});

describe('resolveProfile', () => {
  const docker: DockerProfile = {
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: 1,
    archMap: [
      { architecture: 'SCMP_ARCH_X86_64', subArchitectures: ['SCMP_ARCH_X86', 'SCMP_ARCH_X32'] },
      { architecture: 'SCMP_ARCH_AARCH64', subArchitectures: ['SCMP_ARCH_ARM'] },
    ],
    syscalls: [
      { names: ['read'], action: 'SCMP_ACT_ALLOW' },
      { names: ['ptrace'], action: 'SCMP_ACT_ALLOW', includes: { minKernel: '4.8' } },
      { names: ['mount'], action: 'SCMP_ACT_ALLOW', includes: { caps: ['CAP_SYS_ADMIN'] } },
      {
        names: ['kexec_load'],
        action: 'SCMP_ACT_ALLOW',
        includes: { caps: ['CAP_SYS_ADMIN', 'CAP_SYS_BOOT'] },
      },
      {
        names: ['clone'],
        action: 'SCMP_ACT_ALLOW',
        args: [{ index: 0, value: 0x7e020000, op: 'SCMP_CMP_MASKED_EQ' }],
        excludes: { caps: ['CAP_SYS_ADMIN'], arches: ['s390x'] },
      },
      { names: ['arch_prctl'], action: 'SCMP_ACT_ALLOW', includes: { arches: ['amd64', 'x32'] } },
      { names: ['set_tls'], action: 'SCMP_ACT_ALLOW', includes: { arches: ['arm', 'arm64'] } },
      { names: ['epoll_wait_old'], action: 'SCMP_ACT_LOG', excludes: { minKernel: '5.0' } },
    ],
  };
  const names = (seccomp: { syscalls?: { names: string[] }[] }) => seccomp.syscalls?.flatMap((s) => s.names);

  it('keeps the groups that the capabilities, architecture and kernel select', () => {
    const plain = resolveProfile(docker, {
      capabilities: ['CAP_CHOWN'],
      arch: 'x64',
      kernel: '6.18.0-1-amd64',
    });
    expect(plain).toEqual({
      defaultAction: 'SCMP_ACT_ERRNO',
      defaultErrnoRet: 1,
      architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
      syscalls: [
        { names: ['read'], action: 'SCMP_ACT_ALLOW' },
        { names: ['ptrace'], action: 'SCMP_ACT_ALLOW' },
        {
          names: ['clone'],
          action: 'SCMP_ACT_ALLOW',
          args: [{ index: 0, value: 0x7e020000, op: 'SCMP_CMP_MASKED_EQ' }],
        },
        { names: ['arch_prctl'], action: 'SCMP_ACT_ALLOW' },
      ],
    });
    // includes.caps needs all of them; excludes.caps drops on any; names with or without CAP_.
    expect(
      names(resolveProfile(docker, { capabilities: ['sys_admin'], arch: 'x64', kernel: '6.1' })),
    ).toEqual(['read', 'ptrace', 'mount', 'arch_prctl']);
    expect(
      names(
        resolveProfile(docker, {
          capabilities: ['CAP_SYS_ADMIN', 'CAP_SYS_BOOT'],
          arch: 'x64',
          kernel: '6.1',
        }),
      ),
    ).toContain('kexec_load');
    // minKernel: the first two numbers of the release, compared as numbers.
    expect(names(resolveProfile(docker, { capabilities: [], arch: 'x64', kernel: '4.7.10' }))).toEqual([
      'read',
      'clone',
      'arch_prctl',
      'epoll_wait_old',
    ]);
    expect(names(resolveProfile(docker, { capabilities: [], arch: 'x64', kernel: '4.10.0' }))).toContain(
      'ptrace',
    );
  });

  it("takes the architectures of the native one's archMap entry", () => {
    const arm = resolveProfile(docker, { capabilities: [], arch: 'arm64', kernel: '6.1' });
    expect(arm.architectures).toEqual(['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM']);
    expect(names(arm)).toEqual(['read', 'ptrace', 'clone', 'set_tls']);
    // No entry for the machine: no architectures, i.e. the native one only.
    expect(
      resolveProfile(docker, { capabilities: [], arch: 's390x', kernel: '6.1' }).architectures,
    ).toBeUndefined();
  });

  it('passes the OCI form through', () => {
    const oci = {
      defaultAction: 'SCMP_ACT_KILL_PROCESS' as const,
      architectures: ['SCMP_ARCH_X86_64' as const],
      flags: ['SECCOMP_FILTER_FLAG_TSYNC' as const],
      syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW' as const }],
    };
    expect(resolveProfile(oci, { capabilities: [] })).toEqual(oci);
  });

  it('refuses a minKernel when the running kernel has no version it can read', () => {
    expect(() => resolveProfile(docker, { capabilities: [], arch: 'x64', kernel: 'weird' })).toThrow(
      /cannot tell the kernel version from "weird"/,
    );
  });
});
