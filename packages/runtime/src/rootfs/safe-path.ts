/**
 * Child steps that make things at container paths without ever following a symlink.
 *
 * Why: the set-up runs before pivot_root, so a host path like `${rootfs}/data/sub/null` is walked
 * by the kernel from the host's root. The path was resolved in the container's files already
 * (ContainerView), but a container that shares a volume can swap a directory of it for a symlink
 * to a host directory between that resolution and the step (or plant one that the resolution of
 * a later start must see through). Each step here therefore opens what it works in with
 * openat2(RESOLVE_NO_SYMLINKS) and works relative to that fd (mkdirat, mknodat, fchownat, a bind
 * mount moved onto the target's fd, fchdir before mounting on "."): a symlink anywhere on the way
 * fails the step (ELOOP) instead of leading it out. The rootfs path itself is the real path of a
 * directory box made, so it has no symlinks of its own.
 */
import { posix } from 'node:path';
import {
  AT_FDCWD,
  type CallOptions,
  type ChildProgram,
  O_CLOEXEC,
  O_DIRECTORY,
  O_PATH,
  type Slot,
} from '@box/sys';

const RESOLVE_NO_SYMLINKS = 0x04;
const AT_EMPTY_PATH = 0x1000;
const AT_SYMLINK_NOFOLLOW = 0x100;
const AT_RECURSIVE = 0x8000;
const OPEN_TREE_CLONE = 1;
const MOVE_MOUNT_F_EMPTY_PATH = 0x04;
const MOVE_MOUNT_T_SYMLINKS = 0x10;
const MOVE_MOUNT_T_EMPTY_PATH = 0x40;
const ENOENT = 2;
const S_IFREG = 0o100000;
const EEXIST = 17;
const MS_REC = 0x4000;
const MS_RDONLY = 0x1;
const MS_NOSUID = 0x2;
const MS_NOEXEC = 0x8;

/** mount(2) flags → mount_setattr's MOUNT_ATTR_* (the ones a bind mount's options give). */
const MOUNT_ATTRS: readonly [ms: number, attr: number][] = [
  [0x1, 0x1], // RDONLY
  [0x2, 0x2], // NOSUID
  [0x4, 0x4], // NODEV
  [0x8, 0x8], // NOEXEC
  [0x400, 0x10], // NOATIME
  [0x800, 0x80], // NODIRATIME
  [0x100, 0x200000], // NOSYMFOLLOW
];

/** The MOUNT_ATTR_* bits (mount_setattr, fsmount) of mount(2) `flags`. */
export function mountAttributes(flags: number): number {
  let attrs = 0;
  for (const [ms, attr] of MOUNT_ATTRS) if (flags & ms) attrs |= attr;
  return attrs;
}

/** An empty, "." or ".." segment in a relative path (a doubled or trailing "/" included). */
const UNPLAIN_SEGMENT = /(^|\/)\.{0,2}(\/|$)/;

/**
 * A step that opens `path` with openat2(RESOLVE_NO_SYMLINKS): a symlink anywhere on the way fails
 * it (ELOOP). Its fd is close-on-exec; `options` say where it goes (a slot, a message's bytes).
 */
export function openNoSymlinks(
  program: ChildProgram,
  path: string,
  flags: number,
  step: string,
  options: CallOptions,
): void {
  const how = Buffer.alloc(24);
  how.writeBigUInt64LE(BigInt(flags | O_CLOEXEC), 0);
  how.writeBigUInt64LE(BigInt(RESOLVE_NO_SYMLINKS), 16);
  program.call('openat2', step, [AT_FDCWD, program.string(path), program.bytes(how), 24], options);
}

/**
 * A detached clone of the mount of `path` (its last symlink not followed) into `tree`, to be put
 * in place later with moveTreeOnPath: for a file of the host's that the steps after pivot_root
 * need, taken while the host's mounts are still there.
 */
export function cloneTree(
  program: ChildProgram,
  path: string,
  tree: Slot,
  step: string,
  options: { readonly?: boolean } = {},
): void {
  program.call(
    'open_tree',
    step,
    [AT_FDCWD, program.string(path), OPEN_TREE_CLONE | AT_SYMLINK_NOFOLLOW | O_CLOEXEC],
    { store: tree },
  );
  if (!options.readonly) return;
  // Read-only (and nosuid, noexec): the clone is the host's own inode, which container root owns
  // as uid 0, and chmod or chown through a writable mount of it would change it on the host. A
  // device node on a read-only mount is still opened for writing (the driver's, not the file's).
  const attr = Buffer.alloc(32);
  attr.writeBigUInt64LE(BigInt(mountAttributes(MS_RDONLY | MS_NOSUID | MS_NOEXEC)), 0);
  program.call('mount_setattr', `make the clone of ${path} read-only`, [
    tree,
    program.string(''),
    AT_EMPTY_PATH,
    program.bytes(attr),
    attr.length,
  ]);
}

