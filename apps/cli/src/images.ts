/**
 * The image store as the CLI uses it: $BOX_ROOT/image (@box/image), with
 * layers unpacked once and whiteouts written the way overlayfs reads them, so
 * every container can stack an image's layer directories directly.
 */
import { join } from 'node:path';
import {
  type ContainerConfig,
  familiarString,
  type ImageStore,
  isImageError,
  openImageStore,
  parseReference,
  type ResolvedImage,
} from '@box/image';
import { lsetxattr, mknod, S_IFCHR } from '@box/sys';
import { CliError } from './errors.js';
import { boxRoot } from './paths.js';
import { secureStateDir, sharedDir, sharedGroup } from './state-dir.js';

let opened: Promise<ImageStore> | undefined;

/** `.wh.NAME` → a 0/0 character device NAME; `.wh..wh..opq` → trusted.overlay.opaque=y. */
function onWhiteout(dir: string, name: string): void {
  mknod(join(dir, name), S_IFCHR, 0, 0);
}

function onOpaque(dir: string): void {
  lsetxattr(dir, 'trusted.overlay.opaque', 'y');
}

export function imageStore(): Promise<ImageStore> {
  secureStateDir();
  opened ??= openImageStore({
    root: join(boxRoot(), 'image'),
    onWhiteout,
    onOpaque,
    // Containers in user namespaces mount the layers as their root's host ids (see state-dir.ts).
    group: sharedGroup(),
  }).then((store) => {
    // Short layer links for overlays with many layers (@box/unionfs's linkLayer), which a
    // --userns container's first process reaches (it mounts from there) as container root.
    sharedDir(join(store.root, 'l'));
    return store;
  });
  return opened;
}

export interface LocalImage {
  id: string;
  /** As the user sees it: `busybox:latest`, or the short ID for an untagged image. */
  name: string;
  /** Layer directories, top first (overlayfs's lowerdir order). */
  lowerdirs: string[];
  config: ContainerConfig;
  resolved: ResolvedImage;
}

/** Turns @box/image errors into one line and docker's exit status. */
export function imageError(error: unknown, exitCode = 125): unknown {
  if (isImageError(error)) return new CliError(error.message, exitCode);
  return error;
}

export async function findImage(reference: string): Promise<LocalImage> {
  const store = await imageStore();
  let resolved: ResolvedImage;
  try {
    resolved = store.resolve(reference);
  } catch (error) {
    if (isImageError(error, 'EIMAGE_NOT_FOUND')) {
      const shown = reference.includes(':') || reference.includes('@') ? reference : `${reference}:latest`;
      throw new CliError(`Unable to find image '${shown}' locally`);
    }
    if (isImageError(error, 'EIMAGE_REFERENCE'))
      throw new CliError(`invalid reference format: "${reference}"`);
    throw imageError(error);
  }
  const name = resolved.reference
    ? familiarString(parseReference(resolved.reference))
    : resolved.id.slice(7, 19);
  return {
    id: resolved.id,
    name,
    lowerdirs: resolved.layers.map((layer) => layer.path).reverse(),
    config: resolved.config.config ?? {},
    resolved,
  };
}
