/**
 * runc's `tmpcopyup` (podman puts it on the tmpfs mounts of `--tmpfs` and `--read-only`): a tmpfs
 * that starts with a copy of what the container has where it is mounted (an image's /run/lock,
 * /etc for `--tmpfs /etc`).
 *
 * Two halves. planCopyUp walks the container's directory in this process, before the child is
 * cloned: every entry through an fd of its directory, never a path (lstat through
 * /proc/self/fd/DIR/NAME, openat O_PATH|O_NOFOLLOW checked against what lstat saw), with its
 * owner, mode, times and, for a regular file, the extents that hold data. CopyUpSteps turns the
 * plan into the child's steps, right after the child mounts the tmpfs and before any later mount
 * of the config. The threat is a hostile image, and a volume that another container writes while
 * this one starts:
 *
 * - Written by the child, in the container's cgroup, with a memory map of its own (the caller
 *   asks spawn for one): the kernel charges a tmpfs page to the cgroup of the memory map's owner,
 *   so a child sharing this process's memory would charge the copy to the runtime, beyond the
 *   container's limit. The later mounts are not made yet, so nothing is written into a bind
 *   mount's host source below the tmpfs (podman's /run/.containerenv below /run).
 * - Read through a detached clone of the covered directory's mount, read-only, nosuid and nodev,
 *   each file opened below it with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV):
 *   a symlink swapped in fails the step instead of leading it out, and a device node swapped in
 *   cannot be opened. Written into the fresh tmpfs, in which only these steps make anything.
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
  AT_EMPTY_PATH,
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
  RESOLVE_BENEATH,
  RESOLVE_NO_MAGICLINKS,
  RESOLVE_NO_SYMLINKS,
  RESOLVE_NO_XDEV,
  readlinkat,
  type Slot,
  SyscallError,
  timespecs,
} from '@box/sys';
import { SpecError } from '../errors.js';

/** Entries (files, directories, links) one tmpcopyup may copy. */
export const MAX_COPY_UP_ENTRIES = 16384;
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
const S_ISUID = 0o4000;
const S_ISGID = 0o2000;
const OPEN_TREE_CLONE = 1;
const MOUNT_ATTR_RDONLY = 0x1;
const MOUNT_ATTR_NOSUID = 0x2;
const MOUNT_ATTR_NODEV = 0x4;

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
  | { kind: 'file'; path: Buffer; attributes: Attributes; size: number; extents: DataExtent[] }
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
   * The directory is in a bind mount's source (a volume another container may write while this
   * one starts): regular files are copied without setuid and setgid, because the child reads a
   * file again by name after this walk, and a file swapped in between would get the mode planned
   * for the one it replaced (a root-owned setuid binary's, say) over its own bytes.
   */
  shared?: boolean;
}

/**
 * What the directory open as `dirFd` (an fd of this process, O_PATH is enough) holds, as the
 * child will copy it. Empty when there is nothing to copy.
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
        const entry = openEntry(fd, name, stats, mount, 0, () =>
          refuse(`${show(path)} is another mount, or changed while it was read`),
        );
        // Read through /proc/self/fd from the O_PATH fd whose type was checked: never an open of
        // whatever name is there now (a device node swapped in would be opened, as root).
        let data: number;
        try {
          data = openSync(`/proc/self/fd/${entry}`, O_RDONLY | O_NONBLOCK | O_NOCTTY);
        } finally {
          closeSync(entry);
        }
        let fileExtents: DataExtent[];
        try {
          fileExtents = dataExtents(data, Number(stats.size), MAX_COPY_UP_EXTENTS - extents);
        } finally {
          closeSync(data);
        }
        extents += fileExtents.length;
        if (extents > MAX_COPY_UP_EXTENTS) refuse(`more than ${MAX_COPY_UP_EXTENTS} runs of data to copy`);
        if (options.shared) attributes.perm &= ~(S_ISUID | S_ISGID);
        plan.push({ kind: 'file', path, attributes, size: Number(stats.size), extents: fileExtents });
      } else {
        // FIFOs, sockets and device nodes are made again (a device in a user namespace fails, named).
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
  walk(dirFd, undefined);
  return plan;
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
function mountId(fd: number): number {
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

/** The child's side: the plan's steps between the tmpfs's mount and the config's next mount. */
export class CopyUpSteps {
  /** The covered directory, its read-only clone, the tmpfs's root, then one file's source and copy. */
  readonly source: Slot;
  readonly dest: Slot;
  private readonly tree: Slot;
  private readonly input: Slot;
  private readonly output: Slot;

  constructor(private readonly program: ChildProgram) {
    this.source = program.slot();
    this.dest = program.slot();
    this.tree = program.slot();
    this.input = program.slot();
    this.output = program.slot();
  }

