import type { SeccompArch } from './types.js';

/** Every architecture name the runtime spec allows. */
export const SECCOMP_ARCHES: ReadonlySet<string> = new Set<SeccompArch>([
  'SCMP_ARCH_X86',
  'SCMP_ARCH_X86_64',
  'SCMP_ARCH_X32',
  'SCMP_ARCH_ARM',
  'SCMP_ARCH_AARCH64',
  'SCMP_ARCH_MIPS',
  'SCMP_ARCH_MIPS64',
  'SCMP_ARCH_MIPS64N32',
  'SCMP_ARCH_MIPSEL',
  'SCMP_ARCH_MIPSEL64',
  'SCMP_ARCH_MIPSEL64N32',
  'SCMP_ARCH_PPC',
  'SCMP_ARCH_PPC64',
  'SCMP_ARCH_PPC64LE',
  'SCMP_ARCH_S390',
  'SCMP_ARCH_S390X',
  'SCMP_ARCH_PARISC',
  'SCMP_ARCH_PARISC64',
  'SCMP_ARCH_RISCV64',
  'SCMP_ARCH_LOONGARCH64',
]);

/** The syscall tables this module has (syscalls.generated.ts). */
export type TableArch = 'x86_64' | 'x86' | 'x32' | 'aarch64';

/** What the compiler needs to know of an ABI that it can emit a section for. */
export interface AbiInfo {
  /** seccomp_data.arch for this ABI (linux/audit.h AUDIT_ARCH_*). */
  audit: number;
  /** Its syscall table; undefined when there is none here (the ABI is then killed). */
  table: TableArch | undefined;
  /**
   * Whether the kernel reads all 64 bits of a syscall argument. A 32-bit ABI's kernel entry
   * uses the low half only, and the high half of seccomp_data.args[] is whatever the register
   * held (a task can set it in 64-bit mode and then switch to 32-bit code): comparing it could
   * only let a value through that the kernel sees differently, so only the low half is compared.
   */
  wide: boolean;
}

export const AUDIT_ARCH_X86_64 = 0xc000003e;
export const AUDIT_ARCH_I386 = 0x40000003;
export const AUDIT_ARCH_AARCH64 = 0xc00000b7;
export const AUDIT_ARCH_ARM = 0x40000028;
/** x32 shares AUDIT_ARCH_X86_64: its syscall numbers are told apart by this bit. */
export const X32_SYSCALL_BIT = 0x40000000;

const ABIS: Partial<Record<SeccompArch, AbiInfo>> = {
  SCMP_ARCH_X86_64: { audit: AUDIT_ARCH_X86_64, table: 'x86_64', wide: true },
  SCMP_ARCH_X32: { audit: AUDIT_ARCH_X86_64, table: 'x32', wide: true },
  SCMP_ARCH_X86: { audit: AUDIT_ARCH_I386, table: 'x86', wide: false },
  SCMP_ARCH_AARCH64: { audit: AUDIT_ARCH_AARCH64, table: 'aarch64', wide: true },
  SCMP_ARCH_ARM: { audit: AUDIT_ARCH_ARM, table: undefined, wide: false },
};

export function abiInfo(arch: SeccompArch): AbiInfo | undefined {
  return ABIS[arch];
}

/** A Node.js architecture as docker sees its own: Go's GOARCH and libseccomp's native name. */
interface NativeArch {
  goarch: string;
  native: SeccompArch;
  /** The ABIs a CPU of this kind runs, native first: the filter has a section for each. */
  runs: readonly SeccompArch[];
}

const NATIVE: Partial<Record<NodeJS.Architecture, NativeArch>> = {
  x64: {
    goarch: 'amd64',
    native: 'SCMP_ARCH_X86_64',
    runs: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
  },
  arm64: { goarch: 'arm64', native: 'SCMP_ARCH_AARCH64', runs: ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM'] },
  ia32: { goarch: '386', native: 'SCMP_ARCH_X86', runs: ['SCMP_ARCH_X86'] },
  arm: { goarch: 'arm', native: 'SCMP_ARCH_ARM', runs: ['SCMP_ARCH_ARM'] },
  ppc64: { goarch: 'ppc64le', native: 'SCMP_ARCH_PPC64LE', runs: ['SCMP_ARCH_PPC64LE'] },
  s390x: { goarch: 's390x', native: 'SCMP_ARCH_S390X', runs: ['SCMP_ARCH_S390X', 'SCMP_ARCH_S390'] },
  riscv64: { goarch: 'riscv64', native: 'SCMP_ARCH_RISCV64', runs: ['SCMP_ARCH_RISCV64'] },
  loong64: { goarch: 'loong64', native: 'SCMP_ARCH_LOONGARCH64', runs: ['SCMP_ARCH_LOONGARCH64'] },
  mips: { goarch: 'mips', native: 'SCMP_ARCH_MIPS', runs: ['SCMP_ARCH_MIPS'] },
  mipsel: { goarch: 'mipsle', native: 'SCMP_ARCH_MIPSEL', runs: ['SCMP_ARCH_MIPSEL'] },
};

export function nativeArch(arch: NodeJS.Architecture): NativeArch | undefined {
  return NATIVE[arch];
}
