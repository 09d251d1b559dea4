export { EngineError, type EngineErrorCode, isRuntimeError, RuntimeError } from '../errors.js';
export type { AttachEnd, ContainerAttachIO, ContainerAttachment } from './attach-client.js';
export type { EngineContext, Supervision } from './context.js';
export { DEFAULT_DETACH_KEYS, DetachScanner, parseDetachKeys } from './detach-keys.js';
export {
  type AttachedProcess,
  createEngine,
  Engine,
  type EngineOptions,
  type VolumeUsage,
} from './engine.js';
export {
  type EventMessage,
  type EventQuery,
  eventFilter,
  eventMessage,
  eventTimeNano,
} from './events.js';
export type { CommitOptions } from './filesystem.js';
export type {
  ConfigInspect,
  ContainerInspect,
  ContainerStateInspect,
  EndpointInspect,
  HostConfigInspect,
  HostMountInspect,
  MountPointInspect,
  NetworkSettingsInspect,
  PortBindingInspect,
} from './inspect.js';
export type { NetworkEndpoint, NetworkSettings, PublishedPort } from './network-attach.js';
export type { CreateNetworkOptions, NetworkInfo, NetworkRecord } from './networks.js';
export type { PipedIO } from './pipes.js';
export { prepareStateRoot } from './prepare.js';
export { type ProcessTable, parsePsOutput } from './ps-top.js';
/** For image providers that keep layers under the state root, which --userns containers must traverse. */
export {
  checkRootlessSetup,
  isRootless,
  ROOTLESS_DEFAULT_NETWORK,
  type RootlessDirs,
  rootlessDirs,
  runInUserNamespace,
} from './rootless.js';
export type { ServeOptions } from './service.js';
export type { ServiceCommand } from './service-client.js';
export { sharedDir, sharedGroup } from './state-dir.js';
export type {
  AttachedStreams,
  AttachStdio,
  CommitRequest,
  Container,
  ContainerProcessInfo,
  ContainerRecord,
  ContainerStats,
  ContainerStatus,
  CreateOptions,
  DeviceRequest,
  EngineEvent,
  EngineEventType,
  EngineImage,
  ExecOptions,
  ExitStatus,
  Healthcheck,
  HealthState,
  ImageConfig,
  ImageProvider,
  MountRequest,
  PortBinding,
  RestartPolicy,
  Ulimit,
} from './types.js';
export type { VolumeInfo } from './volumes.js';
