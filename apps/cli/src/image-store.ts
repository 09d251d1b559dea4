/**
 * The image store as box uses it: ROOT/image (@box/image), with layers unpacked once and
 * whiteouts written the way overlayfs reads them, so every container can stack an image's
 * layer directories directly.
 */
import { join } from 'node:path';
import { engineImageProvider, type ImageStore, isImageError, openImageStore } from '@box/image';
import {
  EngineError,
  type EngineImage,
  isRootless,
  prepareStateRoot,
  sharedDir,
  sharedGroup,
} from '@box/runtime/engine';
import { overlayWhiteoutHooks } from '@box/unionfs';
import { CliError } from './errors.js';

const opened = new Map<string, Promise<ImageStore>>();

/** The image store under box's state root. */
export function imageStore(root: string): Promise<ImageStore> {
  let store = opened.get(root);
  if (!store) {
    // The state root made, or closed again, before anything is stored in it.
    prepareStateRoot(root);
    store = openImageStore({
      root: join(root, 'image'),
      // Rootless: opaque directories marked with user.overlay.opaque, the xattr an overlay mounted
      // in a user namespace (userxattr) reads; trusted.* is host root's alone.
      ...overlayWhiteoutHooks({ userxattr: isRootless() }),
      // Containers in user namespaces mount the layers as their root's host ids (see the engine's
      // state-dir). Rootless: their root is the user, the owner; no group (0700, as sharedDir).
      group: isRootless() ? undefined : sharedGroup(),
    }).then((s) => {
      // Short layer links for overlays with many layers (@box/unionfs's linkLayer), which a
      // --userns container's first process reaches (it mounts from there) as container root.
      sharedDir(join(s.root, 'l'));
      return s;
    });
    opened.set(root, store);
  }
  return store;
}

/** Turns @box/image errors into one line and docker's exit status. */
export function imageError(error: unknown, exitCode = 125): unknown {
  if (isImageError(error)) return new CliError(error.message, exitCode);
  return error;
}

/** An image as the engine takes it; a missing one in docker's words. */
export async function resolveForEngine(root: string, reference: string): Promise<EngineImage> {
  const store = await imageStore(root);
  try {
    return await engineImageProvider(store).resolve(reference);
  } catch (error) {
    if (isImageError(error, 'EIMAGE_NOT_FOUND')) {
      const shown = reference.includes(':') || reference.includes('@') ? reference : `${reference}:latest`;
      throw new EngineError('ENOIMAGE', `Unable to find image '${shown}' locally`);
    }
    if (isImageError(error, 'EIMAGE_REFERENCE'))
      throw new EngineError('EINVAL', `invalid reference format: "${reference}"`);
    throw imageError(error);
  }
}

export { engineImageProvider };
