/**
 * runc's `tmpcopyup` (podman puts it on the tmpfs mounts of `--tmpfs` and `--read-only`): a tmpfs
 * that starts with a copy of what the container has where it is mounted (an image's /run/lock,
 * /etc for `--tmpfs /etc`).
 *
 * Two halves. planCopyUp walks the container's directory in this process, before the child is
 * cloned: every entry through an fd of its directory, never a path (lstat through
 * /proc/self/fd/DIR/NAME, openat O_PATH|O_NOFOLLOW checked against what lstat saw), with its
 * owner, mode, times and, for a regular file, the extents that hold data. CopyUpSteps turns the
 * plan into the child's steps, in place of the tmpfs's mount and before any later mount of the
 * config. The threat is a hostile image, and a volume that another container writes while this
 * one starts:
 *
 * - Written by the child, in the container's cgroup, with a memory map of its own (the caller
 *   asks spawn for one): the kernel charges a tmpfs page to the cgroup of the memory map's owner,
 *   so a child sharing this process's memory would charge the copy to the runtime, beyond the
 *   container's limit. The later mounts are not made yet, so nothing is written into a bind
 *   mount's host source below the tmpfs (podman's /run/.containerenv below /run).
 * - Read from the very files the walk saw: it keeps each regular file open (reopened through
 *   /proc/self/fd from an O_PATH fd whose type, inode and mount were checked, so a device node
 *   swapped in is never opened), and the caller passes those fds to the child (spawn's keepFds).
 *   Content, owner and mode are one inode's: a file renamed in meanwhile (a volume another
 *   container writes) cannot get the owner or mode planned for the one it replaced.
 * - Written into a tmpfs made detached (fsmount) and moved onto the mount point only when full:
 *   nothing of the copy is looked up by path in the container's tree, where a shared volume's
 *   directory could be swapped in for the mount point.
 * - Bounded: holes are not copied (a sparse file of a terabyte costs nothing), hard links stay
 *   links (copied once), and the entries, data extents and name bytes of a plan are capped, so a
 *   hostile directory cannot make this process build a program of gigabytes. The tmpfs's size
 *   (ENOSPC) and the container's memory limit bound the data.
 * - Owners are the container's: the child works in the container's user namespace, so a host uid
 *   is written as the uid it maps to; a file whose owner it does not map is refused by name.
 * Extended attributes are not copied (runc copies none either).
 */
import {
  type BigIntStats,
  closeSync,
  fstatSync,
  lstatSync,
  opendirSync,
  openSync,
  readFileSync,
} from 'node:fs';
import {
  AT_SYMLINK_NOFOLLOW,
  type ChildProgram,
  type DataExtent,
  type DataRef,
  dataExtents,
  O_CLOEXEC,
  O_CREAT,
  O_DIRECTORY,
  O_EXCL,
  O_NOCTTY,
  O_NOFOLLOW,
  O_NONBLOCK,
  O_PATH,
  O_RDONLY,
  O_WRONLY,
  openat,
  readlinkat,
  type Slot,
  SyscallError,
  timespecs,
} from '@box/sys';
import { SpecError } from '../errors.js';
import { mountAttributes, type SafeSteps } from './safe-path.js';

/** Entries (files, directories, links) one tmpcopyup may copy. */
export const MAX_COPY_UP_ENTRIES = 16384;
/** Regular files the copies of one container hold open (from the walk to the child's clone). */
export const MAX_COPY_UP_FILES = 4096;
/** Data extents of all its files: each is two of the child's steps. */
export const MAX_COPY_UP_EXTENTS = 65536;
/** Bytes of all its names and symlink targets: each is in the child's program. */
export const MAX_COPY_UP_NAME_BYTES = 4 << 20;
/** The child's relative paths must fit PATH_MAX with their NUL. */
const PATH_MAX = 4096;
/** sendfile moves at most 0x7ffff000 bytes a call: extents go in pieces of 1 GiB. */
const SENDFILE_PIECE = 1 << 30;
const SEEK_SET = 0;
const S_IFMT = 0o170000;
/** O_TMPFILE: an unnamed file in the directory (__O_TMPFILE | O_DIRECTORY). */
const O_TMPFILE = 0o20200000;
const EIO = 5;
const S_ISUID = 0o4000;
const S_ISGID = 0o2000;

export interface IdMap {
  containerID: number;
  hostID: number;
  size: number;
}

