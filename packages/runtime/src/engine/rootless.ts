/**
 * box run by an ordinary user ("rootless").
 *
 * The model is podman's: every box command of a user runs inside one user namespace of that
 * user, in which the user's own uid/gid is 0 and the user's /etc/subuid and /etc/subgid range
 * is 1..N (mapped by the setuid helpers newuidmap/newgidmap, see @box/ns subid.ts). There box is
 * "root" over exactly the ids the user owns: it unpacks image layers with their owners (a file
 * of uid 33 in an image is owned by subuid-start+32 on the host), removes what containers wrote,
 * and makes each container exactly as a root-run `--userns` container, in a user namespace of
 * its own nested in this one with the same ids. So container root is the user on the host, and
 * nothing of a container is more than the user's own ids there.
 *
 * Why one namespace kept alive by a pause process, rather than a new one per command: a
 * container's user namespace is owned by the namespace box made it in, and only a process of
 * that owner namespace may join it (`box exec`) with capabilities. So the first command makes
 * the namespace with a process that only sleeps (`box-pause`, in a session of its own), and
 * every later command joins that process's namespace (setns in the child, before it executes
 * node: Node itself can never enter a user namespace, see process-model). If the pause process
 * is killed, the next command makes a new namespace: containers made in the old one still run
 * and can be stopped and removed, but `exec` reaches them only through a box service still in
 * the old namespace.
 *
 * Measured on Linux 6.18: a nested namespace's uid_map line must fit in one line of ours (so a
 * container's map repeats our lines, identityIdMappings); a process here may setns into a
 * container's pid namespace but not back into the host's (so `exec` joins it in the child, see
 * @box/ns pidJoinInChild); sysfs needs the owner of the network namespace (so `--network host`
 * binds the host's /sys); overlay mounts need a mount namespace made here (so `cp` and `export`
 * of a stopped container run in one of their own). The extra Node.js start-up costs about
 * 0.1-0.15 s a command (`run --rm busybox true`: 0.54-0.83 s against root's 0.39-0.79 s, one
 * run each, five times, on a loaded 2-CPU machine).
 *
 * Inside, isRootless() is true (our uid_map is not the whole id space). The rest of box asks it
 * where root and rootless differ: cgroups only in a delegated v2 subtree (rootless-cgroups.ts), no bridge
 * networks (no host network privilege), every container in a nested user namespace, layers with
 * user.* overlay xattrs (trusted.* need host root).
 *
 * Threat model: the runtime directory holds the service's socket and the pause process's pid;
 * when $XDG_RUNTIME_DIR is not set it is /tmp/box-UID, which another user could have made first
 * (or made a symlink) to read or steer this user's box: it is used only when it is a real
 * directory of this user, closed to others. The pause pid is checked against the process's
 * start time and owner before its namespace is joined.
 */
import {
  closeSync,
  constants,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  writeFileSync,
} from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { EngineError } from '../errors.js';
import { processStartTime } from './process-info.js';

/**
 * The network a rootless container gets when none is asked for: the one place to change it.
 * slirp4netns, as podman's: a user can make no bridge, veth pair or firewall rule.
 */
export const ROOTLESS_DEFAULT_NETWORK = 'slirp4netns';

let rootless: boolean | undefined;

/**
 * Whether this process runs in a user namespace that does not map every id (box's rootless
 * namespace, or any other one): then it holds no privilege over the host.
 */
export function isRootless(): boolean {
  if (rootless === undefined) {
    try {
      const map = readFileSync('/proc/self/uid_map', 'utf8').trim().split(/\s+/);
      rootless = !(map.length === 3 && map[0] === '0' && map[1] === '0' && map[2] === '4294967295');
    } catch {
      rootless = false;
    }
  }
  return rootless;
}

/**
 * The ids of the current user namespace as they are (0 -> 0, ...), one line per line of our own
 * uid_map or gid_map: a container's map in a namespace nested here. One line per ours because
 * the kernel takes a line of a child's map only when one line of the parent's holds all of it.
 */
