import { SeccompError } from '../errors.js';
import { actionAvailName, actionValue, kernelSeccompActions, SECCOMP_RET } from './actions.js';
import { type AbiInfo, AUDIT_ARCH_X86_64, abiInfo, nativeArch, X32_SYSCALL_BIT } from './arch.js';
import {
  ALU_AND_K,
  BPF_MAXINSNS,
  encode,
  type Insn,
  JMP_JA,
  JMP_JEQ_K,
  JMP_JGE_K,
  JMP_JGT_K,
  LD_W_ABS,
  RET_K,
  SECCOMP_DATA,
} from './bpf.js';
import { parseProfile, SECCOMP_FLAGS } from './profile.js';
import { syscallTable } from './syscalls.js';
import type { DockerProfile, LinuxSeccomp, LinuxSeccompArg, SeccompAction, SeccompArch } from './types.js';

// The program, for x86_64 with the three x86 ABIs:
//
//     ld  arch                       ; seccomp_data.arch
//     jeq AUDIT_ARCH_X86_64 -> X86_64
//     jeq AUDIT_ARCH_I386   -> X86
//     ret KILL_PROCESS               ; an ABI the profile does not list: its numbers mean other
//                                    ; syscalls, so nothing about it can be allowed
//   X86_64:
//     ld  nr
//     jge 0x40000000 (and nr != -1) -> X32 section, or KILL_PROCESS without X32: x32 calls
//                                    ; arrive with AUDIT_ARCH_X86_64 and only this bit tells
//                                    ; them apart; a filter that ignored it would hand x32's
//                                    ; numbering to x86_64's rules, i.e. a bypass
//     <binary search over x86_64's syscall numbers>
//   X86: ld nr; <binary search>      ; and X32's search
//   <rule chains shared by the searches>
//
// The search splits [0, 2^32) into ranges of numbers that share a rule chain (the gaps and the
// unlisted syscalls share the default action's), and finds nr's range with `jge` on the range
// starts: log2(ranges) comparisons, and, since contiguous syscalls with the same action merge,
// far fewer instructions than one `jeq` per syscall. A node is `jge k` whose true branch jumps
// over the left subtree; when that is more than 255 instructions (the 8-bit jt), it is
// `jge k, jt 0, jf 1; ja right` instead, so every conditional offset stays small and far jumps
// use BPF_JA's 32-bit offset. A leaf is `ret` when its chain is one action, else `ja chain`.
//
// A rule chain is the syscall's rules in the profile's order: each rule's comparisons (all must
// hold), then its `ret`; a comparison that fails jumps past the `ret` to the next rule; after
// the last one, the default action. Arguments are 64-bit: seccomp_data.args[i] at
// 16 + 8 * i, low word first (little-endian), compared high word first; on i386, whose kernel
// entry reads 32 bits, the low word only (see AbiInfo.wide).

export interface CompileOptions {
  /** The machine's architecture; by default this process's. */
  arch?: NodeJS.Architecture;
  /**
   * The kernel's seccomp actions, by their actions_avail names ("kill_process", "log", ...); by
   * default read from /proc/sys/kernel/seccomp/actions_avail.
   */
  availableActions?: readonly string[];
}

export interface CompiledSeccomp {
  /** struct sock_filter[] (8 bytes each: u16 code, u8 jt, u8 jf, u32 k), little-endian. */
  filter: Buffer;
  /** SECCOMP_FILTER_FLAG_* bits for seccomp(SECCOMP_SET_MODE_FILTER, flags, ...). */
  flags: number;
}

/** A jump within a rule: an offset, or past this comparison ("pass") or this rule ("fail"). */
type Jump = number | 'pass' | 'fail';

interface RuleInsn {
  code: number;
  jt: Jump;
  jf: Jump;
  k: number;
}

/** A comparison's code, or what it always evaluates to. */
type Comparison = RuleInsn[] | 'always' | 'never';

const U32 = 0xffffffff;
const ld = (k: number): RuleInsn => ({ code: LD_W_ABS, jt: 0, jf: 0, k });
const and = (k: number): RuleInsn => ({ code: ALU_AND_K, jt: 0, jf: 0, k });
const jump = (code: number, k: number, jt: Jump, jf: Jump): RuleInsn => ({ code, jt, jf, k: k >>> 0 });

