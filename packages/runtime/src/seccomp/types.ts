// The two shapes of a seccomp profile: the OCI runtime spec's `linux.seccomp` (config-linux.md),
// and docker's JSON (moby profiles/seccomp), a superset with per-architecture and per-capability
// groups that docker resolves to the OCI shape when it creates a container.

/** An action for a matching syscall (SCMP_ACT_KILL is SCMP_ACT_KILL_THREAD). */
export type SeccompAction =
  | 'SCMP_ACT_KILL'
  | 'SCMP_ACT_KILL_THREAD'
  | 'SCMP_ACT_KILL_PROCESS'
  | 'SCMP_ACT_TRAP'
  | 'SCMP_ACT_ERRNO'
  | 'SCMP_ACT_TRACE'
  | 'SCMP_ACT_ALLOW'
  | 'SCMP_ACT_LOG'
  | 'SCMP_ACT_NOTIFY';

/** A comparison of one syscall argument; for MASKED_EQ, `(arg & value) == valueTwo`. */
export type SeccompOperator =
  | 'SCMP_CMP_NE'
  | 'SCMP_CMP_LT'
  | 'SCMP_CMP_LE'
  | 'SCMP_CMP_EQ'
  | 'SCMP_CMP_GE'
  | 'SCMP_CMP_GT'
  | 'SCMP_CMP_MASKED_EQ';

/** libseccomp's architecture names, as the runtime spec lists them. */
export type SeccompArch =
  | 'SCMP_ARCH_X86'
  | 'SCMP_ARCH_X86_64'
  | 'SCMP_ARCH_X32'
  | 'SCMP_ARCH_ARM'
  | 'SCMP_ARCH_AARCH64'
  | 'SCMP_ARCH_MIPS'
  | 'SCMP_ARCH_MIPS64'
  | 'SCMP_ARCH_MIPS64N32'
  | 'SCMP_ARCH_MIPSEL'
  | 'SCMP_ARCH_MIPSEL64'
  | 'SCMP_ARCH_MIPSEL64N32'
  | 'SCMP_ARCH_PPC'
  | 'SCMP_ARCH_PPC64'
  | 'SCMP_ARCH_PPC64LE'
  | 'SCMP_ARCH_S390'
  | 'SCMP_ARCH_S390X'
  | 'SCMP_ARCH_PARISC'
  | 'SCMP_ARCH_PARISC64'
  | 'SCMP_ARCH_RISCV64'
  | 'SCMP_ARCH_LOONGARCH64';

/** seccomp(2) flags a profile may ask for (SECCOMP_FILTER_FLAG_NEW_LISTENER needs NOTIFY: refused). */
export type SeccompFlag =
  | 'SECCOMP_FILTER_FLAG_TSYNC'
  | 'SECCOMP_FILTER_FLAG_LOG'
  | 'SECCOMP_FILTER_FLAG_SPEC_ALLOW'
  | 'SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV';

/**
 * A comparison of syscall argument `index` (0-5), a 64-bit value. JSON numbers are exact up to
 * 2^53; larger values can be given as bigint.
 */
export interface LinuxSeccompArg {
  index: number;
  value: number | bigint;
  valueTwo?: number | bigint;
  op: SeccompOperator;
}

/** A rule: its action applies to the named syscalls when every comparison in `args` holds. */
export interface LinuxSyscall {
  names: string[];
  action: SeccompAction;
  /** The errno of SCMP_ACT_ERRNO (default EPERM) or the message of SCMP_ACT_TRACE. */
  errnoRet?: number;
  args?: LinuxSeccompArg[];
}

/** The runtime spec's `linux.seccomp`. */
export interface LinuxSeccomp {
  defaultAction: SeccompAction;
  /** The errno of a default SCMP_ACT_ERRNO (default EPERM). */
  defaultErrnoRet?: number;
  /** The ABIs the filter admits; any other is killed. Empty: the native one only. */
  architectures?: SeccompArch[];
  flags?: SeccompFlag[];
  listenerPath?: string;
  listenerMetadata?: string;
  syscalls?: LinuxSyscall[];
}

/** docker's condition on a syscall group: capabilities (all of), GOARCH names (any of), a kernel. */
export interface DockerSeccompFilter {
  caps?: string[];
  /** Go's GOARCH names: amd64, arm64, 386, arm, s390x, ppc64le, riscv64, ... */
  arches?: string[];
  /** "major.minor": the running kernel must be at least this. */
  minKernel?: string;
}

/** A syscall group of docker's profile. */
export interface DockerSyscall extends LinuxSyscall {
  comment?: string;
  /** Kept only if all of these hold. */
  includes?: DockerSeccompFilter;
  /** Dropped if any of these holds. */
  excludes?: DockerSeccompFilter;
}

/** docker's `archMap` entry: a native architecture and the ones it also runs. */
export interface DockerArchMap {
  architecture: SeccompArch;
  subArchitectures: SeccompArch[] | null;
}

/** docker's profile format (`--security-opt seccomp=FILE`, the daemon's default profile). */
export interface DockerProfile extends Omit<LinuxSeccomp, 'syscalls'> {
  /** Architectures by native one; not together with `architectures`. */
  archMap?: DockerArchMap[];
  syscalls?: DockerSyscall[];
}