/**
 * Moves the mount `tree` (a detached one from cloneTree or open_tree) onto `path`, found by path
 * with its last symlink followed, as mount(2) finds it: for the steps after pivot_root, whose
 * paths are the container's. A missing `path` is passed over.
 */
export function moveTreeOnPath(program: ChildProgram, tree: Slot, path: string, step: string): void {
  program.call(
    'move_mount',
    step,
    [
      tree,
      program.string(''),
      AT_FDCWD,
      program.string(path),
      MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_SYMLINKS,
    ],
    { ignore: ENOENT },
  );
}

/**
 * A bind of a clone of what `source` (an O_PATH fd of a mounted file) is onto `path`, as
 * moveTreeOnPath puts it. The clone goes through the slot `clone`.
 */
export function bindCloneOnPath(
  program: ChildProgram,
  source: Slot,
  clone: Slot,
  path: string,
  step: string,
): void {
  program.call(
    'open_tree',
    `clone the mount for ${path}`,
    [source, program.string(''), OPEN_TREE_CLONE | AT_EMPTY_PATH | O_CLOEXEC],
    { store: clone },
  );
  moveTreeOnPath(program, clone, path, step);
  program.close(clone, `close the clone for ${path}`);
}

export class SafeSteps {
  private readonly dir: Slot;
  private readonly target: Slot;
  private readonly tree: Slot;

  constructor(
    private readonly program: ChildProgram,
    /** The rootfs's real host path (no symlinks in it). */
    private readonly root: string,
  ) {
    this.dir = program.slot();
    this.target = program.slot();
    this.tree = program.slot();
  }

  /** openat2(path, flags, RESOLVE_NO_SYMLINKS) into `slot`. */
  open(path: string, flags: number, slot: Slot, step = `open ${path}`): void {
    openNoSymlinks(this.program, path, flags, step, { store: slot });
  }

  /**
   * Two of its slots, for another helper's steps made between its own (they hold nothing from one
   * of its calls to the next): a child program has only 16.
   */
  get scratch(): readonly [Slot, Slot] {
    return [this.dir, this.target];
  }

  private openDir(path: string): void {
    this.open(path, O_PATH | O_DIRECTORY, this.dir, `open ${path} (no symlinks)`);
  }

  /** Every missing directory from the rootfs down to `target` (a host path inside it). */
  mkdirAll(target: string): void {
    const parts = this.below(target).split('/').filter(Boolean);
    let path = this.root;
    for (const part of parts) {
      this.openDir(path);
      path = `${path}/${part}`;
      this.program.call('mkdirat', `mkdir ${path}`, [this.dir, this.program.string(part), 0o755], {
        ignore: EEXIST,
      });
      this.program.close(this.dir, `close ${posix.dirname(path)}`);
    }
  }

  /**
   * `target` relative to the rootfs. Planned paths are the rootfs and a resolved container path,
   * so the prefix is cut off as it is; anything else (a "." or ".." segment, a doubled "/") goes
   * through path.relative, which normalizes both sides: 15-20 µs a call in a fresh process, and
   * this runs for every mount and device of a container.
   */
  private below(target: string): string {
    if (target === this.root) return '';
    if (target.startsWith(`${this.root}/`)) {
      const rest = target.slice(this.root.length + 1);
      if (!UNPLAIN_SEGMENT.test(rest)) return rest;
    }
    return posix.relative(this.root, target);
  }

  /**
   * An empty regular file at `target`, its parents made; whatever is there already is kept (a
   * bind mount goes over it, as runc's). Made with mknodat, never opened: a FIFO there would
   * block the set-up and a device node would be opened as root. A symlink there is kept too, and
   * the bind onto it then fails (it opens its target without following one).
   */
  createFile(target: string, mode = 0o644): void {
    this.mkdirAll(posix.dirname(target));
    this.openDir(posix.dirname(target));
    this.program.call(
      'mknodat',
      `create ${target}`,
      [this.dir, this.program.string(posix.basename(target)), S_IFREG | mode, 0],
      { ignore: EEXIST },
    );
    this.program.close(this.dir, `close ${posix.dirname(target)}`);
  }

