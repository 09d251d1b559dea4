export { ChildProgram, ChildSetupError, type Slot } from '@box/sys';
export { NamespaceConfigError, UnsupportedNamespaceError } from './errors.js';
export { formatIdMap, writeIdMaps } from './idmap.js';
export { canJoinByPidfd } from './pidfd-join.js';
export {
  type Capabilities,
  type Credentials,
  type NamespacedProcess,
  type ProcessJoin,
  type ResourceLimit,
  type SeccompFilter,
  type SetupResult,
  type SpawnOptions,
  type StdioSource,
  spawn,
  type WaitStatus,
} from './spawn.js';
export {
  findIdMapHelper,
  ID_MAP_HELPER_DIRS,
  idMapHelpers,
  SubordinateIdError,
  type SubordinateRange,
  subordinateRange,
  writeIdMapsWithHelpers,
} from './subid.js';
export { type IdMapping, type Namespace, type NamespaceType, namespacesOf } from './types.js';
