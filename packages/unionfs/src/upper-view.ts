/**
 * The upper dir of an overlay as a layer diff (diff.ts) and a list of changes (changes.ts) walk
 * it: through a detached clone of its mount, read-only and nosymfollow, reached by path as
 * `/proc/PID/fd/FD`.
 *
 * Threat: a running container writes its upper dir while the walk goes on (`box diff`, a commit
 * with --pause=false, a rootless container that has no freezer). Between listing a directory and
 * reading in it, the container can swap the directory for a symlink to a host directory, and a
 * walk by path, as root, would go through it: host files in the committed image, host names in
 * the diff. On a nosymfollow mount no path goes through a symlink (ELOOP instead), and symlinks
 * are still read as symlinks. Not a bind mount on a directory: the clone is in no mount namespace,
 * so no other process sees it, and it ends with its fd, also when box is killed with SIGKILL.
 * `/proc/PID` rather than `/proc/self`: the xattr tools fallback (getfattr) is another process.
 */
import { cloneMount, close } from '@box/sys';
import { errnoOf, ioError, isUnionfsError, UnionfsError } from './errors.js';

export interface UpperView {
  /** The view's root, to walk instead of the upper dir. */
  readonly root: string;
  /** The error as a UnionfsError naming the upper dir's own path, not the view's. */
  shown(error: unknown): unknown;
  close(): void;
}

/** Opens the view of `upperdir` (an absolute, checked path). Needs CAP_SYS_ADMIN over this mount namespace. */
export function openUpperView(upperdir: string): UpperView {
  let fd: number;
  try {
    fd = cloneMount(upperdir, { readonly: true, nosuid: true, nodev: true, noexec: true, nosymfollow: true });
  } catch (error) {
    throw ioError('cannot open a read-only view of', upperdir, error);
  }
  const root = `/proc/${process.pid}/fd/${fd}`;
  const real = (text: string) => text.split(root).join(upperdir);
  let open = true;
  return {
    root,
    shown(error) {
      if (!(error instanceof Error)) return error;
      const path = (error as { path?: unknown }).path;
      if (!error.message.includes(root) && !(typeof path === 'string' && path.includes(root))) return error;
      return new UnionfsError(isUnionfsError(error) ? error.code : 'EUNIONFSIO', real(error.message), {
        path: typeof path === 'string' ? real(path) : undefined,
        errno: isUnionfsError(error) ? error.errno : errnoOf(error),
        cause: error,
      });
    },
    close() {
      if (!open) return;
      open = false;
      close(fd);
    },
  };
}
