import { describe, expect, it } from 'vitest';
import { DEFAULT_CAPABILITIES } from '../spec.js';
import { describeAction } from './actions.js';
import { runFilter } from './bpf-interpreter.test-helper.js';
import { compileSeccomp } from './compile.js';
import { DOCKER_DEFAULT_PROFILE } from './default-profile.js';
import { parseProfile, resolveProfile } from './profile.js';
import { syscallTable } from './syscalls.js';

const X86_64 = 0xc000003e;
const I386 = 0x40000003;
type Abi = 'x86_64' | 'x86' | 'x32';
const AUDIT: Record<Abi, number> = { x86_64: X86_64, x86: I386, x32: X86_64 };

const CLONE_NEWNS = 0x00020000;
const CLONE_NEWUSER = 0x10000000;
const CLONE_NEWNET = 0x40000000;
const FORK_FLAGS = 0x01200011; // CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID | SIGCHLD, glibc's fork
const THREAD_FLAGS = 0x003d0f00; // glibc's pthread_create
const AF_INET = 2;
const AF_VSOCK = 40;

/** The filter docker's default profile gives a container with these capabilities on x86_64. */
function dockerFilter(capabilities: readonly string[], kernel?: string): Buffer {
  const seccomp = resolveProfile(DOCKER_DEFAULT_PROFILE, { capabilities, arch: 'x64', kernel });
  return compileSeccomp(seccomp, { arch: 'x64' }).filter;
}

function verdict(filter: Buffer, name: string, args: number[] = [], abi: Abi = 'x86_64'): string {
  const nr = syscallTable(abi).get(name);
  if (nr === undefined) throw new Error(`no ${name} on ${abi}`);
  return describeAction(runFilter(filter, { nr, arch: AUDIT[abi], args }));
}

const ALLOW = 'SCMP_ACT_ALLOW';
const EPERM = 'SCMP_ACT_ERRNO(1 EPERM)';
const ENOSYS = 'SCMP_ACT_ERRNO(38 ENOSYS)';

