/**
 * A container's changes against its image as docker's `diff` lists them: the upper dir of its
 * overlay, walked as for its layer (diff.ts), each entry compared with the lower layers.
 *
 * - `D` a whiteout (0/0 character device), and an opaque directory (what was below it is gone);
 * - `C` an entry the image has (a directory only when its size, mode or mtime differ), and the
 *   parent of anything added or deleted;
 * - `A` anything else.
 *
 * In walk order: depth-first with names sorted, a parent before what is in it. The lower layers
 * come from an image, so they are never followed out of themselves: a path is looked up in a
 * layer only below directories that are real directories of that layer (never a symlink), and
 * never below a whiteout or an opaque directory of a higher layer.
 */
import { lstatSync, type Stats } from 'node:fs';
import { walk } from './diff.js';
import { errnoOf, UnionfsError } from './errors.js';
import { checkOverlayPath } from './options.js';
import { openUpperView } from './upper-view.js';
import { isFuseOpaqueMark, isOpaque, isOverlayWhiteout, type XattrModeOptions } from './whiteout.js';

export type ChangeKind = 'A' | 'C' | 'D';

export interface Change {
  kind: ChangeKind;
  /** Absolute in the container (`/etc/passwd`). */
  path: string;
}

export interface ChangesOptions extends XattrModeOptions {
  /** Paths (absolute in the container) that are not changes, such as mount points the runtime made. */
  skip?: (path: string) => boolean;
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (error) {
    const errno = errnoOf(error);
    if (errno === 'ENOENT' || errno === 'ENOTDIR') return undefined;
    throw new UnionfsError('EUNIONFSIO', `cannot stat ${path}: ${errno ?? String(error)}`, {
      path,
      cause: error,
    });
  }
}

/** Same second, and same nanosecond unless one side has none (as docker's sameFsTime). */
function sameTime(a: Stats, b: Stats): boolean {
  const sa = Math.floor(a.mtimeMs / 1000);
  const sb = Math.floor(b.mtimeMs / 1000);
  if (sa !== sb) return false;
  const na = Math.round((a.mtimeMs % 1000) * 1e6);
  const nb = Math.round((b.mtimeMs % 1000) * 1e6);
  return na === nb || na === 0 || nb === 0;
}

/**
 * The changes of `upperdir` over `lowerdirs` (top first), as docker's `diff` prints them
 * (`${kind} ${path}`).
 */
export function layerChanges(
  upperdir: string,
  lowerdirs: readonly string[],
  options: ChangesOptions = {},
): Change[] {
  const upperPath = checkOverlayPath(upperdir, 'upperdir');
  const lowers = lowerdirs.map((dir) => checkOverlayPath(dir, 'lowerdir'));
  // Walked through a view that follows no symlink: a running container may be writing it.
  const view = openUpperView(upperPath);
  try {
    return walkChanges(view.root, lowers, options);
  } catch (error) {
    throw view.shown(error);
  } finally {
    view.close();
  }
}

function walkChanges(upper: string, lowers: readonly string[], options: ChangesOptions): Change[] {
  /** Per directory walked: in which layers its children may be looked up. */
  const searchable = new Map<string, boolean[]>([['', lowers.map(() => true)]]);
  const changedDirs = new Set<string>();
  const changes: Change[] = [];
  /**
   * Directories whose entries in the upper dir are all skipped ones: the runtime made them for
   * those (e.g. /etc for /etc/hosts), so they are no change either.
   */
  const skippedOnly = new Map<string, boolean>();
  const onlySkipped = (dirRel: string, skipped: boolean) => {
    for (let dir = dirRel; dir !== ''; dir = dir.slice(0, Math.max(0, dir.lastIndexOf('/')))) {
      const before = skippedOnly.get(dir);
      if (before === false || (before === true && skipped)) return;
      skippedOnly.set(dir, skipped);
    }
  };

  for (const rel of walk(upper)) {
    const slash = rel.lastIndexOf('/');
    const parentRel = slash === -1 ? '' : rel.slice(0, slash);
    const path = `/${rel}`;
    const parent = slash === -1 ? '/' : `/${parentRel}`;
    // Gone since its directory was listed (a running container): no change to list.
    const stats = lstatOrUndefined(`${upper}/${rel}`);
    if (!stats) continue;
    if (options.fuseOverlay && isFuseOpaqueMark(rel.slice(slash + 1), stats)) continue;

    // What the image has at this path: the first layer (top first) that says anything of it.
    const inLayers = searchable.get(parentRel) ?? lowers.map(() => false);
    let below: Stats | undefined;
    const childSearchable = lowers.map(() => false);
    let hidden = false;
    for (let i = 0; i < lowers.length; i++) {
      if (hidden || !inLayers[i]) continue;
      const found = lstatOrUndefined(`${lowers[i]}/${rel}`);
      if (!found) continue;
      if (isOverlayWhiteout(found)) {
        hidden = true; // deleted in the image: nothing further down counts
        continue;
      }
      below ??= found;
      if (!found.isDirectory()) {
        hidden = true;
        continue;
      }
      childSearchable[i] = true;
      if (isOpaque(`${lowers[i]}/${rel}`, options)) hidden = true;
    }

    let kind: ChangeKind;
    const opaque = stats.isDirectory() && isOpaque(`${upper}/${rel}`, options);
    if (isOverlayWhiteout(stats) || opaque) kind = 'D';
    else if (below) kind = 'C';
    else kind = 'A';
    if (stats.isDirectory()) searchable.set(rel, opaque ? lowers.map(() => false) : childSearchable);

    if (options.skip?.(path)) {
      onlySkipped(parentRel, true);
      continue;
    }
    onlySkipped(parentRel, false);
    // A directory copied up only because something below it changed is no change itself.
    if (
      kind === 'C' &&
      below?.isDirectory() &&
      stats.isDirectory() &&
      below.size === stats.size &&
      below.mode === stats.mode &&
      sameTime(below, stats)
    )
      continue;
    if (stats.isDirectory()) changedDirs.add(path);
    if ((kind === 'A' || kind === 'D') && parent !== '/' && !changedDirs.has(parent)) {
      changes.push({ kind: 'C', path: parent });
      changedDirs.add(parent);
    }
    changes.push({ kind, path });
  }
  return changes.filter((c) => skippedOnly.get(c.path.slice(1)) !== true);
}