/**
 * `arg > value` (or `>=`) on unsigned 64 bits, jumping to `yes` or `no`. On a 32-bit ABI the
 * high word is taken as 0 (see AbiInfo.wide), so it folds away.
 */
function greater(
  lo: number,
  value: bigint,
  orEqual: boolean,
  wide: boolean,
  yes: 'pass' | 'fail',
  no: 'pass' | 'fail',
): RuleInsn[] | 'yes' | 'no' {
  const vh = Number(value >> 32n);
  const vl = Number(value & 0xffffffffn);
  if (orEqual && value === 0n) return 'yes';
  if (!orEqual && value === 0xffff_ffff_ffff_ffffn) return 'no';
  const low = [ld(lo), jump(orEqual ? JMP_JGE_K : JMP_JGT_K, vl, yes, no)];
  if (!wide) return vh === 0 ? low : 'no';
  const high: RuleInsn[] = [ld(lo + 4)];
  if (vh === 0)
    high.push(jump(JMP_JGT_K, 0, yes, 0)); // hi > 0, else hi == 0: look at lo
  else if (vh === U32)
    high.push(jump(JMP_JEQ_K, U32, 0, no)); // hi < vh, else hi == vh
  else high.push(jump(JMP_JGT_K, vh, yes, 0), jump(JMP_JEQ_K, vh, 0, no));
  return [...high, ...low];
}

function compare(arg: LinuxSeccompArg, wide: boolean): Comparison {
  const lo = SECCOMP_DATA.args + 8 * arg.index;
  const hi = lo + 4;
  const value = BigInt(arg.value);
  const vh = Number(value >> 32n);
  const vl = Number(value & 0xffffffffn);
  const fold = (result: RuleInsn[] | 'yes' | 'no'): Comparison =>
    result === 'yes' ? 'always' : result === 'no' ? 'never' : result;
  switch (arg.op) {
    case 'SCMP_CMP_EQ':
    case 'SCMP_CMP_NE': {
      const [yes, no]: ['pass' | 'fail', 'pass' | 'fail'] =
        arg.op === 'SCMP_CMP_EQ' ? ['pass', 'fail'] : ['fail', 'pass'];
      if (!wide && vh !== 0) return arg.op === 'SCMP_CMP_EQ' ? 'never' : 'always';
      const low = [ld(lo), jump(JMP_JEQ_K, vl, yes, no)];
      return wide ? [ld(hi), jump(JMP_JEQ_K, vh, 0, no), ...low] : low;
    }
    case 'SCMP_CMP_GT':
      return fold(greater(lo, value, false, wide, 'pass', 'fail'));
    case 'SCMP_CMP_GE':
      return fold(greater(lo, value, true, wide, 'pass', 'fail'));
    case 'SCMP_CMP_LT': // not >=
      return fold(invert(greater(lo, value, true, wide, 'fail', 'pass')));
    case 'SCMP_CMP_LE': // not >
      return fold(invert(greater(lo, value, false, wide, 'fail', 'pass')));
    case 'SCMP_CMP_MASKED_EQ': {
      // (arg & value) == valueTwo, word by word.
      const mask = value;
      const expected = BigInt(arg.valueTwo ?? 0);
      if ((expected & ~mask) !== 0n) return 'never';
      const words: [number, number, number][] = [[lo, vl, Number(expected & 0xffffffffn)]];
      if (wide) words.unshift([hi, vh, Number(expected >> 32n)]);
      else if (expected >> 32n !== 0n) return 'never';
      const code: RuleInsn[] = [];
      for (const [offset, m, e] of words) {
        if (m === 0) continue; // (x & 0) == 0, and e is 0 (checked above)
        code.push(ld(offset));
        if (m !== U32) code.push(and(m));
        code.push(jump(JMP_JEQ_K, e, 0, 'fail'));
      }
      return code.length > 0 ? code : 'always';
    }
    default:
      throw new SeccompError(`unknown operator "${(arg as LinuxSeccompArg).op}"`);
  }
}

/** The answer for `not (...)` when greater() folded to a constant; code is already inverted. */
function invert(result: RuleInsn[] | 'yes' | 'no'): RuleInsn[] | 'yes' | 'no' {
  return result === 'yes' ? 'no' : result === 'no' ? 'yes' : result;
}