  /**
   * A symbolic link at `path` that holds `linkTarget` (never replacing anything), its parents
   * made. With `keepExisting`, something there already is kept instead of failing the step.
   */
  symlink(linkTarget: string, path: string, keepExisting = false): void {
    this.mkdirAll(posix.dirname(path));
    this.openDir(posix.dirname(path));
    this.program.call(
      'symlinkat',
      `symlink ${path} -> ${linkTarget}`,
      [this.program.string(linkTarget), this.dir, this.program.string(posix.basename(path))],
      keepExisting ? { ignore: EEXIST } : {},
    );
    this.program.close(this.dir, `close ${posix.dirname(path)}`);
  }

  /** mknod at `target` (never replacing anything), then its owner, without following a link. */
  mknod(target: string, mode: number, dev: number, owner?: { uid?: number; gid?: number }): void {
    this.mkdirAll(posix.dirname(target));
    this.openDir(posix.dirname(target));
    const name = this.program.string(posix.basename(target));
    this.program.call('mknodat', `mknod ${target}`, [this.dir, name, mode, dev]);
    if (owner && (owner.uid !== undefined || owner.gid !== undefined))
      this.program.call('fchownat', `chown ${target}`, [
        this.dir,
        name,
        owner.uid ?? -1,
        owner.gid ?? -1,
        AT_SYMLINK_NOFOLLOW,
      ]);
    this.program.close(this.dir, `close ${posix.dirname(target)}`);
  }

  /** A new filesystem (or a remount, with source null) on the directory `target`: mount on "." after fchdir. */
  mountOnDir(source: string | null, target: string, type: string | null, flags: number, data?: string): void {
    this.open(target, O_PATH | O_DIRECTORY, this.target, `open mount point ${target} (no symlinks)`);
    this.program.call('fchdir', `enter ${target}`, [this.target]);
    this.program.close(this.target, `close ${target}`);
    const step = source === null ? `remount ${target}` : `mount ${type ?? source} on ${target}`;
    this.program.call('mount', step, [
      source === null ? null : this.program.string(source),
      this.program.string('.'),
      type === null ? null : this.program.string(type),
      flags,
      data === undefined ? null : this.program.string(data),
    ]);
    this.program.chdir('/');
  }

  /**
   * Moves the detached mount open as `mount` (an fd from open_tree or fsmount) onto the directory
   * `target`, opened without following a symlink.
   */
  moveMount(mount: Slot, target: string): void {
    this.open(target, O_PATH | O_DIRECTORY, this.target, `open mount point ${target} (no symlinks)`);
    this.moveOntoTarget(mount, target, `mount on ${target}`);
  }

  /**
   * A bind mount of the host path `source` onto `target` (a file or directory there already):
   * open_tree clones the source, mount_setattr sets its flags, move_mount puts it on the fd of
   * the target. Both ends are fds, so no path is walked after the check.
   */
  bind(source: string, target: string, recursive: boolean, flags: number, propagation: number): void {
    this.open(target, O_PATH, this.target, `open mount point ${target} (no symlinks)`);
    this.program.call(
      'open_tree',
      `clone the mount of ${source}`,
      [AT_FDCWD, this.program.string(source), OPEN_TREE_CLONE | O_CLOEXEC | (recursive ? AT_RECURSIVE : 0)],
      { store: this.tree },
    );
    const set = mountAttributes(flags);
    const recursive_ = recursive || (propagation & MS_REC) !== 0;
    if (set !== 0 || propagation !== 0) {
      const attr = Buffer.alloc(32);
      attr.writeBigUInt64LE(BigInt(set), 0);
      // One of MS_PRIVATE/SHARED/SLAVE/UNBINDABLE: "r" (MS_REC) is AT_RECURSIVE's here.
      attr.writeBigUInt64LE(BigInt(propagation & ~MS_REC), 16);
      this.program.call('mount_setattr', `set the options of ${target}`, [
        this.tree,
        this.program.string(''),
        AT_EMPTY_PATH | (recursive_ ? AT_RECURSIVE : 0),
        this.program.bytes(attr),
        32,
      ]);
    }
    this.moveOntoTarget(this.tree, target, `mount ${source} on ${target}`);
    this.program.close(this.tree, `close the mount of ${source}`);
  }

  /** move_mount of the detached mount `mount` onto the target open in this.target, which it closes. */
  private moveOntoTarget(mount: Slot, target: string, step: string): void {
    this.program.call('move_mount', step, [
      mount,
      this.program.string(''),
      this.target,
      this.program.string(''),
      MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
    ]);
    this.program.close(this.target, `close ${target}`);
  }
}
