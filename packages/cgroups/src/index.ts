export { blkioWeightToIoWeight, memorySwapToV2, sharesToWeight } from './convert.js';
export { type CreateCgroupManagerOptions, createCgroupManager } from './create.js';
export {
  type DelegatedCgroup,
  type Delegation,
  type FindDelegatedCgroupOptions,
  findDelegatedCgroup,
} from './delegation.js';
export {
  type CgroupMode,
  type CgroupMount,
  type CgroupMounts,
  detectCgroupMode,
  type MountinfoEntry,
  parseMountinfo,
  readCgroupMounts,
} from './detect.js';
export { DEFAULT_DEVICE_RULES, formatDeviceRule } from './devices.js';
export { CgroupError, type CgroupErrorCode, type CgroupErrorDetails, isCgroupError } from './errors.js';
export { type CgroupFs, nodeCgroupFs } from './fs.js';
export type {
  BlockIoResources,
  CgroupManager,
  CgroupStats,
  CpuResources,
  DeviceRule,
  FreezerState,
  MemoryResources,
  PidsResources,
  Resources,
} from './manager.js';
export { splitCgroupPath } from './paths.js';
export type { RemoveOptions } from './remove.js';
export {
  DEFAULT_CPU_PERIOD,
  formatCpuList,
  parseCpuList,
  parseCpus,
  parseCpuset,
  parseSize,
} from './size.js';
