import { describe, expect, it } from 'vitest';
import { SeccompError } from '../errors.js';
import { actionValue, describeAction, SECCOMP_RET } from './actions.js';
import { checkFilter, execute, loadFilter, runFilter } from './bpf-interpreter.test-helper.js';
import { compileSeccomp } from './compile.js';
import { syscallTable } from './syscalls.js';
import type { LinuxSeccomp, LinuxSeccompArg, SeccompAction, SeccompArch, SeccompOperator } from './types.js';

const X86_64 = 0xc000003e;
const I386 = 0x40000003;
const AARCH64 = 0xc00000b7;
const ARM = 0x40000028;
const ALL_ACTIONS = ['kill_process', 'kill_thread', 'trap', 'errno', 'user_notif', 'trace', 'log', 'allow'];
const X86_ALL: SeccompArch[] = ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'];

const ALLOW = SECCOMP_RET.ALLOW;
const EPERM = SECCOMP_RET.ERRNO | 1;
const KILL_PROCESS = SECCOMP_RET.KILL_PROCESS;

const compile = (seccomp: LinuxSeccomp, arch: NodeJS.Architecture = 'x64') =>
  compileSeccomp(seccomp, { arch, availableActions: ALL_ACTIONS });

const nr = (name: string, table: 'x86_64' | 'x86' | 'x32' | 'aarch64' = 'x86_64') =>
  syscallTable(table).get(name)!;

/** Runs `filter` for an x86_64 call of `name` with these arguments. */
const call = (filter: Buffer, name: string, args: (bigint | number)[] = []) =>
  runFilter(filter, { nr: nr(name), arch: X86_64, args });

function error(f: () => unknown): SeccompError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(SeccompError);
    expect((e as SeccompError).code).toBe('ESECCOMP');
    return e as SeccompError;
  }
  throw new Error('no error');
}