interface Attributes {
  /** Permission bits (with setuid, setgid, sticky). */
  perm: number;
  uid: number;
  gid: number;
  atimeNs: bigint;
  mtimeNs: bigint;
}

/** One step of the copy, in order: a directory's `dir` before its entries, its `dir-end` after. */
export type CopyUpEntry =
  | { kind: 'dir'; path: Buffer }
  | { kind: 'dir-end'; path: Buffer; attributes: Attributes }
  | {
      kind: 'file';
      path: Buffer;
      attributes: Attributes;
      size: number;
      extents: DataExtent[];
      /** This process's fd of the file (O_RDONLY), which the child reads: see closeCopyUp. */
      fd: number;
    }
  | { kind: 'symlink'; path: Buffer; attributes: Attributes; target: Buffer }
  | { kind: 'node'; path: Buffer; attributes: Attributes; type: number; rdev: number }
  | { kind: 'link'; path: Buffer; to: Buffer };

export interface CopyUpPlanOptions {
  /** The mount's destination, for errors ("tmpcopyup on /run: /run/x …"). */
  destination: string;
  /** The container's user namespace's maps (host ids → the ids the child writes); none: the host's ids. */
  uidMappings?: readonly IdMap[];
  gidMappings?: readonly IdMap[];
  /**
   * The directory is in a bind mount's source (a volume other containers may write): its device
   * nodes are refused, not made again on a tmpfs that may allow devices, and its files copied
   * without setuid and setgid (the fd held fixes the inode, not bytes rewritten meanwhile).
   */
  shared?: boolean;
  /** Files the container's other copies hold open already (see MAX_COPY_UP_FILES). */
  held?: number;
}

/**
 * What the directory open as `dirFd` (an fd of this process, O_PATH is enough) holds, as the
 * child will copy it. Empty when there is nothing to copy. Its files are held open until
 * closeCopyUp (on a refusal, they are closed before it throws).
 */
