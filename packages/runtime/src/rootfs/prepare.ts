/**
 * The child's steps that turn a directory into the container's root, in the
 * order runc uses (prepareRootfs): propagation made private first (so nothing
 * the container mounts reaches the host), the rootfs bound onto itself, the
 * spec's mounts, /dev populated, the terminal opened in the container's own
 * devpts, pivot_root, then masked and read-only paths. Everything happens in
 * the container's new mount namespace: the host's mount table never changes,
 * so a container that dies at any point leaves no mount behind.
 */

import { realpathSync, statSync } from 'node:fs';
import { posix } from 'node:path';
import {
  ChildProgram,
  MS,
  O_CLOEXEC,
  O_NOCTTY,
  O_PATH,
  O_RDWR,
  refAt,
  SCM_RIGHTS,
  type Slot,
  SOL_SOCKET,
  TIOCGPTPEER,
  TIOCSCTTY,
  TIOCSPTLCK,
  TIOCSWINSZ,
} from '@box/sys';
import { overlayMountData } from '@box/unionfs';
import { SpecError } from '../errors.js';
import type { Mount, Spec } from '../spec.js';
import { addCgroupMount } from './cgroup-mount.js';
import { type CopyUpEntry, CopyUpSteps, planCopyUp, RootfsCopies } from './copy-up.js';
import { addDeviceSteps, addSpecDeviceStep } from './devices.js';
import { fuseMountData } from './fuse-options.js';
import type { FuseMount } from './fuse-overlay.js';
import { parseMountOptions, propagationFlags } from './mount-options.js';
import { ContainerView, type MountView, mountAt } from './resolve.js';
import { bindCloneOnPath, cloneTree, moveTreeOnPath, openNoSymlinks, SafeSteps } from './safe-path.js';
import { addSysctlSteps } from './sysctl.js';

const ENOENT = 2;
const EPIPE = 32;

export interface Overlay {
  /** Image layers, top first. */
  lowerdirs: string[];
  upperdir: string;
  workdir: string;
  /** Where short layer links (`l/ID`) may be made when the mount data would not fit in a page. */
  layersRoot?: string;
}

export interface RootfsOptions {
  /** The rootfs directory on the host (spec.root.path, absolute). */
  rootfs: string;
  userns: boolean;
  /** Mount this overlay on the rootfs first, inside the container's mount namespace. */
  overlay?: Overlay;
  /** Mount the overlay through fuse-overlayfs on this device instead (see fuse-overlay.ts). */
  fuse?: FuseMount;
  /** A unix socket (host fd) that receives the terminal's master side. */
  consoleSocket?: number;
  /**
   * The tmpcopyup plans of planRootfsCopies (their fds must be the child's: spawn's keepFds).
   * Needed when a mount asks for tmpcopyup.
   */
  copies?: RootfsCopies;
  /**
   * A socket (host fd) on which the child reports its root filesystem ready (one byte) and
   * waits for one byte back before pivot_root: the OCI createContainer hooks run in between.
   */
  beforePivot?: number;
}

export interface RootfsResult {
  /** The terminal's slave side, when a terminal was requested. */
  terminal?: Slot;
  /**
   * A tmpfs gets a copy of the container's files (tmpcopyup): the child must not share this
   * process's memory map, or the copy is charged to this process's memory cgroup (see copy-up.ts).
   */
  copiesFiles?: boolean;
}

/**
 * The copies of the config's tmpcopyup mounts (see copy-up.ts), planned before the child is
 * cloned: the same walk as addRootfsSteps (each mount resolved after those before it), on a
 * program that is thrown away. Their files stay open until the caller closes them; it passes
 * their fds to spawn and the plans to addRootfsSteps as `copies`.
 */
export function planRootfsCopies(spec: Spec, options: RootfsOptions): RootfsCopies {
  const copies = new RootfsCopies();
  const any = (spec.mounts ?? []).some((m) => m.type === 'tmpfs' && parseMountOptions(m.options).copyUp);
  try {
    if (any) addRootfsSteps(new ChildProgram(), spec, { ...options, copies });
  } catch (error) {
    copies.close();
    throw error;
  }
  return copies.endPlanning();
}

