/** Resolves docker's `-u user[:group]` against the image's /etc/passwd and /etc/group. */
import { EngineError } from '../errors.js';
import { readFileInRoot } from '../rootfs/read.js';

export interface ResolvedUser {
  uid: number;
  gid: number;
  additionalGids: number[];
  home: string;
}

/**
 * A file of the image: from the topmost layer (or root) that has it; a whiteout hides it.
 * Read inside each root, never through a link out of it, and only if it is a small regular
 * file (see @box/runtime readFileInRoot): an image's /etc/passwd may be a FIFO or a device.
 */
function readDb(roots: readonly string[], file: string): string[][] {
  for (const root of roots) {
    const found = readFileInRoot(root, file);
    if (found === undefined) continue;
    if (found.kind !== 'file') return [];
    return found.data
      .toString('utf8')
      .split('\n')
      .filter((line) => line && !line.startsWith('#'))
      .map((line) => line.split(':'));
  }
  return [];
}

const ID = /^\d+$/;

export function resolveUser(rootfs: string | readonly string[], spec: string | undefined): ResolvedUser {
  const roots = typeof rootfs === 'string' ? [rootfs] : rootfs;
  const value = spec ?? '';
  const [userPart = '', groupPart] = value.split(':', 2);
  if (value.split(':').length > 2 || (value !== '' && userPart === '') || groupPart === '') {
    throw new EngineError('EINVAL', `invalid user "${value}": expected USER[:GROUP]`);
  }
  const passwd = readDb(roots, '/etc/passwd');
  const groups = readDb(roots, '/etc/group');
  const name = userPart === '' ? 'root' : userPart;
  const entry = passwd.find((e) => (ID.test(name) ? e[2] === name : e[0] === name));
  // The image's files are hostile: an id must be a number (not "-1", which setresuid takes as "keep root").
  if (entry && !(ID.test(entry[2] ?? '') && ID.test(entry[3] ?? ''))) {
    throw new EngineError('EINVAL', `invalid entry for user ${name} in the image's /etc/passwd`);
  }
  let uid: number;
  if (ID.test(name)) uid = Number(name);
  else if (entry) uid = Number(entry[2]);
  // The default user is root even in an image without /etc/passwd, as in docker.
  else if (userPart === '') uid = 0;
  else throw new EngineError('EINVAL', `unable to find user ${name}: no matching entries in passwd file`);
  let gid = entry ? Number(entry[3]) : 0;
  if (groupPart !== undefined) {
    if (ID.test(groupPart)) gid = Number(groupPart);
    else {
      const group = groups.find((g) => g[0] === groupPart);
      if (!group)
        throw new EngineError(
          'EINVAL',
          `unable to find group ${groupPart}: no matching entries in group file`,
        );
      if (!ID.test(group[2] ?? ''))
        throw new EngineError('EINVAL', `invalid entry for group ${groupPart} in the image's /etc/group`);
      gid = Number(group[2]);
    }
  }
  if (uid > 0xfffffffe || gid > 0xfffffffe)
    throw new EngineError('EINVAL', `invalid user "${value}": id out of range`);
  const userName = entry?.[0];
  const additionalGids =
    groupPart === undefined && userName
      ? groups
          .filter((g) => (g[3] ?? '').split(',').includes(userName) && ID.test(g[2] ?? ''))
          .map((g) => Number(g[2]))
      : [];
  return { uid, gid, additionalGids, home: entry?.[5] || '/' };
}

/** docker's --group-add: ids as they are, names from the image's /etc/group. */
export function resolveGroups(rootfs: string | readonly string[], names: readonly string[]): number[] {
  const roots = typeof rootfs === 'string' ? [rootfs] : rootfs;
  const groups = readDb(roots, '/etc/group');
  return names.map((name) => {
    if (ID.test(name)) {
      if (Number(name) > 0xfffffffe) throw new EngineError('EINVAL', `invalid group id ${name}`);
      return Number(name);
    }
    const group = groups.find((g) => g[0] === name);
    if (!group)
      throw new EngineError('EINVAL', `Unable to find group ${name}: no matching entries in group file`);
    if (!ID.test(group[2] ?? ''))
      throw new EngineError('EINVAL', `invalid entry for group ${name} in the image's /etc/group`);
    return Number(group[2]);
  });
}