export function planCopyUp(dirFd: number, options: CopyUpPlanOptions): CopyUpEntry[] {
  const where = `tmpcopyup on ${options.destination}`;
  const prefix = options.destination === '/' ? '' : options.destination;
  // Names are shown on one line whatever bytes they hold.
  const show = (path: Buffer) => JSON.stringify(`${prefix}/${path.toString('utf8')}`).slice(1, -1);
  const refuse = (why: string): never => {
    throw new SpecError(`${where}: ${why}`);
  };
  const mount = mountId(dirFd);
  const plan: CopyUpEntry[] = [];
  const linked = new Map<string, Buffer>();
  let extents = 0;
  let nameBytes = 0;
  let files = 0;
  const walk = (fd: number, dir: Buffer | undefined): void => {
    for (const name of listDirectory(fd, MAX_COPY_UP_ENTRIES - plan.length, () =>
      refuse(`more than ${MAX_COPY_UP_ENTRIES} files to copy into the tmpfs`),
    )) {
      const path = dir ? Buffer.concat([dir, Buffer.from('/'), name]) : name;
      if (path.length >= PATH_MAX) refuse(`the path ${show(path)} is too long to copy`);
      nameBytes += path.length;
      if (nameBytes > MAX_COPY_UP_NAME_BYTES)
        refuse(`more than ${MAX_COPY_UP_NAME_BYTES} bytes of names to copy`);
      // The final name is not followed; /proc/self/fd/DIR is the directory itself.
      const stats = lstatSync(Buffer.concat([Buffer.from(`/proc/self/fd/${fd}/`), name]), { bigint: true });
      const attributes = attributesOf(stats, show(path), where, options);
      if (stats.isDirectory()) {
        const sub = openEntry(fd, name, stats, mount, O_DIRECTORY, () =>
          refuse(`${show(path)} is another mount, or changed while it was read`),
        );
        try {
          plan.push({ kind: 'dir', path });
          walk(sub, path);
          plan.push({ kind: 'dir-end', path, attributes });
        } finally {
          closeSync(sub);
        }
        continue;
      }
      const identity = `${stats.dev}:${stats.ino}`;
      const first = stats.nlink > 1n ? linked.get(identity) : undefined;
      if (first) {
        plan.push({ kind: 'link', path, to: first });
        continue;
      }
      if (stats.nlink > 1n) linked.set(identity, path);
      if (stats.isSymbolicLink()) {
        const target = readlinkat(fd, name);
        nameBytes += target.length;
        plan.push({ kind: 'symlink', path, attributes, target });
      } else if (stats.isFile()) {
        if (stats.size > BigInt(Number.MAX_SAFE_INTEGER)) refuse(`${show(path)} is too large to copy`);
        if ((options.held ?? 0) + files >= MAX_COPY_UP_FILES)
          refuse(`more than ${MAX_COPY_UP_FILES} files to copy into the container's tmpfs mounts`);
        const entry = openEntry(fd, name, stats, mount, 0, () =>
          refuse(`${show(path)} is another mount, or changed while it was read`),
        );
        // Read through /proc/self/fd from the O_PATH fd whose type was checked: never an open of
        // whatever name is there now (a device node swapped in would be opened, as root).
        let data: number;
        try {
          data = openSync(`/proc/self/fd/${entry}`, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        } finally {
          closeSync(entry);
        }
        let fileExtents: DataExtent[];
        try {
          fileExtents = dataExtents(data, Number(stats.size), MAX_COPY_UP_EXTENTS - extents);
        } catch (error) {
          closeSync(data);
          throw error;
        }
        // Kept open (the child reads it), so it is in the plan before anything else can throw.
        files++;
        if (options.shared) attributes.perm &= ~(S_ISUID | S_ISGID);
        plan.push({
          kind: 'file',
          path,
          attributes,
          size: Number(stats.size),
          extents: fileExtents,
          fd: data,
        });
        // Each extent is copied in pieces of at most 1 GiB, each two steps of the child's.
        extents += fileExtents.reduce((sum, e) => sum + Math.ceil(e.length / SENDFILE_PIECE), 0);
        if (extents > MAX_COPY_UP_EXTENTS) refuse(`more than ${MAX_COPY_UP_EXTENTS} runs of data to copy`);
      } else {
        // FIFOs, sockets and device nodes are made again (a device in a user namespace fails, named).
        if (options.shared && (stats.isCharacterDevice() || stats.isBlockDevice()))
          refuse(`${show(path)} is a device node in a bind mount's source`);
        plan.push({
          kind: 'node',
          path,
          attributes,
          type: Number(stats.mode) & S_IFMT,
          rdev: Number(stats.rdev),
        });
      }
    }
  };
  try {
    walk(dirFd, undefined);
  } catch (error) {
    closeCopyUp(plan);
    throw error;
  }
  return plan;
}

/** What the first pass found for one tmpcopyup: the second must find the same. */
interface PlannedCopy {
  resolved: string;
  /** The covered directory's dev, inode and mount; undefined when there was none. */
  identity: string | undefined;
  plan: CopyUpEntry[];
}

/**
 * The copies of one container, planned in a first pass over its mounts (before the child is
 * cloned, so that their fds can be the child's) and taken by the second, which makes the steps.
 * The second checks that each mount resolved to the same directory as in the first: a volume
 * written by another container could have swapped it (for a symlink to /etc, say) in between.
 */
export class RootfsCopies {
  /** By the mount's index in the config. */
  private readonly planned = new Map<number, PlannedCopy>();
  private planning = true;

  /** Ends the first pass: from now on, plans are taken and checked, never made. */
  endPlanning(): this {
    this.planning = false;
    return this;
  }

  /**
   * The plan for mount `index` (see planCopyUp): made by `make` in the first pass, taken and
   * checked in the second (`changed` throws). `dir` is the covered directory's fd, if any.
   */
  plan(
    index: number,
    resolved: string,
    dir: number | undefined,
    make: (held: number) => CopyUpEntry[],
    changed: () => never,
  ): CopyUpEntry[] {
    const identity = dir === undefined ? undefined : identityOf(dir);
    if (this.planning) {
      const plan = dir === undefined ? [] : make(this.fds().length);
      this.planned.set(index, { resolved, identity, plan });
      return plan;
    }
    const planned = this.planned.get(index);
    if (!planned || planned.resolved !== resolved || planned.identity !== identity) changed();
    return planned.plan;
  }

  /** Every fd the plans hold: the child's too (spawn's keepFds). */
  fds(): number[] {
    return [...this.planned.values()].flatMap(({ plan }) => copyUpFds(plan));
  }

  /** Closes every fd the plans hold (once the child is cloned, or if it never is). */
  close(): void {
    const plans = [...this.planned.values()];
    this.planned.clear();
    for (const { plan } of plans) closeCopyUp(plan);
  }
}

function identityOf(fd: number): string {
  const stats = fstatSync(fd, { bigint: true });
  return `${stats.dev}:${stats.ino}:${mountId(fd)}`;
}

/** The fds a plan holds, to be passed to the child. */
export function copyUpFds(plan: readonly CopyUpEntry[]): number[] {
  return plan.flatMap((entry) => (entry.kind === 'file' ? [entry.fd] : []));
}

/** Closes the fds a plan holds (once the child is cloned, or if it never is). */
export function closeCopyUp(plan: readonly CopyUpEntry[]): void {
  for (const fd of copyUpFds(plan)) closeSync(fd);
}

/** The names in a directory, sorted; `tooMany` is called (and must throw) past `limit`. */
function listDirectory(fd: number, limit: number, tooMany: () => never): Buffer[] {
  // Read as a stream: a directory of millions of names is refused without holding them all.
  // Node's types omit it, but a Dir reads names as raw bytes with encoding 'buffer' (not UTF-8).
  const dir = opendirSync(`/proc/self/fd/${fd}`, { encoding: 'buffer' as BufferEncoding });
  const names: Buffer[] = [];
  try {
    for (let entry = dir.readSync(); entry !== null; entry = dir.readSync()) {
      if (names.length >= limit) tooMany();
      names.push(entry.name as unknown as Buffer);
    }
  } finally {
    dir.closeSync();
  }
  return names.sort(Buffer.compare);
}

/** The mount an fd is on (fdinfo's mnt_id): bind mounts of one file system share st_dev. */
export function mountId(fd: number): number {
  const id = /^mnt_id:\s*(\d+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))?.[1];
  if (id === undefined) throw new Error(`no mnt_id in /proc/self/fdinfo/${fd}`);
  return Number(id);
}

