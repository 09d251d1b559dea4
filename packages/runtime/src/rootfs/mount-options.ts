import { MS } from '@box/sys';

export interface ParsedMountOptions {
  flags: number;
  /** Propagation flags applied in a second mount call (MS_PRIVATE, ...). */
  propagation: number;
  /** Filesystem-specific options, passed as mount data. */
  data: string[];
  bind: boolean;
  recursive: boolean;
  readonly: boolean;
  /**
   * runc's `tmpcopyup` (podman puts it on the tmpfs mounts of `--tmpfs` and `--read-only`): a
   * tmpfs starts with a copy of what the image has where it is mounted (see prepare.ts for what
   * box does of it). Not mount data: the kernel's tmpfs refuses it.
   */
  copyUp: boolean;
}

const FLAGS: Record<string, [set: boolean, flag: number]> = {
  ro: [true, MS.RDONLY],
  rw: [false, MS.RDONLY],
  nosuid: [true, MS.NOSUID],
  suid: [false, MS.NOSUID],
  nodev: [true, MS.NODEV],
  dev: [false, MS.NODEV],
  noexec: [true, MS.NOEXEC],
  exec: [false, MS.NOEXEC],
  sync: [true, MS.SYNCHRONOUS],
  async: [false, MS.SYNCHRONOUS],
  dirsync: [true, MS.DIRSYNC],
  noatime: [true, MS.NOATIME],
  atime: [false, MS.NOATIME],
  nodiratime: [true, MS.NODIRATIME],
  diratime: [false, MS.NODIRATIME],
  relatime: [true, MS.RELATIME],
  norelatime: [false, MS.RELATIME],
  strictatime: [true, MS.STRICTATIME],
  nostrictatime: [false, MS.STRICTATIME],
  nosymfollow: [true, MS.NOSYMFOLLOW],
};

const PROPAGATION: Record<string, number> = {
  private: MS.PRIVATE,
  rprivate: MS.PRIVATE | MS.REC,
  slave: MS.SLAVE,
  rslave: MS.SLAVE | MS.REC,
  shared: MS.SHARED,
  rshared: MS.SHARED | MS.REC,
  unbindable: MS.UNBINDABLE,
  runbindable: MS.UNBINDABLE | MS.REC,
};

/** The mount(2) flags of a propagation name (rprivate, rslave, ...), or undefined if it is not one. */
export function propagationFlags(name: string): number | undefined {
  return Object.hasOwn(PROPAGATION, name) ? PROPAGATION[name] : undefined;
}

/** Splits OCI mount options into mount(2) flags, propagation and data, as runc does. */
export function parseMountOptions(options: readonly string[] = []): ParsedMountOptions {
  const result: ParsedMountOptions = {
    flags: 0,
    propagation: 0,
    data: [],
    bind: false,
    recursive: false,
    readonly: false,
    copyUp: false,
  };
  for (const option of options) {
    const flag = FLAGS[option];
    if (flag) {
      const [set, bit] = flag;
      result.flags = set ? result.flags | bit : result.flags & ~bit;
      continue;
    }
    const propagation = PROPAGATION[option];
    if (propagation !== undefined) {
      result.propagation |= propagation;
      continue;
    }
    if (option === 'tmpcopyup' || option === 'notmpcopyup') {
      result.copyUp = option === 'tmpcopyup';
      continue;
    }
    if (option === 'bind' || option === 'rbind') {
      result.bind = true;
      result.recursive ||= option === 'rbind';
      continue;
    }
    result.data.push(option);
  }
  result.readonly = (result.flags & MS.RDONLY) !== 0;
  return result;
}
