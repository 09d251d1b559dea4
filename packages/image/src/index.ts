export {
  type ArchiveFormat,
  type ImportOptions,
  importRootfsTar,
  type LoadedImage,
  type LoadOptions,
  loadArchive,
  type SaveOptions,
  saveArchive,
} from './archive.js';
export { chainIds, DigestStream, digestHex, sha256 } from './digest.js';
export { ImageError, type ImageErrorCode, type ImageErrorDetails, isImageError } from './errors.js';
export {
  type ContainerConfig,
  type Descriptor,
  type HistoryEntry,
  type ImageConfig,
  type ImageIndex,
  type Manifest,
  MediaType,
  parseConfig,
  parseIndex,
  parseManifest,
} from './manifest.js';
export { engineImageProvider, type ImageProviderOf, type ProvidedImage } from './provider.js';
export {
  DEFAULT_DOMAIN,
  DEFAULT_TAG,
  familiarName,
  familiarString,
  formatReference,
  isDigest,
  isTag,
  normalizeReference,
  parseReference,
  type Reference,
} from './reference.js';
export {
  type Challenge,
  type Credentials,
  type LayerStatus,
  type ProgressEvent,
  type PullOptions,
  type PullResult,
  type PushResult,
  parseChallenges,
  pullImage,
  pushImage,
  type RegistryOptions,
  registryHostOf,
  registryLogin,
  registryLogout,
} from './registry/index.js';
export {
  type ImageInspect,
  type ImageStore,
  type ImageStoreOptions,
  type ImageSummary,
  type LayerInfo,
  type NewImage,
  openImageStore,
  type RemoveResult,
  type ResolvedImage,
  type StagedLayer,
  type Transaction,
} from './store.js';
export {
  applyLayer,
  type Compression,
  compressionOfMediaType,
  detectCompression,
  type OpaqueHook,
  type SkippedEntry,
  type UnpackOptions,
  type UnpackResult,
  unpackLayer,
  type WhiteoutHook,
  type WhiteoutInfo,
} from './unpack.js';
