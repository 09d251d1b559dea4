import { release } from 'node:os';
import { SeccompError } from '../errors.js';
import { isSeccompAction, NOTIFY_UNSUPPORTED } from './actions.js';
import { nativeArch, SECCOMP_ARCHES } from './arch.js';
import { isSyscallOn } from './syscalls.js';
import type {
  DockerArchMap,
  DockerProfile,
  DockerSeccompFilter,
  DockerSyscall,
  LinuxSeccomp,
  LinuxSeccompArg,
  LinuxSyscall,
  SeccompAction,
  SeccompArch,
  SeccompFlag,
  SeccompOperator,
} from './types.js';

/** SECCOMP_FILTER_FLAG_* bits by name (linux/seccomp.h). */
export const SECCOMP_FLAGS: Readonly<Record<SeccompFlag, number>> = {
  SECCOMP_FILTER_FLAG_TSYNC: 1,
  SECCOMP_FILTER_FLAG_LOG: 2,
  SECCOMP_FILTER_FLAG_SPEC_ALLOW: 4,
  SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: 32,
};

const OPERATORS: ReadonlySet<string> = new Set<SeccompOperator>([
  'SCMP_CMP_NE',
  'SCMP_CMP_LT',
  'SCMP_CMP_LE',
  'SCMP_CMP_EQ',
  'SCMP_CMP_GE',
  'SCMP_CMP_GT',
  'SCMP_CMP_MASKED_EQ',
]);

const U64_MAX = 0xffff_ffff_ffff_ffffn;

type Json = Record<string, unknown>;

/** Validation with the path of the value being looked at, for errors that name the field. */
class Checker {
  constructor(private readonly source: string) {}

  fail(path: string, message: string): never {
    throw new SeccompError(`seccomp profile ${this.source}: ${path ? `${path}: ` : ''}${message}`);
  }

  object(value: unknown, path: string): Json {
    if (typeof value !== 'object' || value === null || Array.isArray(value))
      this.fail(path, `expected an object, got ${describe(value)}`);
    return value as Json;
  }

  /** An optional array: undefined and null (Go's nil slice) are none. */
  array(value: unknown, path: string): unknown[] | undefined {
    if (value === undefined || value === null) return undefined;
    if (!Array.isArray(value)) this.fail(path, `expected an array, got ${describe(value)}`);
    return value;
  }

  string(value: unknown, path: string): string {
    if (typeof value !== 'string') this.fail(path, `expected a string, got ${describe(value)}`);
    return value;
  }

  optionalString(value: unknown, path: string): string | undefined {
    return value === undefined || value === null ? undefined : this.string(value, path);
  }

  strings(value: unknown, path: string): string[] | undefined {
    return this.array(value, path)?.map((item, i) => this.string(item, `${path}[${i}]`));
  }

  action(value: unknown, path: string): SeccompAction {
    if (value === undefined || value === null) this.fail(path, 'missing');
    const action = this.string(value, path);
    if (!isSeccompAction(action)) this.fail(path, `unknown action "${action}"`);
    if (action === 'SCMP_ACT_NOTIFY') this.fail(path, NOTIFY_UNSUPPORTED);
    return action;
  }