describe("docker's default profile", () => {
  it('is valid in its own format', () => {
    expect(parseProfile(JSON.parse(JSON.stringify(DOCKER_DEFAULT_PROFILE)), 'default')).toEqual(
      DOCKER_DEFAULT_PROFILE,
    );
  });

  describe("for a root container with docker's default capabilities on x86_64", () => {
    const filter = dockerFilter(DEFAULT_CAPABILITIES);

    it('denies what the capabilities leave out, with EPERM', () => {
      for (const name of [
        'unshare',
        'mount',
        'umount2',
        'keyctl',
        'add_key',
        'request_key',
        'bpf',
        'perf_event_open',
        'kexec_load',
        'kexec_file_load',
        'init_module',
        'finit_module',
        'delete_module',
        'open_by_handle_at',
        'setns',
        'pivot_root',
        'swapon',
        'swapoff',
        'reboot',
        'acct',
        'clock_settime',
        'settimeofday',
        'iopl',
        'ioperm',
        'syslog',
        'sethostname',
        'fsopen',
        'open_tree',
        'move_mount',
        'userfaultfd',
        'io_uring_setup',
        'io_uring_enter',
        'kcmp',
        'pidfd_getfd',
        'mbind',
        'vhangup',
        'lookup_dcookie',
      ])
        expect([name, verdict(filter, name)]).toEqual([name, EPERM]);
    });

    it('allows what programs need, ptrace on this kernel (>= 4.8), chroot with CAP_SYS_CHROOT', () => {
      for (const name of [
        'read',
        'write',
        'openat',
        'execve',
        'fork',
        'vfork',
        'exit_group',
        'mmap',
        'futex',
        'epoll_wait',
        'rt_sigreturn',
        'fchmodat2',
        'futex_wake',
        'cachestat',
        'map_shadow_stack',
        'name_to_handle_at',
        'arch_prctl',
        'modify_ldt',
        'seccomp',
        'ptrace',
        'process_vm_readv',
        'chroot',
      ])
        expect([name, verdict(filter, name)]).toEqual([name, ALLOW]);
    });

    it('allows clone without CLONE_NEW* flags, denies it with any; clone3 gets ENOSYS', () => {
      expect(verdict(filter, 'clone', [FORK_FLAGS])).toBe(ALLOW);
      expect(verdict(filter, 'clone', [THREAD_FLAGS])).toBe(ALLOW);
      expect(verdict(filter, 'clone', [FORK_FLAGS | CLONE_NEWUSER])).toBe(EPERM);
      expect(verdict(filter, 'clone', [CLONE_NEWNS])).toBe(EPERM);
      expect(verdict(filter, 'clone', [CLONE_NEWNET])).toBe(EPERM);
      expect(verdict(filter, 'clone3')).toBe(ENOSYS);
    });

    it('allows sockets but AF_VSOCK, and the personalities programs use', () => {
      expect(verdict(filter, 'socket', [AF_INET, 1, 0])).toBe(ALLOW);
      expect(verdict(filter, 'socket', [AF_VSOCK, 1, 0])).toBe(EPERM);
      for (const persona of [0, 8, 0x20000, 0x20008, 0xffffffff])
        expect([persona, verdict(filter, 'personality', [persona])]).toEqual([persona, ALLOW]);
      expect(verdict(filter, 'personality', [0x0400000])).toBe(EPERM); // READ_IMPLIES_EXEC
    });

    it('applies to i386 and x32 calls in their own numbering', () => {
      for (const abi of ['x86', 'x32'] as const) {
        expect([abi, verdict(filter, 'read', [], abi)]).toEqual([abi, ALLOW]);
        expect([abi, verdict(filter, 'mount', [], abi)]).toEqual([abi, EPERM]);
        expect([abi, verdict(filter, 'unshare', [], abi)]).toEqual([abi, EPERM]);
        expect([abi, verdict(filter, 'clone', [CLONE_NEWUSER], abi)]).toEqual([abi, EPERM]);
        expect([abi, verdict(filter, 'clone', [FORK_FLAGS], abi)]).toEqual([abi, ALLOW]);
        expect([abi, verdict(filter, 'clone3', [], abi)]).toEqual([abi, ENOSYS]);
        expect([abi, verdict(filter, 'keyctl', [], abi)]).toEqual([abi, EPERM]);
      }
      expect(verdict(filter, 'mmap2', [], 'x86')).toBe(ALLOW);
      expect(verdict(filter, 'socketcall', [], 'x86')).toBe(ALLOW);
    });

    it('has a program of a few hundred instructions', () => {
      const length = filter.length / 8;
      expect(length).toBeGreaterThan(100);
      expect(length).toBeLessThan(1000);
    });
  });

  it('opens mount, unshare, setns, ... with CAP_SYS_ADMIN', () => {
    const filter = dockerFilter([...DEFAULT_CAPABILITIES, 'CAP_SYS_ADMIN']);
    for (const name of [
      'mount',
      'umount2',
      'unshare',
      'setns',
      'sethostname',
      'bpf',
      'perf_event_open',
      'fsopen',
      'clone3',
    ])
      expect([name, verdict(filter, name)]).toEqual([name, ALLOW]);
    expect(verdict(filter, 'clone', [CLONE_NEWUSER | CLONE_NEWNS])).toBe(ALLOW);
    // Still closed: no capability opens these.
    for (const name of ['keyctl', 'add_key', 'kexec_load', 'pivot_root', 'swapon', 'userfaultfd'])
      expect([name, verdict(filter, name)]).toEqual([name, EPERM]);
  });

  it('opens each capability group with its capability', () => {
    const groups: [cap: string, names: string[]][] = [
      ['CAP_DAC_READ_SEARCH', ['open_by_handle_at']],
      ['CAP_SYS_BOOT', ['reboot']],
      ['CAP_SYS_MODULE', ['init_module', 'finit_module', 'delete_module']],
      ['CAP_SYS_PACCT', ['acct']],
      ['CAP_SYS_PTRACE', ['kcmp', 'pidfd_getfd', 'process_madvise']],
      ['CAP_SYS_RAWIO', ['iopl', 'ioperm']],
      ['CAP_SYS_TIME', ['settimeofday', 'clock_settime']],
      ['CAP_SYS_TTY_CONFIG', ['vhangup']],
      ['CAP_SYS_NICE', ['get_mempolicy', 'mbind', 'set_mempolicy', 'set_mempolicy_home_node']],
      ['CAP_SYSLOG', ['syslog']],
      ['CAP_BPF', ['bpf']],
      ['CAP_PERFMON', ['perf_event_open']],
    ];
    const base = dockerFilter(DEFAULT_CAPABILITIES);
    for (const [cap, names] of groups) {
      const filter = dockerFilter([...DEFAULT_CAPABILITIES, cap]);
      for (const name of names) {
        expect([cap, name, verdict(base, name)]).toEqual([cap, name, EPERM]);
        expect([cap, name, verdict(filter, name)]).toEqual([cap, name, ALLOW]);
      }
      expect([cap, verdict(filter, 'mount')]).toEqual([cap, EPERM]);
    }
    // Without CAP_SYS_CHROOT, no chroot.
    expect(verdict(dockerFilter(DEFAULT_CAPABILITIES.filter((c) => c !== 'CAP_SYS_CHROOT')), 'chroot')).toBe(
      EPERM,
    );
  });

  it('denies ptrace before Linux 4.8 unless CAP_SYS_PTRACE', () => {
    expect(verdict(dockerFilter(DEFAULT_CAPABILITIES, '4.4.0-210-generic'), 'ptrace')).toBe(EPERM);
    expect(verdict(dockerFilter([...DEFAULT_CAPABILITIES, 'CAP_SYS_PTRACE'], '4.4.0'), 'ptrace')).toBe(ALLOW);
    expect(verdict(dockerFilter(DEFAULT_CAPABILITIES, '4.8.0'), 'ptrace')).toBe(ALLOW);
  });
});
