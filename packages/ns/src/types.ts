import {
  CLONE_NEWCGROUP,
  CLONE_NEWIPC,
  CLONE_NEWNET,
  CLONE_NEWNS,
  CLONE_NEWPID,
  CLONE_NEWUSER,
  CLONE_NEWUTS,
} from '@box/sys';

/** Namespace kinds, named as in the OCI runtime spec. */
export type NamespaceType = 'mount' | 'uts' | 'ipc' | 'pid' | 'network' | 'user' | 'cgroup';

/**
 * A namespace to create (neither `path` nor `fd`) or to join: `path` of a /proc/PID/ns/* file,
 * or `fd`, that file already open (the caller keeps it and closes it after spawn).
 */
export interface Namespace {
  type: NamespaceType;
  path?: string;
  fd?: number;
}

/** One line of /proc/PID/uid_map or gid_map. */
export interface IdMapping {
  containerID: number;
  hostID: number;
  size: number;
}

export const NAMESPACE_FLAGS: Readonly<Record<NamespaceType, number>> = {
  mount: CLONE_NEWNS,
  uts: CLONE_NEWUTS,
  ipc: CLONE_NEWIPC,
  pid: CLONE_NEWPID,
  network: CLONE_NEWNET,
  user: CLONE_NEWUSER,
  cgroup: CLONE_NEWCGROUP,
};

/** The file name under /proc/PID/ns/ for each kind. */
export const NAMESPACE_FILES: Readonly<Record<NamespaceType, string>> = {
  mount: 'mnt',
  uts: 'uts',
  ipc: 'ipc',
  pid: 'pid',
  network: 'net',
  user: 'user',
  cgroup: 'cgroup',
};

/** Join order: the user namespace first (it grants the rights for the others), mount last. */
export const JOIN_ORDER: readonly NamespaceType[] = [
  'user',
  'ipc',
  'uts',
  'network',
  'pid',
  'cgroup',
  'mount',
];

/** The namespaces of a running process, ready to be joined. */
export function namespacesOf(pid: number, types: readonly NamespaceType[] = JOIN_ORDER): Namespace[] {
  return types.map((type) => ({ type, path: `/proc/${pid}/ns/${NAMESPACE_FILES[type]}` }));
}