export function addRootfsSteps(program: ChildProgram, spec: Spec, options: RootfsOptions): RootfsResult {
  // Its real path: the steps below refuse any symlink on their way (see safe-path.ts).
  const root = realpathSync(options.rootfs);
  const result: RootfsResult = {};
  program.call('umask', 'set umask 0 for the rootfs set-up', [0]);
  // Nothing the container mounts may reach the host: the copied mount tree is made private,
  // or a slave of the host's when the config asks for slave or shared propagation (host
  // mounts then still appear inside; pivot_root refuses a shared parent, so "shared" is set
  // on the new root after it).
  const rootPropagation = spec.linux?.rootfsPropagation;
  const propagation = rootPropagation === undefined ? undefined : propagationFlags(rootPropagation);
  if (rootPropagation !== undefined && propagation === undefined)
    throw new SpecError(`linux.rootfsPropagation: unknown propagation "${rootPropagation}"`);
  const follows = propagation !== undefined && (propagation & (MS.SLAVE | MS.SHARED)) !== 0;
  program.mount(null, '/', null, MS.REC | (follows ? MS.SLAVE : MS.PRIVATE));
  // Masked files are bound from a null device opened before pivot_root (after it, "/dev/null"
  // would be looked up through whatever the container's files make of it): box's own node in
  // the /dev tmpfs it mounts, or, in a config without one, the host's, opened here before any of
  // the config's mounts. Not the container's /dev/null: that is the image's or a volume's, and
  // another container sharing the volume could swap it for another node or file between any
  // check of it and its open (runc checks it for 1:3 on the opened fd; the child program cannot
  // compare, so it takes a node nobody else controls).
  const devIsTmpfs = (spec.mounts ?? []).some(
    (m) => posix.resolve('/', m.destination) === '/dev' && m.type === 'tmpfs',
  );
  // The host's is a detached clone of its mount (after pivot_root the host's /dev is gone from
  // this mount namespace, and a kernel before 6.15 clones only mounts that are in it): the first
  // masked file gets it, and the others clones of that (had the first file gone meanwhile, the
  // next clone is of a detached mount, which such a kernel refuses: the start fails, closed).
  let nullFd: Slot | undefined;
  if (!devIsTmpfs && (spec.linux?.maskedPaths?.length ?? 0) > 0) {
    nullFd = program.slot();
    cloneTree(program, '/dev/null', nullFd, "clone the host's /dev/null for the masked files", {
      readonly: true,
    });
  }
  if (options.overlay && options.fuse) {
    const { deviceFd, pauseFd } = options.fuse;
    // Opened here, in the container's user namespace: the kernel refuses a FUSE device opened in
    // another (see fuse-overlay.ts).
    const device = program.slot();
    program.openat('/dev/fuse', O_RDWR, 0, { store: device });
    program.call('dup3', 'put /dev/fuse at its agreed fd', [device, deviceFd, O_CLOEXEC]);
    program.close(device, 'close /dev/fuse');
    // As the kernel's overlay mount: no flags (a user namespace's mounts are nodev anyway).
    program.mount('fuse-overlayfs', root, 'fuse', 0, fuseMountData(deviceFd));
    // Its server starts now (EOF instead of the byte back: it could not, and the child stops).
    program.call('write', 'report the FUSE mount made', [pauseFd, program.bytes(Buffer.from([1])), 1]);
    program.call('read', 'wait for fuse-overlayfs', [pauseFd, program.alloc(8), 1], { zeroErrno: EPIPE });
    program.close(pauseFd, 'close the FUSE pause socket');
    program.close(deviceFd, 'close /dev/fuse');
  } else if (options.overlay) {
    const { lowerdirs, upperdir, workdir, layersRoot } = options.overlay;
    // In a user namespace overlayfs keeps its metadata in user.* xattrs (userxattr).
    const { data, cwd } = overlayMountData({
      lowerdirs,
      upperdir,
      workdir,
      layersRoot,
      userxattr: options.userns,
    });
    // With many layers the lowerdirs are short relative links: mount from their directory.
    if (cwd) program.chdir(cwd);
    program.mount('overlay', root, 'overlay', 0, data);
  } else {
    program.mount(root, root, null, MS.BIND | MS.REC);
  }
  // Mount points are resolved in the image's files (its layers, merged as the overlay will
  // merge them), never through the host's.
  const layers = options.overlay ? [options.overlay.upperdir, ...options.overlay.lowerdirs] : [root];
  const view = new ContainerView(layers, {
    userxattr: options.userns,
    fuseOverlay: options.fuse !== undefined,
  });
  const safe = new SafeSteps(program, root);
  // The mounts made so far: a later path below a bind mount is resolved in its source's files
  // (a volume's), as the container will see it; below a new file system, taken as it is.
  const binds: MountView[] = [];
  let copyUp: CopyUpSteps | undefined;
  const context: MountContext = {
    safe,
    root,
    view,
    mounts: binds,
    made: [],
    spec,
    rootfs: options,
    copyUp: () => {
      copyUp ??= new CopyUpSteps(program, safe.scratch);
      return copyUp;
    },
    copies: false,
    devMount: undefined,
  };
  const masks: PathKind[] = [];
  const readonly: PathKind[] = [];
  let boxNull: string | undefined;
  try {
    for (const [index, mount] of (spec.mounts ?? []).entries()) addMount(context, mount, index);
    // Every path below is resolved in the image's files as the mounts' were: the host path
    // `${root}/dev` would let an image whose /dev is a symlink (to /etc, say) make the kernel
    // follow it from the host's root, before pivot_root, and put device nodes there.
    const dev = devIsTmpfs ? view.resolve('/dev', binds) : undefined;
    // Its nodes go where /dev leads now, after every mount: that must be the tmpfs made for it. A
    // later mount can cover it, or change where the image's symlinks lead (a /dev -> /data/d
    // with a volume mounted on /data after it): the nodes would be made in that volume, on the
    // host, through whatever another container sharing it swapped in.
    if (dev !== undefined && mountAt(binds, dev) !== context.devMount)
      throw new SpecError(
        `/dev: the container's /dev leads to ${dev}, and the tmpfs mounted for it is not what is there (a later mount covers it or moved where the image's /dev leads)`,
      );
    const devRoot = `${root}${dev === '/' ? '' : dev}`;
    const listed = new Set((spec.linux?.devices ?? []).map((d) => posix.normalize(d.path)));
    if (dev !== undefined) addDeviceSteps(safe, devRoot, options.userns, listed);
    for (const device of spec.linux?.devices ?? []) {
      const path = posix.normalize(device.path);
      // As runc: on the /dev box made, /dev/ptmx is the link to the container's devpts
      // (pts/ptmx); a node listed there (podman's --privileged lists the host's) is left out.
      if (dev !== undefined && path === '/dev/ptmx') continue;
      // Below that /dev the image's own entries are hidden by the tmpfs: the node goes where its
      // path says in the tmpfs, never where an image's `/dev/null -> /etc/x` would resolve it
      // (its steps refuse any symlink on the way, box's own /dev links included).
      const target =
        dev !== undefined && path.startsWith('/dev/')
          ? `${devRoot}${path.slice('/dev'.length)}`
          : `${root}${view.resolve(device.path, binds)}`;
      addSpecDeviceStep(safe, device, target, options.userns);
    }
    // As runc and docker: a missing working directory is made (root's, 0755), in the container's
    // files as its mounts are (a symlink in the image resolves inside the root, and none is
    // followed while making it).
    const cwd = spec.process?.cwd;
    if (cwd && posix.isAbsolute(cwd)) {
      const resolved = view.resolve(cwd, binds);
      if (resolved !== '/') safe.mkdirAll(`${root}${resolved}`);
    }
    if (spec.process?.terminal) {
      if (options.consoleSocket === undefined) throw new Error('a terminal needs a console socket');
      const ptmx = `${root}${view.resolve('/dev/pts/ptmx', binds)}`;
      result.terminal = addConsoleSteps(program, ptmx, options.consoleSocket, spec.process.consoleSize);
    }
    result.copiesFiles = context.copies;
    // Masked and read-only paths are made after pivot_root, by their container paths; what is
    // there is decided now, in the container's files (or, below /proc and /sys, the kernel's).
    for (const path of spec.linux?.maskedPaths ?? [])
      masks.push({ path, kind: kindOf(view, binds, path, 'maskedPaths') });
    for (const path of spec.linux?.readonlyPaths ?? [])
      readonly.push({ path, kind: kindOf(view, binds, path, 'readonlyPaths') });
    if (dev !== undefined && masks.some((m) => m.kind === 'file')) boxNull = `${devRoot}/null`;
  } finally {
    view.close();
  }

  if (options.beforePivot !== undefined) {
    // The runtime's createContainer hooks see this mount namespace complete, before pivot_root.
    // EOF instead of the byte back means the runtime is gone: the child stops here.
    const fd = options.beforePivot;
    program.call('write', 'report the root filesystem ready', [fd, program.bytes(Buffer.from([1])), 1]);
    program.call('read', 'wait for the createContainer hooks', [fd, program.alloc(8), 1], {
      zeroErrno: EPIPE,
    });
    program.close(fd, 'close the hooks socket');
  }

  // box's own null node, opened last before pivot_root (see the host's above).
  if (boxNull !== undefined) {
    nullFd = program.slot();
    openNoSymlinks(program, boxNull, O_PATH, `open ${boxNull} for the masked files`, { store: nullFd });
  }
  program.pivotRoot(root);
  if (propagation !== undefined) program.mount(null, '/', null, propagation);

  // Through the container's own /proc, before /proc/sys becomes read-only (as runc).
  // SafeSteps' work is done: its slots serve these writes.
  if (spec.linux?.sysctl) addSysctlSteps(program, spec.linux.sysctl, safe.scratch[0]);
  if (nullFd !== undefined) {
    const clone = program.slot();
    let mounted = boxNull !== undefined;
    for (const { path, kind } of masks) {
      if (kind !== 'file') continue;
      if (mounted) bindCloneOnPath(program, nullFd, clone, path, `mask ${path}`);
      else moveTreeOnPath(program, nullFd, path, `mask ${path}`);
      mounted = true;
    }
    program.close(nullFd, 'close the null device');
  }
  for (const { path, kind } of masks) if (kind === 'dir') maskDirectory(program, path);
  for (const { path, kind } of readonly) if (kind) readonlyPath(program, path);
  if (spec.hostname !== undefined) program.sethostname(spec.hostname);
  if (spec.domainname !== undefined) {
    const name = Buffer.from(spec.domainname, 'utf8');
    program.call('setdomainname', `setdomainname ${spec.domainname}`, [program.bytes(name, 1), name.length]);
  }
  const personality = spec.linux?.personality;
  // PER_LINUX32 makes uname(2) report a 32-bit machine; the flags are refused by validateSpec.
  if (personality)
    program.call('personality', `set personality ${personality.domain}`, [
      personality.domain === 'LINUX32' ? 0x0008 : 0,
    ]);
  if (spec.root?.readonly) {
    program.mount(null, '/', null, MS.BIND | MS.REMOUNT | MS.RDONLY);
  }
  program.call('umask', 'restore the umask', [spec.process?.user.umask ?? 0o022]);
  return result;
}