  /**
   * Before the tmpfs is mounted, with `this.source` open on the directory it covers: a detached
   * clone of that directory's mount, read-only, nosuid and nodev, from which the files are read.
   * A device node swapped in for a planned file cannot be opened through it (nodev).
   */
  cloneSource(shown: string): void {
    const p = this.program;
    p.call(
      'open_tree',
      `clone the mount of ${shown} to copy it`,
      [this.source, p.string(''), OPEN_TREE_CLONE | O_CLOEXEC | AT_EMPTY_PATH],
      { store: this.tree },
    );
    const attr = Buffer.alloc(32);
    attr.writeBigUInt64LE(BigInt(MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV), 0);
    p.call('mount_setattr', `make the clone of ${shown} read-only, nosuid and nodev`, [
      this.tree,
      p.string(''),
      AT_EMPTY_PATH,
      p.bytes(attr),
      attr.length,
    ]);
    p.close(this.source, `close ${shown}`);
  }

  /**
   * The steps of `plan`, after cloneSource and with `this.dest` open on the tmpfs's root.
   * `shown` is the mount's destination, for the steps' names.
   */
  add(plan: readonly CopyUpEntry[], shown: string): void {
    const p = this.program;
    const name = (path: Buffer) => p.bytes(Buffer.concat([path, Buffer.alloc(1)]), 1);
    for (const entry of plan) {
      const path = name(entry.path);
      const label = `copy ${shown}/${entry.path.toString('utf8')} into the tmpfs`;
      const step = (what: string) => `${label}: ${what}`;
      switch (entry.kind) {
        case 'dir':
          p.call('mkdirat', step('mkdir'), [this.dest, path, 0o700]);
          break;
        case 'dir-end':
          this.attributes(path, entry.attributes, step, true);
          break;
        case 'link':
          p.call('linkat', step('link'), [this.dest, name(entry.to), this.dest, path, 0]);
          break;
        case 'symlink':
          p.call('symlinkat', step('symlink'), [name(entry.target), this.dest, path]);
          this.attributes(path, entry.attributes, step, false);
          break;
        case 'node':
          p.call('mknodat', step('mknod'), [this.dest, path, entry.type | entry.attributes.perm, entry.rdev]);
          this.attributes(path, entry.attributes, step, true);
          break;
        case 'file':
          this.file(path, entry, step);
          break;
      }
    }
    p.close(this.tree, `close the clone of ${shown}`);
  }

  private file(path: DataRef, entry: CopyUpEntry & { kind: 'file' }, step: (what: string) => string) {
    const p = this.program;
    p.call(
      'openat',
      step('create'),
      [this.dest, path, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0o600],
      { store: this.output },
    );
    const how = Buffer.alloc(24);
    how.writeBigUInt64LE(BigInt(O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC), 0);
    how.writeBigUInt64LE(
      BigInt(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV),
      16,
    );
    p.call('openat2', step('open'), [this.tree, path, p.bytes(how), how.length], { store: this.input });
    for (const extent of entry.extents) {
      for (let done = 0; done < extent.length; done += SENDFILE_PIECE) {
        const offset = extent.offset + done;
        const length = Math.min(SENDFILE_PIECE, extent.length - done);
        // The copy's holes stay holes: write each extent where it is in the source.
        p.call('lseek', step('seek'), [this.output, offset, SEEK_SET]);
        const at = Buffer.alloc(8);
        at.writeBigUInt64LE(BigInt(offset));
        p.call('sendfile', step('copy'), [this.output, this.input, p.bytes(at), length]);
      }
    }
    p.call('ftruncate', step('set its size'), [this.output, entry.size]);
    const { uid, gid, perm } = entry.attributes;
    // Owner before mode: chown clears setuid and setgid.
    p.call('fchown', step('chown'), [this.output, uid, gid]);
    p.call('fchmod', step('chmod'), [this.output, perm]);
    p.call('utimensat', step('set its times'), [this.output, null, p.bytes(timespecs(entry.attributes)), 0]);
    p.close(this.input, step('close its source'));
    p.close(this.output, step('close it'));
  }

  /** Owner, then mode (not for a symlink: Linux has no modes on them), then times; never following a symlink. */
  private attributes(
    path: DataRef,
    attributes: Attributes,
    step: (what: string) => string,
    withMode: boolean,
  ): void {
    const p = this.program;
    p.call('fchownat', step('chown'), [this.dest, path, attributes.uid, attributes.gid, AT_SYMLINK_NOFOLLOW]);
    // What the copy made is never a symlink where a mode is set: fchmodat's flag-less call is safe.
    if (withMode) p.call('fchmodat', step('chmod'), [this.dest, path, attributes.perm]);
    p.call('utimensat', step('set its times'), [
      this.dest,
      path,
      p.bytes(timespecs(attributes)),
      AT_SYMLINK_NOFOLLOW,
    ]);
  }
}
