import { fileSystemType } from '@box/sys';

/**
 * File systems of the kernel's own (proc, sysfs, cgroup, ...) by statfs f_type. box reads
 * and writes container files as host root, so reading /proc/kmsg through a container's /proc
 * would hand the container the host's kernel log (and take it from the host's readers), and
 * other files there block or act on being read or written. box never reads or writes a
 * container's files on one (see copy.ts and read.ts).
 */
const KERNEL_FS = new Map<number, string>([
  [0x9fa0, 'proc'],
  [0x62656572, 'sysfs'],
  [0x64626720, 'debugfs'],
  [0x74726163, 'tracefs'],
  [0x73636673, 'securityfs'],
  [0x27e0eb, 'cgroup'],
  [0x63677270, 'cgroup2'],
  [0xcafe4a11, 'bpf'],
  [0x6165676c, 'pstore'],
  [0xde5e81e4, 'efivarfs'],
  [0x62656570, 'configfs'],
  [0x65735543, 'fusectl'],
  [0x42494e4d, 'binfmt_misc'],
  [0x6e736673, 'nsfs'],
  [0xf97cff8c, 'selinuxfs'],
  [0x19800202, 'mqueue'],
  [0x1cd1, 'devpts'],
  [0x958458f6, 'hugetlbfs'],
]);

/** The name of the kernel file system `fd` is on, or undefined for an ordinary one. */
export function kernelFileSystem(fd: number): string | undefined {
  return KERNEL_FS.get(fileSystemType(fd));
}
