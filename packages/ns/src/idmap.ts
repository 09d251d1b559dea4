import { writeFileSync } from 'node:fs';
import type { IdMapping } from './types.js';

export function formatIdMap(mappings: readonly IdMapping[]): string {
  return mappings.map((m) => `${m.containerID} ${m.hostID} ${m.size}\n`).join('');
}

/**
 * Writes uid_map and gid_map of a process in a new user namespace. The process
 * must still be waiting at its sync point. `procRoot` is injectable for tests.
 */
export function writeIdMaps(
  pid: number,
  uidMappings: readonly IdMapping[],
  gidMappings: readonly IdMapping[],
  procRoot = '/proc',
): void {
  if (uidMappings.length > 0) writeFileSync(`${procRoot}/${pid}/uid_map`, formatIdMap(uidMappings));
  if (gidMappings.length > 0) writeFileSync(`${procRoot}/${pid}/gid_map`, formatIdMap(gidMappings));
}