/** What addMount works with: the steps, the container's view, the mounts made so far. */
interface MountContext {
  safe: SafeSteps;
  root: string;
  view: ContainerView;
  /** The mounts made so far: a later path below one is resolved in what it shows. */
  mounts: MountView[];
  spec: Spec;
  rootfs: RootfsOptions;
  /** Where every mount so far went (resolved), copied tmpfs mounts included. */
  made: string[];
  /** The copy steps' slots, taken once, when a mount asks for tmpcopyup. */
  copyUp: () => CopyUpSteps;
  /** Set once a tmpfs gets a copy: the child needs a memory map of its own (see copy-up.ts). */
  copies: boolean;
  /** The tmpfs mounted for /dev, where box makes the container's device nodes. */
  devMount: MountView | undefined;
}

function addMount(context: MountContext, mount: Mount, index: number): void {
  const { safe, root, view, mounts } = context;
  const resolved = view.resolve(mount.destination, mounts);
  const target = resolved === '/' ? root : `${root}${resolved}`;
  const options = parseMountOptions(mount.options);
  context.made.push(resolved);
  const type = mount.type ?? (options.bind ? 'bind' : undefined);
  // As runc: proc and sysfs only on a directory of that very path, and so whatever goes on /proc,
  // /sys and /dev (a rootless container on the host's network binds the host's /sys). Through
  // an image's symlink (/proc -> /dev/shm/../../x with /dev/shm -> /a/b) they would land elsewhere,
  // and /proc would then be the image's directory after the later mounts: the masked and
  // read-only paths, made by path after pivot_root, would miss the real one, left writable. A
  // /dev elsewhere lets the image choose what /dev/null is after pivot_root, where the kernel
  // follows symlinks the container view does not model (procfs's own: /proc/net -> self/net).
  const path = posix.resolve('/', mount.destination);
  // Nor does any mount reach into /proc or /sys through a symlink (as runc's checkProcMount): an
  // image's /etc/hostname -> /proc/sys/net/ipv6/conf/all/disable_ipv6 would put the hostname file
  // over that setting, and a --sysctl of it would write the file instead of the kernel's value.
  const ownDirectory =
    type === 'proc' ||
    type === 'sysfs' ||
    OWN_DIRECTORIES.has(path) ||
    KERNEL_TREES.some((t) => below(resolved, t));
  if (ownDirectory && resolved !== path)
    throw new SpecError(
      `mounts[${index}]: filesystem "${type}" must be mounted on an ordinary directory: ${mount.destination} leads through a symlink to ${resolved} in the container's files`,
    );
  if (type === 'cgroup') {
    addCgroupMount(safe, target, options.flags, context.spec.linux?.cgroupsPath);
    mounts.push({ destination: resolved, fresh: true });
    return;
  }
  if (options.bind || type === 'bind') {
    const source = mount.source;
    if (!source) throw new Error(`bind mount on ${mount.destination} has no source`);
    if (statSync(source).isDirectory()) safe.mkdirAll(target);
    else safe.createFile(target);
    safe.bind(source, target, options.recursive, options.flags, options.propagation);
    mounts.push({ destination: resolved, source, noexec: (options.flags & MS.NOEXEC) !== 0 });
    return;
  }
  if (type === 'tmpfs') {
    addTmpfs(context, mount, index, resolved, target, options);
    return;
  }
  safe.mkdirAll(target);
  safe.mountOnDir(
    mount.source ?? type ?? 'none',
    target,
    type ?? null,
    options.flags,
    options.data.join(',') || undefined,
  );
  if (options.propagation !== 0) safe.mountOnDir(null, target, null, options.propagation);
  // Below a new file system nothing is the image's. One the kernel makes (proc, devpts…) has no
  // symlink of the image's; what another (an overlay, NFS or FUSE volume, a devtmpfs) holds is not
  // known here: its paths are taken as they are, and the steps below refuse any symlink in them.
  mounts.push({ destination: resolved, fresh: true });
}