export function identityIdMappings(
  kind: 'uid' | 'gid',
): { containerID: number; hostID: number; size: number }[] {
  const mappings: { containerID: number; hostID: number; size: number }[] = [];
  for (const line of readFileSync(`/proc/self/${kind}_map`, 'utf8').split('\n')) {
    const [inside, , count] = line.trim().split(/\s+/).map(Number);
    if (inside !== undefined && count !== undefined && !Number.isNaN(count) && count > 0)
      mappings.push({ containerID: inside, hostID: inside, size: count });
  }
  return mappings.sort((a, b) => a.containerID - b.containerID);
}

export interface RootlessDirs {
  /** The state root: $BOX_ROOT, or $XDG_DATA_HOME/box (~/.local/share/box). */
  root: string;
  /** Runtime files (the service socket and lock, the pause pid): $XDG_RUNTIME_DIR/box or /tmp/box-UID. */
  runtimeDir: string;
}

/** A directory of this user only: made 0700 when missing, refused when it is anything else. */
function privateUserDir(path: string, uid: number): void {
  try {
    mkdirSync(path, { mode: 0o700 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  const stats = lstatSync(path);
  if (!stats.isDirectory() || stats.uid !== uid || (stats.mode & 0o077) !== 0)
    throw new EngineError(
      'ESTATEDIR',
      `${path} is not a private directory of uid ${uid} (a symlink, another owner, or open to others): refusing to use it`,
    );
}

/** Where a rootless box keeps its state and runtime files (see RootlessDirs); makes the runtime dir. */
export function rootlessDirs(env: NodeJS.ProcessEnv = process.env): RootlessDirs {
  const uid = process.getuid!();
  const home = env.HOME || homedir();
  const data = env.XDG_DATA_HOME?.startsWith('/') ? env.XDG_DATA_HOME : join(home, '.local/share');
  const root = env.BOX_ROOT || join(data, 'box');
  let runtimeDir: string;
  const xdg = env.XDG_RUNTIME_DIR;
  if (xdg?.startsWith('/')) {
    const stats = lstatSync(xdg, { throwIfNoEntry: false });
    if (!stats?.isDirectory() || stats.uid !== uid)
      throw new EngineError('ESTATEDIR', `XDG_RUNTIME_DIR ${xdg} is not a directory of uid ${uid}`);
    // Another user who may write there could move box's directory away after the checks below
    // and put one of theirs in its place (a sticky directory lets only its owner rename).
    if ((stats.mode & 0o022) !== 0 && (stats.mode & 0o1000) === 0)
      throw new EngineError(
        'ESTATEDIR',
        `XDG_RUNTIME_DIR ${xdg} may be written by other users (mode ${(stats.mode & 0o7777).toString(8)}): refusing to use it`,
      );
    runtimeDir = join(xdg, 'box');
  } else {
    runtimeDir = `/tmp/box-${uid}`;
  }
  privateUserDir(runtimeDir, uid);
  return { root, runtimeDir };
}

export interface UserIdRanges {
  user: string;
  uid: number;
  gid: number;
  subuid: { start: number; count: number };
  subgid: { start: number; count: number };
}

interface NsModule {
  subordinateRange(file: string, user: string, id: number): { start: number; count: number } | undefined;
  idMapHelpers(): { newuidmap: string; newgidmap: string };
}

/**
 * The user's ranges in /etc/subuid and /etc/subgid, and the helpers present: or one line naming
 * what is missing. Checked by every command, before anything is made.
 */
export function checkRootlessSetup(ns: NsModule): UserIdRanges {
  const uid = process.getuid!();
  const gid = process.getgid!();
  const user = userInfo().username;
  const ranges: Partial<UserIdRanges> = { user, uid, gid };
  for (const [file, key] of [
    ['/etc/subuid', 'subuid'],
    ['/etc/subgid', 'subgid'],
  ] as const) {
    const range = ns.subordinateRange(file, user, uid);
    if (!range)
      throw new EngineError(
        'EINVAL',
        `no ${key} range for user ${user} in ${file}: add a line such as '${user}:100000:65536'`,
      );
    ranges[key] = range;
  }
  try {
    ns.idMapHelpers();
  } catch (error) {
    throw new EngineError('EINVAL', (error as Error).message, { cause: error });
  }
  return ranges as UserIdRanges;
}

/**
 * Whether `pid` is the live process that started at `recorded` (field 22 of its stat). A killed
 * pause process can stay a zombie for a while (until the host's init reaps it), and its user
 * namespace lives on in its credentials, joinable but with no process to keep it; a command
 * joining it would part from those that made a new one: a zombie counts as gone.
 */
function startedAt(pid: number, recorded: string | undefined): boolean {
  const start = processStartTime(pid);
  return start !== undefined && String(start) === recorded;
}

function ownerOf(pid: number): number | undefined {
  try {
    const line = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return line ? Number(line[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** An fd of the pause process's user namespace, when the recorded one still lives. */
function openPauseNamespace(pidFile: string, uid: number): number | undefined {
  let recorded: string[];
  try {
    recorded = readFileSync(pidFile, 'utf8').trim().split(' ');
  } catch {
    return undefined;
  }
  const pid = Number(recorded[0]);
  if (!Number.isInteger(pid) || pid <= 0 || !startedAt(pid, recorded[1])) return undefined;
  let fd: number;
  try {
    fd = openSync(`/proc/${pid}/ns/user`, constants.O_RDONLY);
  } catch {
    return undefined;
  }
  // Checked again after the open: the fd names the namespace of the process that was checked.
  if (!startedAt(pid, recorded[1]) || ownerOf(pid) !== uid) {
    closeSync(fd);
    return undefined;
  }
  return fd;
}

/** The sleep the pause process runs, from the fixed system directories. */
function sleepBinary(): string {
  for (const path of ['/usr/bin/sleep', '/bin/sleep']) {
    if (lstatSync(path, { throwIfNoEntry: false })) return path;
  }
  throw new EngineError('EINVAL', 'no sleep program in /usr/bin or /bin for the pause process');
}

/** Makes the user namespace with its pause process; records it. */
async function startPause(pidFile: string, ranges: UserIdRanges): Promise<void> {
  const ns = await import('@box/ns');
  const devNull = openSync('/dev/null', 'r+');
  try {
    const proc = await ns.spawn({
      path: sleepBinary(),
      args: ['box-pause', 'infinity'],
      env: [],
      cwd: '/',
      namespaces: [{ type: 'user' }],
      uidMappings: [
        { containerID: 0, hostID: ranges.uid, size: 1 },
        { containerID: 1, hostID: ranges.subuid.start, size: ranges.subuid.count },
      ],
      gidMappings: [
        { containerID: 0, hostID: ranges.gid, size: 1 },
        { containerID: 1, hostID: ranges.subgid.start, size: ranges.subgid.count },
      ],
      idMapWriter: (pid, uids, gids) => ns.writeIdMapsWithHelpers(pid, uids, gids),
      stdio: [devNull, devNull, devNull],
      // Out of the caller's session: a terminal's hang-up must not end it.
      newSession: true,
      detach: true,
    });
    const start = processStartTime(proc.pid);
    const tmp = `${pidFile}.${process.pid}`;
    writeFileSync(tmp, `${proc.pid} ${start}\n`, { mode: 0o600 });
    renameSync(tmp, pidFile);
  } catch (error) {
    if (error instanceof EngineError) throw error;
    throw new EngineError('EINVAL', `cannot make the user namespace: ${(error as Error).message}`, {
      cause: error,
    });
  } finally {
    closeSync(devNull);
  }
}

/** The pause process's namespace, made first when there is none (one maker at a time: a lock). */
async function pauseNamespace(runtimeDir: string, ranges: UserIdRanges): Promise<number> {
  const pidFile = join(runtimeDir, 'pause.pid');
  const existing = openPauseNamespace(pidFile, ranges.uid);
  if (existing !== undefined) return existing;
  const { tryLock } = await import('@box/sys');
  const lockPath = join(runtimeDir, 'pause.lock');
  const lock = openSync(lockPath, 'w', 0o600);
  try {
    for (let tries = 0; !tryLock(lock, lockPath); tries++) {
      if (tries > 500) throw new EngineError('EINVAL', `${lockPath} stays locked`);
      await sleep(10);
    }
    const made = openPauseNamespace(pidFile, ranges.uid);
    if (made !== undefined) return made;
    await startPause(pidFile, ranges);
    const fd = openPauseNamespace(pidFile, ranges.uid);
    if (fd === undefined)
      throw new EngineError('EINVAL', 'the pause process of the user namespace ended at once');
    return fd;
  } finally {
    closeSync(lock); // the flock ends with it
  }
}

const FORWARDED: NodeJS.Signals[] = ['SIGTERM', 'SIGHUP', 'SIGUSR1', 'SIGUSR2'];

/**
 * Commands that mount a stopped container's overlay on this side (`export`, `cp`), or a detached
 * clone of its upper dir to walk (`commit`, `diff`, see @box/unionfs upper-view.ts): they run in
 * a mount namespace of their own, made in the user namespace (so box may mount there, and every
 * mount is gone with the process, even a killed one). The others share the host's, which the
 * box service and its callers compare to know that their paths mean the same.
 */
const OWN_MOUNT_NAMESPACE = new Set(['export', 'cp', 'commit', 'diff']);

function needsMountNamespace(args: readonly string[]): boolean {
  const words = args.slice(1).filter((a) => !a.startsWith('-'));
  const command = words[0] === 'container' ? words[1] : words[0];
  return command !== undefined && OWN_MOUNT_NAMESPACE.has(command);
}

/**
 * Runs this same box command again inside the user's namespace and returns its exit status
 * (128+N when a signal ended it). Called by an unprivileged box before it does anything else.
 */
export async function runInUserNamespace(args: readonly string[]): Promise<number> {
  const ns = await import('@box/ns');
  const sys = await import('@box/sys');
  const ranges = checkRootlessSetup(ns);
  const dirs = rootlessDirs();
  const fd = await pauseNamespace(dirs.runtimeDir, ranges);
  const env = Object.entries({
    ...process.env,
    BOX_ROOT: dirs.root,
    BOX_RUNTIME_DIR: dirs.runtimeDir,
  }).map(([k, v]) => `${k}=${v}`);
  let child: Awaited<ReturnType<typeof ns.spawn>>;
  try {
    child = await ns.spawn({
      path: process.execPath,
      args: [process.execPath, ...process.execArgv, ...args],
      env,
      cwd: process.cwd(),
      namespaces: [{ type: 'user', fd, path: 'the rootless user namespace' }],
      credentials: { uid: 0, gid: 0 },
      setup: needsMountNamespace(args)
        ? (program) => {
            program.call('unshare', 'create a mount namespace', [sys.CLONE_NEWNS]);
            program.mount(null, '/', null, sys.MS.REC | sys.MS.PRIVATE);
            return undefined;
          }
        : undefined,
      // It goes with this process: a foreground box killed takes its container with it.
      parentDeathSignal: 'SIGKILL',
    });
  } finally {
    closeSync(fd);
  }
  // Terminal signals (Ctrl-C, Ctrl-\) reach both processes of the foreground group: only the
  // inner one acts on them. Those sent to this pid are passed on.
  const ignore = () => undefined;
  process.on('SIGINT', ignore);
  process.on('SIGQUIT', ignore);
  process.on('SIGWINCH', ignore);
  const forward = (signal: NodeJS.Signals) => child.kill(signal);
  for (const signal of FORWARDED) process.on(signal, forward);
  const status = await child.exited;
  return status.exitCode ?? 128 + (status.signal ?? 0);
}

/**
 * The processes of a rootless container (host pids), where a root-run box reads its cgroup:
 * every process of ours whose pid namespace is the one of the container's first process.
 * (Processes of other users are not readable here and cannot be in it.)
 */
export function namespacePids(pid: number | undefined): number[] {
  if (!pid) return [];
  let target: string;
  try {
    target = readlinkSync(`/proc/${pid}/ns/pid`);
  } catch {
    return [];
  }
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readlinkSync(`/proc/${entry}/ns/pid`) === target) pids.push(Number(entry));
    } catch {
      // ended, or not ours
    }
  }
  return pids.sort((a, b) => a - b);
}

/** The refusal of a bridge network (they need root on the host: a bridge, veth pairs, nftables). */
export function noBridgeNetworks(what: string): EngineError {
  return new EngineError(
    'EINVAL',
    `${what}: a rootless box has no bridge networks (they need root on the host)`,
  );
}
