/**
 * Seccomp for containers, in TypeScript: docker's profile format and default profile, the
 * resolution docker does when it creates a container, and a compiler from the OCI
 * `linux.seccomp` to the classic-BPF program that seccomp(2) installs. Nothing here installs a
 * filter; the process code does, with the buffer and flags that compileSeccomp returns.
 *
 *     const profile = parseProfile(JSON.parse(text), './profile.json'); // or DOCKER_DEFAULT_PROFILE
 *     const seccomp = resolveProfile(profile, { capabilities: bounding });
 *     const { filter, flags } = compileSeccomp(seccomp);
 *
 * The threat model the compiler is written for: a process in the container calls any syscall
 * with any arguments through any ABI its CPU runs. So the filter checks the ABI first (an ABI
 * the profile does not list is killed: its numbers mean other syscalls), tells x32 calls apart
 * from x86_64 ones by their number's bit (they share an AUDIT_ARCH), compares arguments on all
 * 64 bits where the kernel reads all 64, and fails closed on anything it has no table for.
 *
 * Syscall numbers come from the kernel headers (syscalls.generated.ts, made by
 * scripts/gen-syscalls.mjs), and, for syscalls newer than them, from syscalls.ts.
 */

export { SeccompError } from '../errors.js';
export { actionValue, describeAction, SECCOMP_RET } from './actions.js';
export { type CompiledSeccomp, type CompileOptions, compileSeccomp } from './compile.js';
export { DOCKER_DEFAULT_PROFILE } from './default-profile.js';
export { checkSeccompKeepsSetup } from './guard.js';
export { parseProfile, type ResolveContext, resolveProfile, SECCOMP_FLAGS } from './profile.js';
export type {
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