/** Mount points whose later use by path (masks, /dev/null) must find the mount: never through a symlink. */
const OWN_DIRECTORIES = new Set(['/proc', '/sys', '/dev']);
/** The kernel's files: a mount lands in them only where its destination says. */
const KERNEL_TREES = ['/proc', '/sys'];
const below = (path: string, tree: string) => path === tree || path.startsWith(`${tree}/`);

/**
 * A tmpfs. As runc: over a directory it takes that directory's mode (a `mode=` of the options
 * still wins, being later), and with `tmpcopyup` it starts with a copy of what the directory
 * holds (see copy-up.ts), copied before any later mount is made.
 */
function addTmpfs(
  context: MountContext,
  mount: Mount,
  index: number,
  resolved: string,
  target: string,
  options: ReturnType<typeof parseMountOptions>,
): void {
  const { safe, view, mounts } = context;
  const covered = view.find(resolved, mounts);
  const dir = covered?.stats.isDirectory() ? covered : undefined;
  const data = [...(dir ? [`mode=${(dir.stats.mode & 0o7777).toString(8)}`] : []), ...options.data];
  const plan = options.copyUp ? planTmpfsCopy(context, mount, index, resolved, dir?.fd) : [];
  const shown = posix.normalize(mount.destination);
  const copy = plan.length > 0 ? context.copyUp() : undefined;
  safe.mkdirAll(target);
  if (copy) {
    context.copies = true;
    // Made detached, filled, then put in place (see CopyUpSteps.createTmpfs).
    copy.createTmpfs(mount.source ?? 'tmpfs', options.flags, data, shown);
    copy.add(plan, shown);
    copy.attach(safe, target, options.flags, shown);
  } else {
    safe.mountOnDir(mount.source ?? 'tmpfs', target, 'tmpfs', options.flags, data.join(',') || undefined);
  }
  if (options.propagation !== 0) safe.mountOnDir(null, target, null, options.propagation);
  // The copy shows what the image has there, so the image's files still resolve what is below;
  // an empty tmpfs has nothing of the image's.
  if (!copy) {
    const made: MountView = { destination: resolved, fresh: true };
    mounts.push(made);
    if (posix.resolve('/', shown) === '/dev') context.devMount = made;
  }
}