/** A rule's code up to its `ret` (excluded), or null when it always holds; undefined: never. */
function ruleCode(args: readonly LinuxSeccompArg[] | undefined, wide: boolean): Insn[] | null | undefined {
  const parts: RuleInsn[][] = [];
  for (const arg of args ?? []) {
    const comparison = compare(arg, wide);
    if (comparison === 'never') return undefined;
    if (comparison !== 'always') parts.push(comparison);
  }
  if (parts.length === 0) return null;
  const length = parts.reduce((n, part) => n + part.length, 0) + 1; // and the ret
  if (length > 256) throw new SeccompError('a rule has too many argument comparisons for one filter jump');
  const code: Insn[] = [];
  let end = 0;
  for (const part of parts) {
    end += part.length;
    for (const insn of part) {
      const at = code.length;
      const resolve = (j: Jump) => (j === 'pass' ? end - at - 1 : j === 'fail' ? length - at - 1 : j);
      code.push({ code: insn.code, jt: resolve(insn.jt), jf: resolve(insn.jf), k: insn.k });
    }
  }
  return code;
}

interface Rule {
  code: Insn[];
  ret: number;
  /** Its index in the profile's syscalls: with the ABI's wideness, it determines the code. */
  index: number;
}

/** A syscall's rules: the conditional ones in order, then what applies when none holds. */
interface Chain {
  rules: Rule[];
  final: number;
}

function chainCode(chain: Chain): Insn[] {
  const code: Insn[] = [];
  for (const rule of chain.rules) code.push(...rule.code, { code: RET_K, jt: 0, jf: 0, k: rule.ret });
  code.push({ code: RET_K, jt: 0, jf: 0, k: chain.final });
  return code;
}

type Tree = { leaf: number } | { at: number; left: Tree; right: Tree; size: number };

const treeSize = (tree: Tree) => ('leaf' in tree ? 1 : tree.size);

/** Balanced search over ranges [starts[i], starts[i + 1]) whose chains are keys[i]. */
function buildTree(starts: number[], keys: number[], from: number, to: number): Tree {
  if (to - from === 1) return { leaf: keys[from]! };
  const mid = (from + to) >> 1;
  const left = buildTree(starts, keys, from, mid);
  const right = buildTree(starts, keys, mid, to);
  const size = 1 + (treeSize(left) > 255 ? 1 : 0) + treeSize(left) + treeSize(right);
  return { at: starts[mid]!, left, right, size };
}

/** Instructions, with BPF_JA targets to resolve once every label has its place. */
class Assembler {
  readonly program: Insn[] = [];
  private readonly labels = new Map<string, number>();
  private readonly fixups: { at: number; label: string }[] = [];

  emit(code: number, k: number, jt = 0, jf = 0): void {
    this.program.push({ code, jt, jf, k: k >>> 0 });
  }

  ret(k: number): void {
    this.emit(RET_K, k);
  }

  ja(label: string): void {
    this.fixups.push({ at: this.program.length, label });
    this.emit(JMP_JA, 0);
  }

  label(name: string): void {
    this.labels.set(name, this.program.length);
  }

  resolve(): Insn[] {
    for (const { at, label } of this.fixups) {
      const target = this.labels.get(label);
      if (target === undefined || target <= at) throw new Error(`seccomp compiler: bad jump to ${label}`);
      this.program[at]!.k = target - at - 1;
    }
    return this.program;
  }
}

interface Section {
  arch: SeccompArch;
  abi: AbiInfo;
  starts: number[];
  keys: number[];
}

