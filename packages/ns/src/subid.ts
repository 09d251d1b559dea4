/**
 * Subordinate ids (/etc/subuid, /etc/subgid) and the setuid helpers that map them
 * (`newuidmap`, `newgidmap` of shadow's `uidmap`).
 *
 * An ordinary user may write only one line to a user namespace's uid_map: its own uid. To map
 * more ids (so that a container has a uid 1, a uid 33, ...), the kernel must see the map written
 * by a process with CAP_SETUID in the parent namespace: the setuid-root helpers, which check the
 * ranges against /etc/subuid and /etc/subgid and write them.
 *
 * Threat model: the helpers are setuid root, so the ones run are looked up only in fixed
 * system directories, never through PATH (a directory early in a user's PATH would otherwise
 * pick which program gets the namespace's pid). The helpers check the ranges themselves; what
 * is read here only chooses what to ask for.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import type { IdMapping } from './types.js';

/** Where the helpers are looked for, in order. */
export const ID_MAP_HELPER_DIRS = ['/usr/bin', '/bin', '/usr/sbin', '/sbin'] as const;

/** A problem with sub-ids or their helpers, found before anything was made. */
export class SubordinateIdError extends Error {
  override readonly name = 'SubordinateIdError';
  readonly code = 'ESUBID';
}

export interface SubordinateRange {
  start: number;
  count: number;
}

/**
 * The first range of `user` (by name or uid, as shadow matches them) in a subuid/subgid file;
 * undefined when the file has none for it, or is missing.
 */
export function subordinateRange(file: string, user: string, id: number): SubordinateRange | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) {
    const [owner, start, count] = line.trim().split(':');
    if (owner === undefined || start === undefined || count === undefined) continue;
    if (owner !== user && owner !== String(id)) continue;
    if (!/^\d+$/.test(start) || !/^\d+$/.test(count)) continue;
    const range = { start: Number(start), count: Number(count) };
    if (range.count > 0) return range;
  }
  return undefined;
}

/** The path of a helper (`newuidmap`, `newgidmap`) in the fixed directories; undefined if none. */
export function findIdMapHelper(name: 'newuidmap' | 'newgidmap'): string | undefined {
  for (const dir of ID_MAP_HELPER_DIRS) {
    const path = `${dir}/${name}`;
    try {
      const stats = statSync(path);
      // A regular, executable file; /dev/null bound over it (a host that lacks it) is not one.
      if (stats.isFile() && (stats.mode & 0o111) !== 0) return path;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Both helpers, or a SubordinateIdError naming the one missing and where it comes from. */
export function idMapHelpers(): { newuidmap: string; newgidmap: string } {
  const newuidmap = findIdMapHelper('newuidmap');
  const newgidmap = findIdMapHelper('newgidmap');
  for (const [name, path] of [
    ['newuidmap', newuidmap],
    ['newgidmap', newgidmap],
  ] as const) {
    if (path === undefined)
      throw new SubordinateIdError(
        `${name} not found in ${ID_MAP_HELPER_DIRS.join(', ')}: install the uidmap package (apt-get install uidmap)`,
      );
  }
  return { newuidmap: newuidmap!, newgidmap: newgidmap! };
}

function helperArgs(pid: number, mappings: readonly IdMapping[]): string[] {
  return [String(pid), ...mappings.flatMap((m) => [String(m.containerID), String(m.hostID), String(m.size)])];
}

/**
 * Writes uid_map and gid_map of `pid` (waiting at its sync point in a new user namespace)
 * through newuidmap/newgidmap. A refusal of a helper is a SubordinateIdError with its words.
 */
export function writeIdMapsWithHelpers(
  pid: number,
  uidMappings: readonly IdMapping[],
  gidMappings: readonly IdMapping[],
  helpers = idMapHelpers(),
): void {
  for (const [helper, mappings] of [
    [helpers.newuidmap, uidMappings],
    [helpers.newgidmap, gidMappings],
  ] as const) {
    if (mappings.length === 0) continue;
    try {
      execFileSync(helper, helperArgs(pid, mappings), { stdio: ['ignore', 'ignore', 'pipe'], env: {} });
    } catch (error) {
      const stderr = String((error as { stderr?: Buffer }).stderr ?? '').trim();
      throw new SubordinateIdError(
        `${helper} ${helperArgs(pid, mappings).join(' ')} failed: ${stderr.split('\n')[0] || (error as Error).message}`,
        { cause: error },
      );
    }
  }
}
