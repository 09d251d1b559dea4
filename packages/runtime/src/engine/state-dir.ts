/**
 * Who may reach what box stores in its state directory (BOX_ROOT).
 *
 * Threat model: any other local user. Paths under BOX_ROOT are no secret (they show in
 * /proc/PID/mountinfo, `box inspect` output, logs), so only permissions protect them. What a
 * user who can traverse BOX_ROOT would get:
 * - root from any setuid-root file or file with capabilities in an image layer, a container's
 *   writable layer (`cp /bin/sh /x; chmod 4755 /x` as container root) or a volume, and device
 *   nodes from an image;
 * - containers' `-e` secrets from config.json and state.json, and whatever they print from
 *   json.log;
 * - everything containers keep in their layers and volumes.
 * So, as docker: BOX_ROOT and everything on the way to layers, writable layers, volumes,
 * configs, state and logs are closed to others (no `o` bits on directories), and files holding
 * a container's environment or output are 0600.
 *
 * The one reader besides root: containers in user namespaces (`--userns`). Their root is an
 * unprivileged host uid/gid (100000, or box's range in /etc/subuid and /etc/subgid), and it is
 * the container's first process, already inside its user namespace, that mounts the overlay
 * and bind-mounts volumes; overlayfs then reaches the layers with that process's credentials.
 * Capabilities held in a user namespace do not apply to files owned by ids it does not map, so
 * that process needs the `x` bit on every directory on the way. Those directories (BOX_ROOT,
 * image/, image/layers/ and each layer, containers/ and a --userns container's own directory,
 * volumes/ and each volume) are therefore root:<mapped root gid> 0710: root and processes with
 * the mapped root's gid may traverse, nobody may list, others may not even traverse. Docker's
 * userns-remap does the same (its root is 0710 root:<remapped gid>). Directories only root
 * needs (names/, a container without --userns, the image store's blobs and tmp) are 0700.
 *
 * What the mapped root's gid can reach is what its containers are given anyway: the layers
 * (read-only to it, files inside keep their image modes) and its writable layers and volumes.
 * It cannot read configs, state or logs (0600 root). Only processes of --userns containers
 * hold that gid, and they live in their own mount namespace, after pivot_root; the range in
 * /etc/subgid must not be given to any user (a rootless user with it could traverse too).
 * Keeping the directories root-owned (rather than owned by the mapped root) means a --userns
 * container cannot chmod them open, and a change of the range is one chown on next start.
 *
 * A state directory made by an older box (0711 or 0755, 0644 records), or given by the user
 * (BOX_ROOT=/tmp/x, made 0755), is tightened on every start: the root and its top-level
 * directories are checked (a few lstat calls) and, when the root was not yet closed, the
 * records and volumes inside it too.
 */
import {
  chmodSync,
  chownSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  type Stats,
  statSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { EngineError } from '../errors.js';
import type { Layout } from './layout.js';
import { isRootless } from './rootless.js';

/** container root -> host id range for --userns: /etc/subuid's (or subgid's) "box" entry, else 100000:65536. */
export function userNamespaceRange(file: string): { hostID: number; size: number } {
  try {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const [user, start, count] = line.split(':');
      if (user === 'box' && start && count) return { hostID: Number(start), size: Number(count) };
    }
  } catch {
    // no file
  }
  return { hostID: 100000, size: 65536 };
}

/**
 * Another user's /etc/subuid or /etc/subgid range that overlaps box's: that user could map
 * box's container-root ids into a user namespace of their own (newuidmap/newgidmap) and,
 * holding the traversal group, open a setuid-root file in a layer and run it on the host.
 * useradd gives the first user 100000:65536, box's default, so this is no corner case.
 */
export function userNamespaceConflict(): string | undefined {
  for (const file of ['/etc/subuid', '/etc/subgid']) {
    const box = userNamespaceRange(file);
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n')) {
      const [user, start, count] = line.split(':');
      if (!user || user === 'box' || !start || !count) continue;
      const [from, size] = [Number(start), Number(count)];
      if (from < box.hostID + box.size && box.hostID < from + size) {
        return `the ids box maps container root to (${box.hostID}-${box.hostID + box.size - 1}) overlap the ${file} range of user "${user}" (${from}-${from + size - 1}); give box a range of its own with a "box:START:COUNT" line in /etc/subuid and /etc/subgid`;
      }
    }
  }
  return undefined;
}

let group: number | undefined;

/**
 * The host gid of container root in --userns containers: the group that may traverse. While
 * another user's sub-id range overlaps box's (userNamespaceConflict), root's own group
 * instead: the directories stay closed to everyone, and --userns is refused.
 */
export function sharedGroup(): number {
  // Rootless: everything is the user's own (its uid/gid are 0 here), containers' root included.
  if (isRootless()) return process.getgid?.() ?? 0;
  group ??= userNamespaceConflict() === undefined ? userNamespaceRange('/etc/subgid').hostID : 0;
  return group;
}

