import type { TableArch } from './arch.js';
import { GENERATED_SYSCALLS } from './syscalls.generated.js';

/**
 * Syscalls newer than the headers the table was generated from (Linux 6.1): the kernels that
 * run containers have them, and docker's profile names the first six. Since Linux 5.1 a new
 * syscall gets the same number on every architecture (x32's with its bit), so each one needs a
 * number and the ABIs that lack it. A name the generated table has wins (and the test checks
 * that the numbers agree).
 */
const NEWER_SYSCALLS: readonly (readonly [name: string, nr: number, missingOn?: readonly TableArch[]])[] = [
  ['cachestat', 451], // 6.5
  ['fchmodat2', 452], // 6.6
  ['map_shadow_stack', 453, ['x32']], // 6.6; a 64-bit-only entry of x86_64's table
  ['futex_wake', 454], // 6.7
  ['futex_wait', 455],
  ['futex_requeue', 456],
  ['statmount', 457], // 6.8
  ['listmount', 458],
  ['lsm_get_self_attr', 459],
  ['lsm_set_self_attr', 460],
  ['lsm_list_modules', 461],
  ['mseal', 462], // 6.10
  ['setxattrat', 463], // 6.13
  ['getxattrat', 464],
  ['listxattrat', 465],
  ['removexattrat', 466],
  ['open_tree_attr', 467], // 6.15
  ['file_getattr', 468], // 6.17
  ['file_setattr', 469],
];

export const NEWER_SYSCALL_NAMES: ReadonlySet<string> = new Set(NEWER_SYSCALLS.map(([name]) => name));

/**
 * Names of syscalls that exist only on architectures without a table here (32-bit ARM, POWER,
 * s390, RISC-V, MIPS), or only as libseccomp's socketcall-multiplexed names: a profile may list
 * them (docker's does), and they are skipped on the architectures compiled here, but they are
 * not typos.
 */
const OTHER_ARCH_SYSCALLS: ReadonlySet<string> = new Set([
  // 32-bit ARM
  'arm_fadvise64_64',
  'arm_sync_file_range',
  'breakpoint',
  'cacheflush',
  'set_tls',
  'usr26',
  'usr32',
  'sync_file_range2', // also POWER
  // POWER
  'multiplexer',
  'rtas',
  'spu_create',
  'spu_run',
  'subpage_prot',
  'swapcontext',
  'switch_endian',
  'sys_debug_setcontext',
  // s390
  's390_guarded_storage',
  's390_pci_mmio_read',
  's390_pci_mmio_write',
  's390_runtime_instr',
  's390_sthyi',
  // RISC-V
  'riscv_flush_icache',
  'riscv_hwprobe',
  // MIPS
  'cachectl',
  'sysmips',
  // socketcall's operations where no syscall has their name
  'recv',
  'send',
]);

const tables = new Map<TableArch, ReadonlyMap<string, number>>();

/** name -> number on one ABI: the generated table and the newer syscalls. */
export function syscallTable(arch: TableArch): ReadonlyMap<string, number> {
  let table = tables.get(arch);
  if (!table) {
    const map = new Map<string, number>(Object.entries(GENERATED_SYSCALLS[arch]));
    const bit = arch === 'x32' ? 0x40000000 : 0;
    for (const [name, nr, missingOn] of NEWER_SYSCALLS)
      if (!map.has(name) && !missingOn?.includes(arch)) map.set(name, (bit | nr) >>> 0);
    table = map;
    tables.set(arch, table);
  }
  return table;
}

export const TABLE_ARCHES: readonly TableArch[] = ['x86_64', 'x86', 'x32', 'aarch64'];

/** Whether `name` is a syscall on `arch`; with no table for it, whether it is one anywhere. */
export function isSyscallOn(name: string, arch: TableArch | undefined): boolean {
  if (arch) return syscallTable(arch).has(name);
  return OTHER_ARCH_SYSCALLS.has(name) || TABLE_ARCHES.some((a) => syscallTable(a).has(name));
}