  errno(value: unknown, path: string): number | undefined {
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'number' || !Number.isInteger(value))
      this.fail(path, `expected an integer, got ${describe(value)}`);
    if (value < 0 || value > 0xffff) this.fail(path, `${value} is out of range (0-65535)`);
    return value;
  }

  arch(value: unknown, path: string): SeccompArch {
    const arch = this.string(value, path);
    if (!SECCOMP_ARCHES.has(arch)) this.fail(path, `unknown architecture "${arch}"`);
    return arch as SeccompArch;
  }

  u64(value: unknown, path: string): number | bigint {
    if (typeof value === 'bigint') {
      if (value < 0n || value > U64_MAX) this.fail(path, `${value} is not a 64-bit unsigned integer`);
      return value;
    }
    if (typeof value !== 'number' || !Number.isInteger(value))
      this.fail(path, `expected an integer, got ${describe(value)}`);
    if (value < 0) this.fail(path, `${value} is negative: arguments are compared as unsigned 64-bit`);
    if (!Number.isSafeInteger(value))
      this.fail(path, `${value} is above 2^53 and not exact in JSON: give it as a bigint`);
    return value;
  }
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `"${value}"`;
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${String(value)}`;
}

function parseArg(c: Checker, value: unknown, path: string): LinuxSeccompArg {
  const arg = c.object(value, path);
  const index = arg.index;
  if (typeof index !== 'number' || !Number.isInteger(index))
    c.fail(`${path}.index`, `expected an integer, got ${describe(index)}`);
  if (index < 0 || index > 5) c.fail(`${path}.index`, `${index} is not an argument (0-5)`);
  if (arg.value === undefined) c.fail(`${path}.value`, 'missing');
  const op = c.string(arg.op, `${path}.op`);
  if (!OPERATORS.has(op)) c.fail(`${path}.op`, `unknown operator "${op}"`);
  const out: LinuxSeccompArg = { index, value: c.u64(arg.value, `${path}.value`), op: op as SeccompOperator };
  if (arg.valueTwo !== undefined && arg.valueTwo !== null)
    out.valueTwo = c.u64(arg.valueTwo, `${path}.valueTwo`);
  return out;
}

function parseFilter(c: Checker, value: unknown, path: string): DockerSeccompFilter | undefined {
  if (value === undefined || value === null) return undefined;
  const filter = c.object(value, path);
  const out: DockerSeccompFilter = {};
  const caps = c.strings(filter.caps, `${path}.caps`);
  if (caps?.length) out.caps = caps;
  const arches = c.strings(filter.arches, `${path}.arches`);
  if (arches?.length) out.arches = arches;
  const minKernel = c.optionalString(filter.minKernel, `${path}.minKernel`);
  if (minKernel) {
    if (!parseKernel(minKernel))
      c.fail(`${path}.minKernel`, `"${minKernel}" is not a kernel version "major.minor"`);
    out.minKernel = minKernel;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

/**
 * Checks the shape of a profile, in the OCI form (`linux.seccomp`) or docker's (archMap,
 * includes/excludes), and returns a normalized copy (no nulls; docker's `name` as `names`).
 * Each error names the source and the field: `seccomp profile ./p.json: syscalls[3].action:
 * unknown action "SCMP_ACT_FOO"`. A syscall name is an error only if it is a syscall of no
 * architecture at all: one that an architecture lacks is skipped there when compiling, as
 * docker does (its own default profile lists recv and send, which no x86 ABI has).
 * `unknownSyscalls: 'ignore'` takes names of no table here too (skipped when compiling), as runc
 * does for a config.json: podman's and containerd's profiles name syscalls of other CPUs
 * (pciconfig_iobase, …) that box has no table for.
 */
export function parseProfile(
  json: unknown,
  source: string,
  options: { unknownSyscalls?: 'error' | 'ignore' } = {},
): DockerProfile | LinuxSeccomp {
  const strict = options.unknownSyscalls !== 'ignore';
  const c = new Checker(source);
  const root = c.object(json, '');
  const profile: DockerProfile = { defaultAction: c.action(root.defaultAction, 'defaultAction') };
  const defaultErrnoRet = c.errno(root.defaultErrnoRet, 'defaultErrnoRet');
  if (defaultErrnoRet !== undefined) profile.defaultErrnoRet = defaultErrnoRet;

  const architectures = c
    .array(root.architectures, 'architectures')
    ?.map((a, i) => c.arch(a, `architectures[${i}]`));
  if (architectures?.length) profile.architectures = architectures;
  const archMap = c.array(root.archMap, 'archMap')?.map((value, i): DockerArchMap => {
    const entry = c.object(value, `archMap[${i}]`);
    const subs = c.array(entry.subArchitectures, `archMap[${i}].subArchitectures`);
    return {
      architecture: c.arch(entry.architecture, `archMap[${i}].architecture`),
      subArchitectures: subs ? subs.map((a, j) => c.arch(a, `archMap[${i}].subArchitectures[${j}]`)) : null,
    };
  });
  if (archMap?.length) profile.archMap = archMap;
  if (profile.architectures && profile.archMap)
    c.fail('', 'both "architectures" and "archMap" are given: use one of them');

  const flags = c.array(root.flags, 'flags')?.map((value, i) => {
    const flag = c.string(value, `flags[${i}]`);
    if (flag === 'SECCOMP_FILTER_FLAG_NEW_LISTENER') c.fail(`flags[${i}]`, NOTIFY_UNSUPPORTED);
    if (!Object.hasOwn(SECCOMP_FLAGS, flag)) c.fail(`flags[${i}]`, `unknown flag "${flag}"`);
    return flag as SeccompFlag;
  });
  if (flags?.length) profile.flags = flags;
  const listenerPath = c.optionalString(root.listenerPath, 'listenerPath');
  if (listenerPath) profile.listenerPath = listenerPath;
  const listenerMetadata = c.optionalString(root.listenerMetadata, 'listenerMetadata');
  if (listenerMetadata) profile.listenerMetadata = listenerMetadata;

  let docker = profile.archMap !== undefined;

  const syscalls = c.array(root.syscalls, 'syscalls')?.map((value, i): DockerSyscall => {
    const path = `syscalls[${i}]`;
    const entry = c.object(value, path);
    let names: string[];
    if (entry.name !== undefined && entry.name !== null && entry.name !== '') {
      if (entry.names !== undefined && entry.names !== null)
        c.fail(path, 'both "name" and "names" are given');
      names = [c.string(entry.name, `${path}.name`)];
      docker = true;
    } else {
      if (entry.names === undefined || entry.names === null) c.fail(`${path}.names`, 'missing');
      names = c.strings(entry.names, `${path}.names`)!;
    }
    names.forEach((name, j) => {
      const at = entry.names === undefined || entry.names === null ? `${path}.name` : `${path}.names[${j}]`;
      if (strict && !isSyscallOn(name, undefined)) c.fail(at, `unknown syscall "${name}"`);
    });
    const call: DockerSyscall = { names, action: c.action(entry.action, `${path}.action`) };
    const errnoRet = c.errno(entry.errnoRet, `${path}.errnoRet`);
    if (errnoRet !== undefined) call.errnoRet = errnoRet;
    const args = c.array(entry.args, `${path}.args`)?.map((arg, j) => parseArg(c, arg, `${path}.args[${j}]`));
    if (args?.length) call.args = args;
    const comment = c.optionalString(entry.comment, `${path}.comment`);
    if (comment) call.comment = comment;
    const includes = parseFilter(c, entry.includes, `${path}.includes`);
    if (includes) call.includes = includes;
    const excludes = parseFilter(c, entry.excludes, `${path}.excludes`);
    if (excludes) call.excludes = excludes;
    if (comment || includes || excludes) docker = true;
    return call;
  });
  if (syscalls) profile.syscalls = syscalls;
  return docker ? profile : (profile as LinuxSeccomp);
}

/** "6.18.0-1-amd64" -> [6, 18]; docker compares the first two numbers only. */
function parseKernel(version: string): [number, number] | undefined {
  const m = /^(\d+)\.(\d+)/.exec(version);
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

export interface ResolveContext {
  /** The container's bounding capabilities, CAP_* names (docker matches `includes.caps` with them). */
  capabilities: readonly string[];
  /** The machine's architecture; by default this process's. */
  arch?: NodeJS.Architecture;
  /** The running kernel's release; by default os.release(). */
  kernel?: string;
}

function capName(name: string): string {
  const upper = name.trim().toUpperCase();
  return upper.startsWith('CAP_') ? upper : `CAP_${upper}`;
}

/**
 * What docker does with a profile when it creates a container: keeps the syscall groups whose
 * `includes` all hold and whose `excludes` none does (capabilities of the bounding set, the
 * machine's GOARCH, the running kernel), and takes the architectures from the archMap entry of
 * the native one (x64: SCMP_ARCH_X86_64, SCMP_ARCH_X86, SCMP_ARCH_X32). A profile already in
 * the OCI form comes back as it is, but for a copy. The result is the container's
 * `linux.seccomp`, for compileSeccomp().
 */
export function resolveProfile(profile: DockerProfile | LinuxSeccomp, ctx: ResolveContext): LinuxSeccomp {
  const arch = ctx.arch ?? process.arch;
  const native = nativeArch(arch);
  const goarch = native?.goarch ?? arch;
  const caps = new Set(ctx.capabilities.map(capName));
  const kernelRelease = ctx.kernel ?? release();
  const docker = profile as DockerProfile;

  if (profile.architectures?.length && docker.archMap?.length)
    throw new SeccompError('seccomp profile: both "architectures" and "archMap" are given: use one of them');
  let architectures: SeccompArch[] | undefined;
  if (profile.architectures?.length) architectures = [...profile.architectures];
  else if (docker.archMap?.length && native) {
    const entry = docker.archMap.find((m) => m.architecture === native.native);
    if (entry) architectures = [entry.architecture, ...(entry.subArchitectures ?? [])];
  }

  const kernelAtLeast = (min: string): boolean => {
    const want = parseKernel(min);
    if (!want)
      throw new SeccompError(`seccomp profile: minKernel "${min}" is not a kernel version "major.minor"`);
    const have = parseKernel(kernelRelease);
    if (!have) throw new SeccompError(`cannot tell the kernel version from "${kernelRelease}"`);
    return have[0] > want[0] || (have[0] === want[0] && have[1] >= want[1]);
  };
  const selected = (call: DockerSyscall): boolean => {
    const { includes, excludes } = call;
    if (excludes?.arches?.includes(goarch)) return false;
    if (excludes?.caps?.some((cap) => caps.has(capName(cap)))) return false;
    if (excludes?.minKernel && kernelAtLeast(excludes.minKernel)) return false;
    if (includes?.arches?.length && !includes.arches.includes(goarch)) return false;
    if (includes?.caps?.some((cap) => !caps.has(capName(cap)))) return false;
    if (includes?.minKernel && !kernelAtLeast(includes.minKernel)) return false;
    return true;
  };

  const out: LinuxSeccomp = { defaultAction: profile.defaultAction };
  if (profile.defaultErrnoRet !== undefined) out.defaultErrnoRet = profile.defaultErrnoRet;
  if (architectures) out.architectures = architectures;
  if (profile.flags?.length) out.flags = [...profile.flags];
  if (profile.listenerPath) out.listenerPath = profile.listenerPath;
  if (profile.listenerMetadata) out.listenerMetadata = profile.listenerMetadata;
  if (profile.syscalls) {
    out.syscalls = (profile.syscalls as DockerSyscall[]).filter(selected).map((call) => {
      const rule: LinuxSyscall = { names: [...call.names], action: call.action };
      if (call.errnoRet !== undefined) rule.errnoRet = call.errnoRet;
      if (call.args?.length) rule.args = call.args.map((arg) => ({ ...arg }));
      return rule;
    });
  }
  return out;
}