const isBindMount = (mount: MountView | undefined) => mount !== undefined && 'source' in mount;

/** The copy's plan (see copy-up.ts), or the one line saying why this config cannot have it. */
function planTmpfsCopy(
  context: MountContext,
  mount: Mount,
  index: number,
  resolved: string,
  dirFd: number | undefined,
): CopyUpEntry[] {
  const { spec, rootfs, mounts } = context;
  const destination = posix.normalize(mount.destination);
  const where = `tmpcopyup on ${destination}`;
  if (rootfs.overlay) throw new SpecError(`${where}: not with an overlay root filesystem`);
  // Planned by planRootfsCopies, whose fds the child gets: planned here, they would not be its.
  if (!rootfs.copies)
    throw new Error(`${where}: the copy was not planned before the child (planRootfsCopies)`);
  const plan = rootfs.copies.plan(
    index,
    resolved,
    dirFd,
    (held) =>
      planCopyUp(dirFd!, {
        destination,
        uidMappings: rootfs.userns ? (spec.linux?.uidMappings ?? []) : undefined,
        gidMappings: rootfs.userns ? (spec.linux?.gidMappings ?? []) : undefined,
        shared: isBindMount(mountAt(mounts, resolved)),
        held,
      }),
    () => {
      throw new SpecError(`${where}: ${destination} changed while the container was set up`);
    },
  );
  if (plan.length === 0) return plan;
  // Box makes /dev's nodes and links in its tmpfs by path, which is safe only while that tmpfs
  // holds nothing of the image's (a copied `/dev/null -> /etc/x` would be followed).
  if (destination === '/dev')
    throw new SpecError(`${where}: the container's /dev is made by box, not copied`);
  // The owners would be written as this process sees them, not as that namespace maps them.
  if (spec.linux?.namespaces?.some((n) => n.type === 'user' && n.path))
    throw new SpecError(`${where}: not in a user namespace joined by path`);
  // What a mount made below the directory shows is not in its files (the copy would differ from
  // what the container saw); podman and containerd mount the parents first.
  const below = context.made.find((m) => m.startsWith(`${resolved === '/' ? '' : resolved}/`));
  if (below) throw new SpecError(`${where}: ${below} is mounted below it before it`);
  return plan;
}