function compileUncached(seccomp: LinuxSeccomp, options: CompileOptions): CompiledSeccomp {
  const profile = parseProfile(seccomp, 'linux.seccomp', { unknownSyscalls: 'ignore' }) as DockerProfile;
  if (profile.archMap || profile.syscalls?.some((s) => s.includes || s.excludes))
    throw new SeccompError(
      'linux.seccomp: this is a docker profile (archMap, includes, excludes): resolveProfile() turns it into the OCI form',
    );
  const arch = options.arch ?? process.arch;
  const native = nativeArch(arch);
  if (!native || !abiInfo(native.native)?.table)
    throw new SeccompError(`seccomp filters are not supported on ${arch}: there is no syscall table for it`);

  // The ABIs get a section each: the native one always (libseccomp's filter starts with it, as
  // in runc), and the others of the profile that this CPU runs and that have a table (32-bit
  // ARM has none here: its calls are killed, the safe way to fail).
  const listed = new Set(profile.architectures ?? []);
  const abis = native.runs.filter((a) => (a === native.native || listed.has(a)) && abiInfo(a)?.table);

  // The kernel must have every action the profile names, and KILL_PROCESS for other ABIs.
  const used = new Set<SeccompAction>(['SCMP_ACT_KILL_PROCESS', profile.defaultAction]);
  for (const call of profile.syscalls ?? []) used.add(call.action);
  const available = options.availableActions ?? kernelSeccompActions();
  for (const action of used)
    if (!available.includes(actionAvailName(action)))
      throw new SeccompError(
        `this kernel's seccomp has no ${action} (it has: ${available.join(' ')})${action === 'SCMP_ACT_KILL_PROCESS' ? '; it kills the calls of other architectures' : ''}`,
      );

  const defaultRet = actionValue(profile.defaultAction, profile.defaultErrnoRet);
  // A range's chain is a number: the action itself when the chain is just one `ret`, else
  // -1 - its index in `chains` (the chains with comparisons, shared by all sections).
  const chains: Insn[][] = [];
  const chainIds = new Map<string, number>();
  const sections: Section[] = abis.map((a) => {
    const abi = abiInfo(a)!;
    const table = syscallTable(abi.table!);
    // By syscall number less the ABI's base (x32's bit): a few hundred slots, in order.
    const base = abi.table === 'x32' ? X32_SYSCALL_BIT : 0;
    const bySyscall: ({ rules: Rule[]; final: number | undefined } | undefined)[] = [];
    for (const [index, call] of (profile.syscalls ?? []).entries()) {
      const ret = actionValue(call.action, call.errnoRet);
      let code: Insn[] | null | undefined;
      let compiled = false;
      for (const name of call.names) {
        const nr = table.get(name);
        if (nr === undefined) continue; // not a syscall of this ABI
        let chain = bySyscall[nr - base];
        if (!chain) {
          chain = { rules: [], final: undefined };
          bySyscall[nr - base] = chain;
        }
        if (chain.final !== undefined) continue; // an earlier rule always applies
        if (!compiled) {
          code = ruleCode(call.args, abi.wide);
          compiled = true;
        }
        if (code === undefined) break; // this rule never holds here
        if (code === null) chain.final = ret;
        else chain.rules.push({ code, ret, index });
      }
    }
    const starts: number[] = [];
    const keys: number[] = [];
    const add = (start: number, key: number) => {
      if (keys[keys.length - 1] !== key) {
        starts.push(start);
        keys.push(key);
      }
    };
    let next = 0;
    for (let i = 0; i < bySyscall.length; i++) {
      if (!bySyscall[i]) continue;
      const nr = base + i;
      const { rules, final = defaultRet } = bySyscall[i]!;
      // Trailing rules that give what follows them anyway change nothing.
      while (rules.length > 0 && rules[rules.length - 1]!.ret === final) rules.pop();
      let key = final;
      if (rules.length > 0) {
        const name = `${abi.wide ? 64 : 32}:${rules.map((r) => r.index).join(',')}:${final}`;
        let id = chainIds.get(name);
        if (id === undefined) {
          // A chain of another ABI may have the same code (a mask on the low word only, say).
          const code = chainCode({ rules, final });
          const json = JSON.stringify(code);
          id = chainIds.get(json) ?? chains.push(code) - 1;
          chainIds.set(name, id);
          chainIds.set(json, id);
        }
        key = -1 - id;
      }
      if (key === defaultRet) continue;
      if (nr > next) add(next, defaultRet);
      add(nr, key);
      next = nr + 1;
    }
    if (next <= U32) add(next, defaultRet);
    return { arch: a, abi, starts, keys };
  });

  const asm = new Assembler();
  const emitTree = (tree: Tree): void => {
    if ('leaf' in tree) {
      if (tree.leaf >= 0) asm.ret(tree.leaf);
      else asm.ja(`chain:${-1 - tree.leaf}`);
      return;
    }
    const left = treeSize(tree.left);
    if (left <= 255) asm.emit(JMP_JGE_K, tree.at, left, 0);
    else {
      asm.emit(JMP_JGE_K, tree.at, 0, 1);
      asm.emit(JMP_JA, left);
    }
    emitTree(tree.left);
    emitTree(tree.right);
  };
  const emitSection = (section: Section | undefined): void => {
    if (!section) asm.ret(SECCOMP_RET.KILL_PROCESS);
    else emitTree(buildTree(section.starts, section.keys, 0, section.starts.length));
  };
  const sectionOf = (a: SeccompArch) => sections.find((s) => s.arch === a);

  // Dispatch on seccomp_data.arch; x32 shares x86_64's AUDIT_ARCH, so one entry serves both.
  const groups = [...new Set(sections.map((s) => s.abi.audit))];
  asm.emit(LD_W_ABS, SECCOMP_DATA.arch);
  for (const audit of groups) {
    asm.emit(JMP_JEQ_K, audit, 0, 1);
    asm.ja(`arch:${audit}`);
  }
  asm.ret(SECCOMP_RET.KILL_PROCESS);
  const x32 = sectionOf('SCMP_ARCH_X32');
  for (const audit of groups) {
    asm.label(`arch:${audit}`);
    asm.emit(LD_W_ABS, SECCOMP_DATA.nr);
    if (audit === AUDIT_ARCH_X86_64) {
      // nr >= 0x40000000 is x32's, but -1 (which a tracer sets to skip a call) is no syscall of
      // any ABI and gets x86_64's default action.
      asm.emit(JMP_JGE_K, X32_SYSCALL_BIT, 0, 2);
      asm.emit(JMP_JEQ_K, U32, 1, 0);
      if (x32) asm.ja('section:x32');
      else asm.ret(SECCOMP_RET.KILL_PROCESS);
      emitSection(sectionOf('SCMP_ARCH_X86_64'));
    } else emitSection(sections.find((s) => s.abi.audit === audit));
  }
  if (x32) {
    asm.label('section:x32');
    emitSection(x32);
  }
  for (const [id, code] of chains.entries()) {
    asm.label(`chain:${id}`);
    for (const insn of code) asm.emit(insn.code, insn.k, insn.jt, insn.jf);
  }
  const program = asm.resolve();
  if (program.length > BPF_MAXINSNS)
    throw new SeccompError(
      `the seccomp filter is ${program.length} instructions, more than the kernel takes (BPF_MAXINSNS, ${BPF_MAXINSNS})`,
    );
  let flags = 0;
  for (const flag of profile.flags ?? []) flags |= SECCOMP_FLAGS[flag];
  return { filter: encode(program), flags };
}

