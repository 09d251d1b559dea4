export * from './constants.js';
export { ChildSetupError, errnoName, errnoValue, SyscallError, type SyscallErrorDetails } from './errors.js';
export {
  type Arg,
  type CallOptions,
  ChildProgram,
  type DataRef,
  refAt,
  type Slot,
  type SpawnedChild,
  spawnChild,
} from './program.js';
export {
  close,
  dupCloexec,
  getWindowSize,
  isatty,
  kill,
  mount,
  pidfdOpen,
  pipe,
  receiveFd,
  setns,
  setWindowSize,
  socketPair,
  tryLock,
  tryWait,
  umount2,
  unshare,
  type WaitStatus,
  type WindowSize,
} from './syscalls.js';