/**
 * An O_PATH fd of `name` in `dirFd`, never following a symlink, that is the file lstat saw
 * (same inode, same type) on the copied directory's mount; otherwise `changed` (which throws).
 */
function openEntry(
  dirFd: number,
  name: Buffer,
  seen: BigIntStats,
  mount: number,
  flags: number,
  changed: () => never,
): number {
  let fd: number;
  try {
    fd = openat(dirFd, name, O_PATH | O_NOFOLLOW | flags);
  } catch (error) {
    if (error instanceof SyscallError) changed();
    throw error;
  }
  try {
    const stats = fstatSync(fd, { bigint: true });
    const same =
      stats.ino === seen.ino &&
      stats.dev === seen.dev &&
      (stats.mode & BigInt(S_IFMT)) === (seen.mode & BigInt(S_IFMT));
    if (!same || mountId(fd) !== mount) changed();
    return fd;
  } catch (error) {
    closeSync(fd);
    throw error;
  }
}

function attributesOf(
  stats: BigIntStats,
  shown: string,
  where: string,
  options: CopyUpPlanOptions,
): Attributes {
  return {
    perm: Number(stats.mode) & 0o7777,
    uid: containerId(options.uidMappings, Number(stats.uid), 'uid', shown, where),
    gid: containerId(options.gidMappings, Number(stats.gid), 'gid', shown, where),
    atimeNs: stats.atimeNs,
    mtimeNs: stats.mtimeNs,
  };
}

function containerId(
  maps: readonly IdMap[] | undefined,
  id: number,
  kind: string,
  shown: string,
  where: string,
): number {
  if (!maps) return id;
  const map = maps.find((m) => id >= m.hostID && id < m.hostID + m.size);
  if (!map)
    throw new SpecError(
      `${where}: ${shown} is owned by host ${kind} ${id}, which the container's user namespace does not map`,
    );
  return map.containerID + (id - map.hostID);
}

const MS_RDONLY = 0x1;
const MS_STRICTATIME = 1 << 24;
/** mount(2) flags a copied tmpfs takes: the per-mount ones, which fsmount and mount_setattr set. */
const COPY_UP_MOUNT_FLAGS =
  MS_RDONLY |
  0x2 |
  0x4 |
  0x8 |
  0x400 |
  0x800 |
  0x100 |
  MS_STRICTATIME |
  /* RELATIME */ (1 << 21) |
  /* SILENT */ 0x8000;