/**
 * Opens a new terminal through `ptmx` (the host path of the container's /dev/pts/ptmx), sends
 * its master side to `socket` and makes the slave the controlling terminal (needs a new session).
 */
export function addConsoleSteps(
  program: ChildProgram,
  ptmx: string,
  socket: number,
  size?: { height: number; width: number },
): Slot {
  const master = program.slot();
  const slave = program.slot();
  // sendmsg(socket, {iov: "t", control: SCM_RIGHTS [master]}): the openat record
  // writes the master's fd number straight into the control message (storeAt).
  const controlBytes = Buffer.alloc(24);
  controlBytes.writeBigUInt64LE(20n, 0); // CMSG_LEN(sizeof(int))
  controlBytes.writeInt32LE(SOL_SOCKET, 8);
  controlBytes.writeInt32LE(SCM_RIGHTS, 12);
  const control = program.bytes(controlBytes);
  const iovBytes = Buffer.alloc(16);
  iovBytes.writeBigUInt64LE(1n, 8);
  const iov = program.bytes(iovBytes);
  program.pointerAt(iov, program.bytes(Buffer.from('t'), 1));
  const msgBytes = Buffer.alloc(56);
  msgBytes.writeBigUInt64LE(1n, 24); // msg_iovlen
  msgBytes.writeBigUInt64LE(24n, 40); // msg_controllen
  const msg = program.bytes(msgBytes);
  program.pointerAt(msg, iov, 16);
  program.pointerAt(msg, control, 32);

  // No symlink followed on the way: before pivot_root the path is walked from the host's root.
  openNoSymlinks(program, ptmx, O_RDWR | O_NOCTTY, `open ${ptmx}`, {
    store: master,
    storeAt: refAt(control, 16),
  });
  program.call('ioctl', 'unlock the terminal', [master, TIOCSPTLCK, program.alloc(4)]);
  // Close-on-exec: only its copies on fds 0-2 (dup3) reach the container's command.
  program.call('ioctl', 'open the terminal', [master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC], {
    store: slave,
  });
  if (size) {
    const ws = Buffer.alloc(8);
    ws.writeUInt16LE(size.height, 0);
    ws.writeUInt16LE(size.width, 2);
    program.call('ioctl', 'set the terminal size', [master, TIOCSWINSZ, program.bytes(ws)]);
  }
  program.call('sendmsg', 'send the terminal to the console socket', [socket, msg, 0]);
  program.close(master, 'close the terminal master');
  program.call('ioctl', 'make the terminal the controlling terminal', [slave, TIOCSCTTY, 0]);
  return slave;
}

