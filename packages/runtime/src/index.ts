export { CAPABILITIES, capabilityNumbers, tweakCapabilities } from './capabilities.js';
export * from './engine/index.js';
export {
  CommandNotExecutableError,
  CommandNotFoundError,
  EngineError,
  type EngineErrorCode,
  isRuntimeError,
  RuntimeError,
  SpecError,
} from './errors.js';
export { type ExecOptions, type ExecProcess, execInContainer } from './exec.js';
export { logEntryTime, parseGoDuration, parseLogTime } from './log-time.js';
export {
  JsonFileLogger,
  type LogEntry,
  type LogOptions,
  type LogStream,
  type ReadLogsOptions,
  readLogs,
} from './logs.js';
export { openProcess, type ProcessHandle } from './process/handle.js';
export { lookupCommand } from './process/lookup.js';
export { processStartTime } from './process/stat.js';
export { CopyError, type CopyOptions, type CopyOwner, copyFromRoot, copyIntoRoot } from './rootfs/copy.js';
export { parseMountOptions } from './rootfs/mount-options.js';
export type { Overlay } from './rootfs/prepare.js';
export { type RootFile, readFileInRoot } from './rootfs/read.js';
export {
  type BindMountView,
  type ResolveOptions,
  resolveContainerPath,
  resolveInRoot,
} from './rootfs/resolve.js';
export { type ContainerExit, type ContainerProcess, type StartOptions, startContainer } from './run.js';
export {
  DEFAULT_CAPABILITIES,
  DEFAULT_MASKED_PATHS,
  DEFAULT_PATH,
  DEFAULT_READONLY_PATHS,
  type DefaultSpecOptions,
  defaultSpec,
  type Linux,
  type LinuxCapabilities,
  type LinuxNamespace,
  type LinuxPersonality,
  type LinuxResources,
  type Mount,
  type Process,
  type Root,
  type Spec,
  type User,
  validateSpec,
  validateSpecSeccomp,
} from './spec.js';
