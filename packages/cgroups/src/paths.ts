import { CgroupError } from './errors.js';

/**
 * Splits a cgroup path such as `box/abc123` (a leading `/` is allowed and means the same) into its
 * parts, refusing empty paths and `.`/`..` parts so that a path can never leave the hierarchy.
 */
export function splitCgroupPath(path: string): string[] {
  const parts = path.replace(/^\/+/, '').replace(/\/+$/, '').split('/');
  if (path.trim() === '' || parts.some((part) => part === '' || part === '.' || part === '..')) {
    throw new CgroupError(
      'ECGROUPPATH',
      `invalid cgroup path ${JSON.stringify(path)}: use names separated by "/", without "." or ".."`,
      { path },
    );
  }
  return parts;
}