type Kind = 'dir' | 'file' | undefined;

interface PathKind {
  path: string;
  kind: Kind;
}

/**
 * What the container will find at `path`: in its files (image and bind mounts, symlinks followed
 * inside it, as the kernel will after pivot_root), or, below a file system the kernel makes
 * (/proc, /sys), the same kernel's files on the host. Never the host's files for an image path: a
 * file the host lacks would go unmasked.
 */
function kindOf(view: ContainerView, mounts: readonly MountView[], path: string, list: string): Kind {
  const resolved = view.resolve(path, mounts);
  const shown = mountAt(mounts, resolved);
  if (shown && 'fresh' in shown) {
    // Led there by a symlink of the image's (/etc/x -> /proc/self/root/opt/x), the path goes on
    // through links of that file system's own that the view does not follow: what the kernel will
    // find is not known here, and the host's file says nothing of it.
    if (resolved !== posix.resolve('/', path))
      throw new SpecError(
        `linux.${list}: ${path} leads through a symlink to ${resolved}, into a file system box cannot look into before the container runs`,
      );
    try {
      return statSync(resolved).isDirectory() ? 'dir' : 'file';
    } catch {
      return undefined;
    }
  }
  const found = view.find(resolved, mounts);
  if (!found) return undefined;
  return found.stats.isDirectory() ? 'dir' : 'file';
}

function maskDirectory(program: ChildProgram, path: string): void {
  program.mount('tmpfs', path, 'tmpfs', MS.RDONLY, undefined, { ignore: ENOENT });
}

function readonlyPath(program: ChildProgram, path: string): void {
  program.mount(path, path, null, MS.BIND | MS.REC, undefined, { ignore: ENOENT });
  const locked = below(posix.resolve('/', path), '/proc') ? MS.NOSUID | MS.NODEV | MS.NOEXEC : 0;
  program.mount(null, path, null, MS.BIND | MS.REMOUNT | MS.RDONLY | MS.REC | locked, undefined, {
    ignore: ENOENT,
  });
}