/** mount(2) flags of the file system itself, which fsconfig takes by name. */
const SUPERBLOCK_FLAGS: readonly [ms: number, name: string][] = [
  [0x10, 'sync'],
  [0x40, 'mand'],
  [0x80, 'dirsync'],
  [1 << 25, 'lazytime'],
];
const MOUNT_ATTR_RDONLY = 0x1;
const MOUNT_ATTR_STRICTATIME = 0x20;
const FSOPEN_CLOEXEC = 1;
const FSMOUNT_CLOEXEC = 1;
const FSCONFIG_SET_FLAG = 0;
const FSCONFIG_SET_STRING = 1;
const FSCONFIG_CMD_CREATE = 6;
const AT_EMPTY_PATH = 0x1000;

/** mount(2) flags → fsmount's MOUNT_ATTR_* (relatime is its default). */
function tmpfsAttributes(flags: number): number {
  return mountAttributes(flags) | (flags & MS_STRICTATIME ? MOUNT_ATTR_STRICTATIME : 0);
}

/** The child's side: a detached tmpfs, the plan's steps into it, then the tmpfs put in place. */
export class CopyUpSteps {
  constructor(
    private readonly program: ChildProgram,
    /**
     * The tmpfs's root, then each copy: two slots free between the steps of other helpers (a
     * child program has 16 in all).
     */
    private readonly slots: readonly [dest: Slot, output: Slot],
  ) {}

  /** The slot to open the tmpfs's root in before add(), and close after it. */
  get dest(): Slot {
    return this.slots[0];
  }

  /**
   * A new tmpfs, detached (fsopen, fsconfig, fsmount): its mount fd is left in `this.dest`, the
   * root of a file system no other process can reach until attach() puts it in place. So the
   * copy's paths, looked up below it, meet only what the copy made: a directory of a shared
   * volume swapped in for the mount point meanwhile cannot take its place (nothing is looked up
   * by path until the copy is done). `flags` are mount(2)'s; `data` the tmpfs's options.
   */
  createTmpfs(source: string, flags: number, data: readonly string[], shown: string): void {
    const p = this.program;
    const [dest, context] = this.slots;
    const superblock = SUPERBLOCK_FLAGS.filter(([ms]) => flags & ms).map(([, name]) => name);
    const unsupported = flags & ~COPY_UP_MOUNT_FLAGS & ~SUPERBLOCK_FLAGS.reduce((all, [ms]) => all | ms, 0);
    if (unsupported !== 0)
      throw new SpecError(
        `tmpcopyup on ${shown}: mount flags 0x${unsupported.toString(16)} are not taken with a copy`,
      );
    const step = `make the tmpfs for ${shown}`;
    p.call('fsopen', step, [p.string('tmpfs'), FSOPEN_CLOEXEC], { store: context });
    p.call('fsconfig', `${step}: source`, [
      context,
      FSCONFIG_SET_STRING,
      p.string('source'),
      p.string(source),
      0,
    ]);
    for (const option of [...superblock, ...data]) {
      const eq = option.indexOf('=');
      const [key, value] = eq === -1 ? [option, undefined] : [option.slice(0, eq), option.slice(eq + 1)];
      p.call(
        'fsconfig',
        `${step}: ${option}`,
        value === undefined
          ? [context, FSCONFIG_SET_FLAG, p.string(key), null, 0]
          : [context, FSCONFIG_SET_STRING, p.string(key), p.string(value), 0],
      );
    }
    p.call('fsconfig', step, [context, FSCONFIG_CMD_CREATE, null, null, 0]);
    // Read-only only once filled (attach()).
    p.call('fsmount', step, [context, FSMOUNT_CLOEXEC, tmpfsAttributes(flags & ~MS_RDONLY)], { store: dest });
    p.close(context, `${step}: close its context`);
  }

  /** After add(): the tmpfs made read-only if asked, then moved onto `target` (see SafeSteps.moveMount). */
  attach(safe: SafeSteps, target: string, flags: number, shown: string): void {
    const p = this.program;
    const [dest] = this.slots;
    if (flags & MS_RDONLY) {
      const attr = Buffer.alloc(32);
      attr.writeBigUInt64LE(BigInt(MOUNT_ATTR_RDONLY), 0);
      p.call('mount_setattr', `make the tmpfs for ${shown} read-only`, [
        dest,
        p.string(''),
        AT_EMPTY_PATH,
        p.bytes(attr),
        attr.length,
      ]);
    }
    safe.moveMount(dest, target);
    p.close(dest, `close the tmpfs for ${shown}`);
  }