const SHARED_MODE = 0o710;
const PRIVATE_MODE = 0o700;
const FILE_MODE = 0o600;

function isDirectory(stats: Stats | undefined): stats is Stats {
  return stats?.isDirectory() === true;
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** Sets owner (root of this process) and mode when they differ; true when something changed. */
function fixDirectory(path: string, stats: Stats, mode: number, gid: number): boolean {
  let changed = false;
  const uid = process.getuid?.() ?? 0;
  if (stats.uid !== uid || stats.gid !== gid) {
    chownSync(path, uid, gid);
    changed = true;
  }
  // After the chown, which clears setuid/setgid bits.
  if ((stats.mode & 0o7777) !== mode || changed) {
    chmodSync(path, mode);
    changed = true;
  }
  return changed;
}

/**
 * Makes (or fixes) a directory only root and container root of --userns containers may
 * traverse: root:<mapped root gid> 0710. Returns true when it was there with other owner or mode.
 */
export function sharedDir(path: string): boolean {
  // Rootless: container root is the user itself (the owner), so no group needs to traverse; the
  // user's primary group may be shared with other users (e.g. "users"), who would otherwise reach
  // containers' layers and volumes and run a setuid file of a layer as this user.
  if (isRootless()) return privateDir(path);
  return closedDir(path, SHARED_MODE, sharedGroup());
}

/** Makes (or fixes) a directory only root may enter: 0700. */
export function privateDir(path: string): boolean {
  return closedDir(path, PRIVATE_MODE, process.getgid?.() ?? 0);
}

function closedDir(path: string, mode: number, gid: number): boolean {
  let stats = lstatOrUndefined(path);
  if (stats === undefined) {
    try {
      mkdirSync(path, { mode });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    stats = lstatSync(path);
    fixDirectory(path, stats, mode, gid);
    return false;
  }
  if (!stats.isDirectory()) throw new EngineError('ESTATEDIR', `${path} is not a directory`);
  return fixDirectory(path, stats, mode, gid);
}

/** chmod 0600 of a regular file (never through a symlink) when others or the group may read it. */
function tightenFile(path: string): void {
  const stats = lstatOrUndefined(path);
  if (stats?.isFile() && (stats.mode & 0o7777) !== FILE_MODE) chmodSync(path, FILE_MODE);
}

/** Whether a container's OCI config asks for a new user namespace. */
function usesUserNamespace(dir: string): boolean {
  try {
    const spec = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as {
      linux?: { namespaces?: { type: string; path?: string }[] };
    };
    return spec.linux?.namespaces?.some((ns) => ns.type === 'user' && !ns.path) ?? false;
  } catch {
    return false;
  }
}

/** A container's directory: shared for --userns containers (they mount their layers), else private. */
export function containerDirMode(dir: string, userns: boolean): void {
  if (userns) sharedDir(dir);
  else privateDir(dir);
}

/** What an older box wrote with looser modes: container records, logs and volumes. */
function tightenRecords(layout: Layout): void {
  const each = (dir: string, fix: (path: string) => void) => {
    for (const entry of readdirSync(dir)) {
      if (entry.startsWith('.')) continue; // being made or removed
      const path = join(dir, entry);
      try {
        if (isDirectory(lstatOrUndefined(path))) fix(path);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error; // removed meanwhile
      }
    }
  };
  each(layout.containers, (dir) => {
    containerDirMode(dir, usesUserNamespace(dir));
    for (const file of readdirSync(dir)) tightenFile(join(dir, file));
  });
  each(layout.volumes, (dir) => {
    sharedDir(dir);
    tightenFile(join(dir, 'volume.json'));
  });
}

const secured = new Set<string>();

/**
 * Makes the state directory and its top-level directories, or tightens them when an older box
 * or the user made them with looser modes. Called before every command; once per process.
 */
export function secureStateDir(layout: Layout): void {
  const { root } = layout;
  if (secured.has(root)) return;
  try {
    // Missing parents as mkdir -p makes them (0755): container root must pass through them.
    mkdirSync(dirname(root), { recursive: true, mode: 0o755 });
    const stats = statSync(root, { throwIfNoEntry: false });
    const uid = process.getuid?.() ?? 0;
    if (stats && stats.uid !== uid) {
      // Its owner could open it again at any time, or has put links in it already.
      throw new EngineError(
        'ESTATEDIR',
        `box's state directory ${root} belongs to uid ${stats.uid}, not to uid ${uid}: refusing to use it`,
      );
    }
    const loose = sharedDir(root);
    sharedDir(join(root, 'image'));
    sharedDir(layout.containers);
    sharedDir(layout.volumes);
    privateDir(layout.names);
    for (const file of [layout.serviceLog, layout.serviceLock, layout.events]) tightenFile(file);
    if (loose) tightenRecords(layout);
  } catch (error) {
    if (error instanceof EngineError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM') {
      throw new EngineError(
        'ESTATEDIR',
        `cannot set up box's state directory ${root}: ${(error as Error).message} (box needs root)`,
      );
    }
    throw error;
  }
  secured.add(root);
}