describe('compileSeccomp', () => {
  it('returns each action as its SECCOMP_RET value', () => {
    const seccomp: LinuxSeccomp = {
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [
        { names: ['mkdir'], action: 'SCMP_ACT_KILL' },
        { names: ['rmdir'], action: 'SCMP_ACT_KILL_THREAD' },
        { names: ['mount'], action: 'SCMP_ACT_KILL_PROCESS' },
        { names: ['umount2'], action: 'SCMP_ACT_TRAP' },
        { names: ['unshare'], action: 'SCMP_ACT_ERRNO' },
        { names: ['setns'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 },
        { names: ['ptrace'], action: 'SCMP_ACT_TRACE', errnoRet: 7 },
        { names: ['kcmp'], action: 'SCMP_ACT_TRACE' },
        { names: ['bpf'], action: 'SCMP_ACT_LOG' },
      ],
    };
    const { filter, flags } = compile(seccomp);
    expect(flags).toBe(0);
    expect(call(filter, 'mkdir')).toBe(0);
    expect(call(filter, 'rmdir')).toBe(0);
    expect(call(filter, 'mount')).toBe(0x80000000);
    expect(call(filter, 'umount2')).toBe(0x00030000);
    expect(call(filter, 'unshare')).toBe(0x00050001); // EPERM by default
    expect(call(filter, 'setns')).toBe(0x00050026);
    expect(call(filter, 'ptrace')).toBe(0x7ff00007);
    expect(call(filter, 'kcmp')).toBe(0x7ff00001); // runc's default: EPERM
    expect(call(filter, 'bpf')).toBe(0x7ffc0000);
    expect(call(filter, 'read')).toBe(0x7fff0000);
    expect(describeAction(call(filter, 'setns'))).toBe('SCMP_ACT_ERRNO(38 ENOSYS)');
    expect(describeAction(call(filter, 'ptrace'))).toBe('SCMP_ACT_TRACE(7)');
    expect(describeAction(call(filter, 'mount'))).toBe('SCMP_ACT_KILL_PROCESS');
    expect(describeAction(call(filter, 'mkdir'))).toBe('SCMP_ACT_KILL_THREAD');
    expect(describeAction(0x12345678)).toBe('unknown action 0x12345678');
  });

  it('gives the default action, with defaultErrnoRet, to every other syscall and number', () => {
    const { filter } = compile({
      defaultAction: 'SCMP_ACT_ERRNO',
      defaultErrnoRet: 38,
      syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW' }],
    });
    expect(call(filter, 'read')).toBe(ALLOW);
    for (const n of [nr('write'), nr('read') + 2, 447, 1000, 0x3fffffff])
      expect(runFilter(filter, { nr: n, arch: X86_64 })).toBe(SECCOMP_RET.ERRNO | 38);
  });

  it('sets the flags the profile asks for', () => {
    const flags = (names: LinuxSeccomp['flags']) =>
      compile({ defaultAction: 'SCMP_ACT_ALLOW', flags: names }).flags;
    expect(flags(['SECCOMP_FILTER_FLAG_TSYNC'])).toBe(1);
    expect(flags(['SECCOMP_FILTER_FLAG_LOG', 'SECCOMP_FILTER_FLAG_SPEC_ALLOW'])).toBe(6);
    expect(flags(['SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV'])).toBe(32);
  });

  describe('architectures', () => {
    const seccomp = (architectures?: SeccompArch[]): LinuxSeccomp => ({
      defaultAction: 'SCMP_ACT_ERRNO',
      architectures,
      syscalls: [{ names: ['getpid', 'mmap2'], action: 'SCMP_ACT_ALLOW' }],
    });

    it('kills a call of an ABI the profile does not list', () => {
      const { filter } = compile(seccomp(['SCMP_ARCH_X86_64']));
      expect(runFilter(filter, { nr: nr('getpid'), arch: X86_64 })).toBe(ALLOW);
      expect(runFilter(filter, { nr: nr('getpid', 'x86'), arch: I386 })).toBe(KILL_PROCESS);
      for (const arch of [AARCH64, ARM, 0, 0xffffffff, X86_64 ^ 1])
        expect(runFilter(filter, { nr: nr('getpid'), arch })).toBe(KILL_PROCESS);
    });

    it('kills x32 calls (x86_64 arch, nr with 0x40000000) unless X32 is listed', () => {
      const { filter } = compile(seccomp(['SCMP_ARCH_X86_64']));
      expect(runFilter(filter, { nr: nr('getpid', 'x32'), arch: X86_64 })).toBe(KILL_PROCESS);
      expect(runFilter(filter, { nr: 0x40000000, arch: X86_64 })).toBe(KILL_PROCESS);
      expect(runFilter(filter, { nr: 0x7fffffff, arch: X86_64 })).toBe(KILL_PROCESS);
      // -1, which a tracer sets to skip a call, is x86_64's: the default action.
      expect(runFilter(filter, { nr: -1, arch: X86_64 })).toBe(EPERM);
      const x32 = compile(seccomp(X86_ALL)).filter;
      expect(runFilter(x32, { nr: nr('getpid', 'x32'), arch: X86_64 })).toBe(ALLOW);
      expect(runFilter(x32, { nr: nr('getpid', 'x32') + 1, arch: X86_64 })).toBe(EPERM);
      expect(runFilter(x32, { nr: -1, arch: X86_64 })).toBe(EPERM);
      // x32's numbering is its own: x86_64's getpid number with the bit is not getpid.
      expect(runFilter(x32, { nr: nr('getpid', 'x86_64'), arch: X86_64 })).toBe(ALLOW);
      expect(runFilter(x32, { nr: 0x40000000 | nr('mmap2', 'x86'), arch: X86_64 })).toBe(EPERM);
    });

    it('numbers each ABI with its own table, and skips the names it lacks', () => {
      const { filter } = compile(seccomp(X86_ALL));
      expect(runFilter(filter, { nr: nr('getpid', 'x86'), arch: I386 })).toBe(ALLOW);
      expect(runFilter(filter, { nr: nr('mmap2', 'x86'), arch: I386 })).toBe(ALLOW);
      // mmap2 is no x86_64 syscall; its i386 number (192) is x86_64's getpgid.
      expect(runFilter(filter, { nr: nr('mmap2', 'x86'), arch: X86_64 })).toBe(EPERM);
    });

    it('always has a section for the native ABI, as libseccomp does', () => {
      const { filter } = compile(seccomp(['SCMP_ARCH_X86']));
      expect(runFilter(filter, { nr: nr('getpid'), arch: X86_64 })).toBe(ALLOW);
      expect(runFilter(filter, { nr: nr('getpid', 'x86'), arch: I386 })).toBe(ALLOW);
      expect(runFilter(filter, { nr: nr('getpid', 'x32'), arch: X86_64 })).toBe(KILL_PROCESS);
      // No architectures at all: the native one only.
      const native = compile(seccomp()).filter;
      expect(runFilter(native, { nr: nr('getpid'), arch: X86_64 })).toBe(ALLOW);
      expect(runFilter(native, { nr: nr('getpid', 'x86'), arch: I386 })).toBe(KILL_PROCESS);
    });

    it('compiles for arm64, killing 32-bit ARM (no table here)', () => {
      const { filter } = compile(seccomp(['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM']), 'arm64');
      expect(runFilter(filter, { nr: nr('getpid', 'aarch64'), arch: AARCH64 })).toBe(ALLOW);
      expect(runFilter(filter, { nr: nr('getpid', 'aarch64') + 1, arch: AARCH64 })).toBe(EPERM);
      expect(runFilter(filter, { nr: 20, arch: ARM })).toBe(KILL_PROCESS);
      expect(runFilter(filter, { nr: nr('getpid'), arch: X86_64 })).toBe(KILL_PROCESS);
    });

    it('refuses an architecture it has no table for', () => {
      expect(error(() => compile(seccomp(), 's390x')).message).toMatch(/not supported on s390x/);
    });
  });

  describe('argument comparisons', () => {
    /** A filter that allows `read` when `arg` holds of argument 1, and gives EPERM otherwise. */
    const filterFor = (arg: Omit<LinuxSeccompArg, 'index'>, architectures?: SeccompArch[]) =>
      compile({
        defaultAction: 'SCMP_ACT_ERRNO',
        architectures,
        syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW', args: [{ index: 1, ...arg }] }],
      }).filter;
    const holds = (filter: Buffer, value: bigint, arch = X86_64, table: 'x86_64' | 'x86' = 'x86_64') =>
      runFilter(filter, { nr: nr('read', table), arch, args: [0xdeadn, value, 0xbeefn] }) === ALLOW;

    const U64 = 0xffff_ffff_ffff_ffffn;
    const values = [
      0n,
      1n,
      2n,
      0x7fffffffn,
      0x80000000n,
      0xfffffffen,
      0xffffffffn,
      0x1_0000_0000n,
      0x1_0000_0001n,
      0x1_ffff_ffffn,
      0x2_0000_0000n,
      0x7fff_ffff_ffff_ffffn,
      0x8000_0000_0000_0000n,
      0xffff_ffff_0000_0000n,
      U64 - 1n,
      U64,
    ];
    const ops: Record<Exclude<SeccompOperator, 'SCMP_CMP_MASKED_EQ'>, (a: bigint, b: bigint) => boolean> = {
      SCMP_CMP_EQ: (a, b) => a === b,
      SCMP_CMP_NE: (a, b) => a !== b,
      SCMP_CMP_LT: (a, b) => a < b,
      SCMP_CMP_LE: (a, b) => a <= b,
      SCMP_CMP_GT: (a, b) => a > b,
      SCMP_CMP_GE: (a, b) => a >= b,
    };

    for (const [op, f] of Object.entries(ops)) {
      it(`${op} compares unsigned 64-bit values, high word then low word`, () => {
        for (const value of values) {
          const filter = filterFor({ value, op: op as SeccompOperator });
          for (const arg of values)
            expect([op, arg, value, holds(filter, arg)]).toEqual([op, arg, value, f(arg, value)]);
          // Values that differ only in the high word.
          for (const arg of [value ^ (1n << 32n), value ^ (1n << 63n)])
            expect([op, arg, value, holds(filter, arg)]).toEqual([op, arg, value, f(arg, value)]);
        }
      });
    }

    it('SCMP_CMP_MASKED_EQ: (arg & value) == valueTwo on both words', () => {
      const cases: [mask: bigint, expected: bigint][] = [
        [0x7e020000n, 0n], // docker's clone rule
        [0xffn, 0x10n],
        [0xffff_ffff_0000_0000n, 0x1_0000_0000n],
        [0x1_0000_00ffn, 0x1_0000_0001n],
        [U64, 0xdead_beef_0000_0001n],
        [0xffffffffn, 5n],
        [0n, 0n], // always
        [0xf0n, 0x0fn], // never: expected has bits outside the mask
      ];
      for (const [mask, expected] of cases) {
        const filter = filterFor({ value: mask, valueTwo: expected, op: 'SCMP_CMP_MASKED_EQ' });
        for (const arg of [
          ...values,
          expected,
          expected | ~mask,
          expected ^ (1n << 32n),
          0x7e020000n,
          0x10000000n,
        ]) {
          const a = BigInt.asUintN(64, arg);
          expect([mask, expected, a, holds(filter, a)]).toEqual([mask, expected, a, (a & mask) === expected]);
        }
      }
      // valueTwo defaults to 0, as in docker's clone rule.
      const clone = filterFor({ value: 0x7e020000, op: 'SCMP_CMP_MASKED_EQ' });
      expect(holds(clone, 0x01200011n)).toBe(true); // fork's SIGCHLD|CLONE_CHILD_*
      expect(holds(clone, 0x10000000n)).toBe(false); // CLONE_NEWUSER
    });

    it('compares the low word only for i386, whose kernel entry ignores the high one', () => {
      const arch: SeccompArch[] = ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86'];
      const i386 = (filter: Buffer, value: bigint) => holds(filter, value, I386, 'x86');
      const ne = filterFor({ value: 40, op: 'SCMP_CMP_NE' }, arch);
      expect(i386(ne, 40n)).toBe(false);
      // High bits set by 64-bit code before a far jump to 32-bit code do not make 40 pass.
      expect(i386(ne, 0xdead_0000_0000_0028n)).toBe(false);
      expect(holds(ne, 0xdead_0000_0000_0028n)).toBe(true); // x86_64: the kernel has all 64 bits
      expect(i386(ne, 41n)).toBe(true);
      // A value above 32 bits can't equal a 32-bit argument: EQ never holds, LT always does.
      const eq = filterFor({ value: 0x1_0000_0028n, op: 'SCMP_CMP_EQ' }, arch);
      expect(i386(eq, 0x1_0000_0028n)).toBe(false);
      expect(i386(eq, 0x28n)).toBe(false);
      expect(holds(eq, 0x1_0000_0028n)).toBe(true);
      const lt = filterFor({ value: 0x1_0000_0000n, op: 'SCMP_CMP_LT' }, arch);
      expect(i386(lt, 0xffff_ffff_ffff_ffffn)).toBe(true);
      const ge = filterFor({ value: 5n, op: 'SCMP_CMP_GE' }, arch);
      expect(i386(ge, 0xffff_0000_0000_0001n)).toBe(false);
      expect(i386(ge, 5n)).toBe(true);
      const masked = filterFor({ value: 0xffn, valueTwo: 0x1_0000_0000n, op: 'SCMP_CMP_MASKED_EQ' }, arch);
      expect(i386(masked, 0x1_0000_0000n)).toBe(false);
    });

    it('ANDs the comparisons of a rule; the first rule that holds decides', () => {
      const { filter } = compile({
        defaultAction: 'SCMP_ACT_ERRNO',
        defaultErrnoRet: 22,
        syscalls: [
          {
            names: ['socket'],
            action: 'SCMP_ACT_ERRNO',
            errnoRet: 97, // EAFNOSUPPORT for AF_NETLINK (16) + NETLINK_AUDIT (9)
            args: [
              { index: 0, value: 16, op: 'SCMP_CMP_EQ' },
              { index: 2, value: 9, op: 'SCMP_CMP_EQ' },
            ],
          },
          { names: ['socket'], action: 'SCMP_ACT_LOG', args: [{ index: 0, value: 16, op: 'SCMP_CMP_EQ' }] },
          { names: ['socket'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 10, op: 'SCMP_CMP_LE' }] },
          { names: ['socket'], action: 'SCMP_ACT_TRAP' },
          { names: ['socket'], action: 'SCMP_ACT_KILL' }, // never reached
        ],
      });
      expect(call(filter, 'socket', [16, 3, 9])).toBe(SECCOMP_RET.ERRNO | 97);
      expect(call(filter, 'socket', [16, 3, 0])).toBe(SECCOMP_RET.LOG);
      expect(call(filter, 'socket', [2, 1, 0])).toBe(ALLOW);
      expect(call(filter, 'socket', [40, 1, 0])).toBe(SECCOMP_RET.TRAP);
      expect(call(filter, 'read')).toBe(SECCOMP_RET.ERRNO | 22);
    });
  });

  describe('against a model of the semantics', () => {
    // The semantics written down plainly: the ABI from (arch, nr), killed unless the profile has
    // it (x86_64 always); then the first rule naming the syscall whose comparisons all hold,
    // on 64 bits (x86_64, x32) or on the low 32 (i386); else the default action.
    type Abi = 'x86_64' | 'x86' | 'x32';
    function model(seccomp: LinuxSeccomp, arch: number, nr: number, args: bigint[]): number {
      let abi: Abi | undefined;
      if (arch === X86_64) abi = nr >>> 0 >= 0x40000000 && nr >>> 0 !== 0xffffffff ? 'x32' : 'x86_64';
      else if (arch === I386) abi = 'x86';
      const listed = new Set(seccomp.architectures ?? []);
      const has = { x86_64: true, x86: listed.has('SCMP_ARCH_X86'), x32: listed.has('SCMP_ARCH_X32') };
      if (!abi || !has[abi]) return KILL_PROCESS;
      const table = syscallTable(abi);
      for (const rule of seccomp.syscalls ?? []) {
        if (!rule.names.some((name) => table.get(name) === nr >>> 0)) continue;
        const holds = (rule.args ?? []).every((c) => {
          const a = abi === 'x86' ? args[c.index]! & 0xffffffffn : args[c.index]!;
          const v = BigInt(c.value);
          switch (c.op) {
            case 'SCMP_CMP_EQ':
              return a === v;
            case 'SCMP_CMP_NE':
              return a !== v;
            case 'SCMP_CMP_LT':
              return a < v;
            case 'SCMP_CMP_LE':
              return a <= v;
            case 'SCMP_CMP_GT':
              return a > v;
            case 'SCMP_CMP_GE':
              return a >= v;
            case 'SCMP_CMP_MASKED_EQ':
              return (a & v) === BigInt(c.valueTwo ?? 0);
            default:
              throw new Error(`op ${c.op}`);
          }
        });
        if (holds) return actionValue(rule.action, rule.errnoRet);
      }
      return actionValue(seccomp.defaultAction, seccomp.defaultErrnoRet);
    }

    // A seeded generator (mulberry32): the same cases on every run.
    let seed = 0x5ecc0;
    const random = () => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
    };
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
    const VALUES = [
      0n,
      1n,
      2n,
      40n,
      0xffn,
      0x7fffffffn,
      0x80000000n,
      0xffffffffn,
      0x1_0000_0000n,
      0x1_0000_0028n,
    ];
    const LARGE = [0xffff_ffff_0000_0000n, 0x8000_0000_0000_0000n, 0xffff_ffff_ffff_ffffn];
    const NAMES = [
      'read',
      'write',
      'openat',
      'clone',
      'socket',
      'mmap2',
      'arch_prctl',
      'socketcall',
      'ioctl',
      'getpid',
      'execve',
      'personality',
    ];
    const OPS: SeccompOperator[] = [
      'SCMP_CMP_EQ',
      'SCMP_CMP_NE',
      'SCMP_CMP_LT',
      'SCMP_CMP_LE',
      'SCMP_CMP_GT',
      'SCMP_CMP_GE',
      'SCMP_CMP_MASKED_EQ',
    ];
    const ACTIONS: SeccompAction[] = [
      'SCMP_ACT_ALLOW',
      'SCMP_ACT_ERRNO',
      'SCMP_ACT_LOG',
      'SCMP_ACT_TRAP',
      'SCMP_ACT_KILL_PROCESS',
      'SCMP_ACT_TRACE',
    ];
    const value = () => (random() < 0.15 ? pick(LARGE) : pick(VALUES) ^ (random() < 0.2 ? 1n << 32n : 0n));

    function randomProfile(): LinuxSeccomp {
      const arches: SeccompArch[] = ['SCMP_ARCH_X86_64'];
      if (random() < 0.6) arches.push('SCMP_ARCH_X86');
      if (random() < 0.6) arches.push('SCMP_ARCH_X32');
      return {
        defaultAction: pick(ACTIONS),
        defaultErrnoRet: random() < 0.5 ? Math.floor(random() * 200) : undefined,
        architectures: arches,
        syscalls: Array.from({ length: 1 + Math.floor(random() * 10) }, () => ({
          names: Array.from({ length: 1 + Math.floor(random() * 3) }, () => pick(NAMES)),
          action: pick(ACTIONS),
          errnoRet: random() < 0.5 ? Math.floor(random() * 200) : undefined,
          args: Array.from({ length: Math.floor(random() * 4) }, () => {
            const op = pick(OPS);
            const arg: LinuxSeccompArg = { index: Math.floor(random() * 3), value: value(), op };
            if (op === 'SCMP_CMP_MASKED_EQ') arg.valueTwo = random() < 0.5 ? 0n : BigInt(arg.value) & value();
            return arg;
          }),
        })),
      };
    }

    it('agrees with it on random profiles, calls and arguments', () => {
      for (let n = 0; n < 150; n++) {
        const seccomp = randomProfile();
        const run = loadFilter(compile(seccomp).filter);
        const calls: [arch: number, nr: number][] = [
          [AARCH64, 63],
          [X86_64, -1],
          [X86_64, 0x40000000 + 9999],
          [I386, 9999],
          [X86_64, 9999],
        ];
        for (const abi of ['x86_64', 'x86', 'x32'] as const)
          for (const name of NAMES) {
            const n = syscallTable(abi).get(name);
            if (n !== undefined) calls.push([abi === 'x86' ? I386 : X86_64, n]);
          }
        for (const [arch, nr] of calls)
          for (let k = 0; k < 6; k++) {
            const args = [value(), value(), value()];
            // Now and then, exactly the values the rules compare with.
            const rule = pick(seccomp.syscalls ?? []);
            for (const c of rule?.args ?? [])
              if (random() < 0.7) args[c.index] = BigInt(c.valueTwo ?? c.value);
            const got = run({ nr, arch, args }).ret;
            const want = model(seccomp, arch, nr, args);
            if (got !== want)
              throw new Error(
                `profile ${JSON.stringify(seccomp, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v))}\narch ${arch} nr ${nr} args ${args}: got ${describeAction(got)}, want ${describeAction(want)}`,
              );
          }
      }
    });
  });

  describe('the program', () => {
    it('searches: a call runs a handful of instructions, not one per syscall', () => {
      const { filter } = compile({
        defaultAction: 'SCMP_ACT_ERRNO',
        architectures: X86_ALL,
        // Every other x86_64 syscall: hundreds of ranges, subtrees beyond jt's 255.
        syscalls: [
          {
            names: [...syscallTable('x86_64').entries()].filter(([, n]) => n % 2 === 0).map(([name]) => name),
            action: 'SCMP_ACT_ALLOW',
          },
        ],
      });
      const program = checkFilter(filter);
      expect(program.some((insn) => insn.code === 0x35 && insn.jt === 0 && insn.jf === 1)).toBe(true);
      for (const [name, n] of syscallTable('x86_64')) {
        const { ret, steps } = execute(filter, { nr: n, arch: X86_64 });
        expect([name, ret]).toEqual([name, n % 2 === 0 ? ALLOW : EPERM]);
        expect(steps).toBeLessThan(25);
      }
    });

    it('is the same, as a copy, when compiled again', () => {
      const seccomp: LinuxSeccomp = {
        defaultAction: 'SCMP_ACT_ALLOW',
        syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO' }],
      };
      const first = compile(seccomp);
      first.filter.fill(0);
      const second = compile(seccomp);
      expect(call(second.filter, 'mkdir')).toBe(EPERM);
      expect(second.filter).not.toBe(compile(seccomp).filter);
    });

    it('is refused beyond the 4096 instructions the kernel takes', () => {
      const many: LinuxSeccomp = {
        defaultAction: 'SCMP_ACT_ERRNO',
        architectures: X86_ALL,
        syscalls: [...syscallTable('x86_64').keys()].map((name, i) => ({
          names: [name],
          action: 'SCMP_ACT_ALLOW' as const,
          args: [
            { index: 0, value: i, op: 'SCMP_CMP_GT' as const },
            { index: 1, value: i, op: 'SCMP_CMP_NE' as const },
          ],
        })),
      };
      expect(error(() => compile(many)).message).toMatch(
        /^the seccomp filter is \d+ instructions, more than the kernel takes \(BPF_MAXINSNS, 4096\)$/,
      );
    });
  });

  describe('refusals', () => {
    it('SCMP_ACT_NOTIFY', () => {
      expect(error(() => compile({ defaultAction: 'SCMP_ACT_NOTIFY' })).message).toMatch(
        /defaultAction: SCMP_ACT_NOTIFY is not supported/,
      );
      expect(() => actionValue('SCMP_ACT_NOTIFY')).toThrow(/not supported/);
    });

    it('an action the kernel lacks', () => {
      const seccomp: LinuxSeccomp = {
        defaultAction: 'SCMP_ACT_ALLOW',
        syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_LOG' }],
      };
      const old = ['kill_process', 'kill_thread', 'trap', 'errno', 'trace', 'allow'];
      expect(error(() => compileSeccomp(seccomp, { availableActions: old })).message).toBe(
        "this kernel's seccomp has no SCMP_ACT_LOG (it has: kill_process kill_thread trap errno trace allow)",
      );
      expect(
        error(() =>
          compileSeccomp({ defaultAction: 'SCMP_ACT_ALLOW' }, { availableActions: ['allow', 'errno'] }),
        ).message,
      ).toMatch(/no SCMP_ACT_KILL_PROCESS .*it kills the calls of other architectures/);
    });

    it("reads the running kernel's actions by default", () => {
      // This machine's kernel has them all (Linux 4.14 and later).
      const { filter } = compileSeccomp({ defaultAction: 'SCMP_ACT_LOG' }, { arch: 'x64' });
      expect(call(filter, 'read')).toBe(SECCOMP_RET.LOG);
    });

    it('a docker profile that was not resolved', () => {
      expect(
        error(() =>
          compile({
            defaultAction: 'SCMP_ACT_ERRNO',
            syscalls: [{ names: ['mount'], action: 'SCMP_ACT_ALLOW', includes: { caps: ['CAP_SYS_ADMIN'] } }],
          } as unknown as LinuxSeccomp),
        ).message,
      ).toMatch(/docker profile .*resolveProfile\(\)/);
    });

    it('skips a syscall name it has no table for, as runc does for a config.json', () => {
      // podman's and containerd's profiles name syscalls of other CPUs (pciconfig_iobase).
      const filter = compile({
        defaultAction: 'SCMP_ACT_ERRNO',
        syscalls: [{ names: ['read', 'pciconfig_iobase'], action: 'SCMP_ACT_ALLOW' }],
      });
      const plain = compile({
        defaultAction: 'SCMP_ACT_ERRNO',
        syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW' }],
      });
      expect(filter).toEqual(plain);
    });
  });
});