  /**
   * The steps of `plan`, with `this.dest` the detached tmpfs (createTmpfs); the plan's fds must be
   * the child's too (spawn's keepFds). `shown` is the mount's destination, for the steps' names.
   */
  add(plan: readonly CopyUpEntry[], shown: string): void {
    const p = this.program;
    const [dest, output] = this.slots;
    const name = (path: Buffer) => p.bytes(Buffer.concat([path, Buffer.alloc(1)]), 1);
    for (const entry of plan) {
      const path = name(entry.path);
      // On one line whatever bytes the name holds.
      const label = JSON.stringify(`copy ${shown}/${entry.path.toString('utf8')} into the tmpfs`).slice(
        1,
        -1,
      );
      const step = (what: string) => `${label}: ${what}`;
      switch (entry.kind) {
        case 'dir':
          p.call('mkdirat', step('mkdir'), [dest, path, 0o700]);
          break;
        case 'dir-end':
          this.attributes(path, entry.attributes, step, true);
          break;
        case 'link':
          p.call('linkat', step('link'), [dest, name(entry.to), dest, path, 0]);
          break;
        case 'symlink':
          p.call('symlinkat', step('symlink'), [name(entry.target), dest, path]);
          this.attributes(path, entry.attributes, step, false);
          break;
        case 'node':
          p.call('mknodat', step('mknod'), [dest, path, entry.type | entry.attributes.perm, entry.rdev]);
          this.attributes(path, entry.attributes, step, true);
          break;
        case 'file':
          this.file(path, entry, output, step);
          break;
      }
    }
    // sendfile's last call into a full tmpfs is short, not an error, and ftruncate would pad the
    // file with zeros. One byte more, in an unnamed file, fails with ENOSPC if the copy ran out.
    const fits = `copy ${shown} into the tmpfs (checking it fits)`;
    p.call('openat', fits, [dest, p.string('.'), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0o600], { store: output });
    p.call('write', fits, [output, p.bytes(Buffer.from('x')), 1]);
    p.close(output, fits);
  }

  private file(
    path: DataRef,
    entry: CopyUpEntry & { kind: 'file' },
    output: Slot,
    step: (what: string) => string,
  ): void {
    const p = this.program;
    const [dest] = this.slots;
    p.call(
      'openat',
      step('create'),
      [dest, path, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0o600],
      {
        store: output,
      },
    );
    for (const extent of entry.extents) {
      for (let done = 0; done < extent.length; done += SENDFILE_PIECE) {
        const offset = extent.offset + done;
        const length = Math.min(SENDFILE_PIECE, extent.length - done);
        // The copy's holes stay holes: write each extent where it is in the source.
        p.call('lseek', step('seek'), [output, offset, SEEK_SET]);
        const at = Buffer.alloc(8);
        at.writeBigUInt64LE(BigInt(offset));
        // Nothing to read where the walk saw data: the file shrank meanwhile.
        p.call('sendfile', step('copy'), [output, entry.fd, p.bytes(at), length], { zeroErrno: EIO });
      }
    }
    p.call('ftruncate', step('set its size'), [output, entry.size]);
    const { uid, gid, perm } = entry.attributes;
    // Owner before mode: chown clears setuid and setgid.
    p.call('fchown', step('chown'), [output, uid, gid]);
    p.call('fchmod', step('chmod'), [output, perm]);
    p.call('utimensat', step('set its times'), [output, null, p.bytes(timespecs(entry.attributes)), 0]);
    p.close(entry.fd, step('close its source'));
    p.close(output, step('close it'));
  }

  /** Owner, then mode (not for a symlink: Linux has no modes on them), then times; never following a symlink. */
  private attributes(
    path: DataRef,
    attributes: Attributes,
    step: (what: string) => string,
    withMode: boolean,
  ): void {
    const p = this.program;
    const [dest] = this.slots;
    p.call('fchownat', step('chown'), [dest, path, attributes.uid, attributes.gid, AT_SYMLINK_NOFOLLOW]);
    // What the copy made is never a symlink where a mode is set: fchmodat's flag-less call is safe.
    if (withMode) p.call('fchmodat', step('chmod'), [dest, path, attributes.perm]);
    p.call('utimensat', step('set its times'), [
      dest,
      path,
      p.bytes(timespecs(attributes)),
      AT_SYMLINK_NOFOLLOW,
    ]);
  }
}
