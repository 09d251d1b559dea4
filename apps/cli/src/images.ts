/**
 * The engine's image provider: @box/image's store under box's state root. @box/image is loaded
 * on first use only, so commands that need no image do not pay for it.
 */
import type { ImageProvider } from '@box/runtime';

const load = () => import('./image-store.js');

/** The engine's images: @box/image's store under `root`. */
export function imageProvider(root: string): ImageProvider {
  const store = async () => (await load()).imageStore(root);
  return {
    async resolve(reference) {
      return (await load()).resolveForEngine(root, reference);
    },
    async hold(imageId, containerId) {
      await (await store()).retain(imageId, containerId);
    },
    async release(containerId) {
      await (await store()).releaseHolder(containerId);
    },
    async config(imageId) {
      return (await store()).resolve(imageId).config.config ?? {};
    },
    async commit(request) {
      try {
        return await (await store()).createImage(request);
      } catch (error) {
        throw (await load()).imageError(error);
      }
    },
  };
}