const cache = new Map<string, CompiledSeccomp>();
const CACHE_SIZE = 16;

const bigints = (_key: string, value: unknown) => (typeof value === 'bigint' ? `${value}n` : value);

/** The profile as a cache key; a replacer slows JSON.stringify down, so only if it must. */
function cacheKey(seccomp: LinuxSeccomp): string {
  try {
    return JSON.stringify(seccomp);
  } catch {
    return JSON.stringify(seccomp, bigints); // bigint argument values
  }
}

/**
 * Compiles a container's `linux.seccomp` (see resolveProfile for docker's format) into a
 * classic-BPF program for seccomp(SECCOMP_SET_MODE_FILTER) on this machine's architecture, and
 * the flags for that call. Throws a SeccompError for what the profile or kernel can't do:
 * unknown names, SCMP_ACT_NOTIFY, an action the kernel lacks, more than 4096 instructions.
 * The last few results are kept, by profile: a container's second start costs a lookup.
 */
export function compileSeccomp(seccomp: LinuxSeccomp, options: CompileOptions = {}): CompiledSeccomp {
  const key = `${options.arch ?? process.arch}\n${options.availableActions?.join(' ') ?? ''}\n${cacheKey(seccomp)}`;
  let compiled = cache.get(key);
  if (compiled) {
    cache.delete(key); // most recently used last
  } else {
    compiled = compileUncached(seccomp, options);
    if (cache.size >= CACHE_SIZE) cache.delete(cache.keys().next().value!);
  }
  cache.set(key, compiled);
  // A copy: the caller may write into its buffer.
  return { filter: Buffer.from(compiled.filter), flags: compiled.flags };
}