describe('profiles that would fake the set-up', () => {
  it('refuses errno 0 on the calls that change user and capabilities, by rule or by default', async () => {
    const { checkSeccompKeepsSetup } = await import('./guard.js');
    expect(() =>
      checkSeccompKeepsSetup({
        defaultAction: 'SCMP_ACT_ALLOW',
        syscalls: [{ names: ['getpid', 'setresuid'], action: 'SCMP_ACT_ERRNO', errnoRet: 0 }],
      }),
    ).toThrow(/syscalls\[0\]: errnoRet 0 for "setresuid"/);
    // The exec stub's wait at the exec gate and its close-on-exec of the error pipe.
    for (const name of ['openat', 'write', 'close', 'fcntl'])
      expect(() =>
        checkSeccompKeepsSetup({
          defaultAction: 'SCMP_ACT_ALLOW',
          syscalls: [{ names: [name], action: 'SCMP_ACT_ERRNO', errnoRet: 0 }],
        }),
      ).toThrow(new RegExp(`syscalls\\[0\\]: errnoRet 0 for "${name}"`));
    expect(() => checkSeccompKeepsSetup({ defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: 0 })).toThrow(
      /defaultErrnoRet 0 would make "setgroups"/,
    );
    // errno 0 elsewhere, or a real errno on them, is the profile's business.
    expect(() =>
      checkSeccompKeepsSetup({
        defaultAction: 'SCMP_ACT_ALLOW',
        syscalls: [
          { names: ['mkdir'], action: 'SCMP_ACT_ERRNO', errnoRet: 0 },
          { names: ['setresuid'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 },
        ],
      }),
    ).not.toThrow();
  });
});
