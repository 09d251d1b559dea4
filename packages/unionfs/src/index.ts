export { type Change, type ChangeKind, type ChangesOptions, layerChanges } from './changes.js';
export {
  COPY_FALLBACK_MESSAGE,
  type CopyStats,
  type PrepareCopyOptions,
  prepareCopyRootfs,
  selectDriver,
} from './copy.js';
export { type DiffLayerOptions, diffLayer } from './diff.js';
export {
  errnoOf,
  isUnionfsError,
  UnionfsError,
  type UnionfsErrorCode,
  type UnionfsErrorDetails,
} from './errors.js';
export {
  checkOverlayPath,
  LINK_DIR,
  linkLayer,
  MAX_LOWER_LAYERS,
  MOUNT_DATA_MAX,
  type OverlayMountData,
  type OverlayMountDataOptions,
  overlayMountData,
  pruneLayerLinks,
  unlinkLayer,
} from './options.js';
export {
  type MountOverlayOptions,
  mountOverlay,
  type OverlaySupport,
  overlaySupported,
  privateMountPoint,
  probeOverlay,
  unmountOverlay,
  type WithOverlayOptions,
  withOverlay,
} from './overlay.js';
export { treeSize } from './size.js';
export {
  FUSE_OPAQUE_XATTR,
  FUSE_XATTR_PREFIX,
  isOpaque,
  isOverlayWhiteout,
  markOpaque,
  OPAQUE_WHITEOUT,
  opaqueXattr,
  overlayWhiteoutHooks,
  toOverlayWhiteout,
  WHITEOUT_PREFIX,
  type XattrModeOptions,
} from './whiteout.js';
