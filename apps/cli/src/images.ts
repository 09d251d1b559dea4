/**
 * The engine's image provider: @box/image's store under box's state root, with docker's words
 * for a missing image. @box/image is loaded on first use only, so commands that need no image
 * do not pay for it.
 */
import type { ImageProvider } from '@box/runtime';

const load = () => import('./image-store.js');

export function imageProvider(root: string): ImageProvider {
  const provider = async () => {
    const { engineImageProvider, imageStore } = await load();
    return engineImageProvider(await imageStore(root));
  };
  return {
    resolve: async (reference) => (await load()).resolveForEngine(root, reference),
    hold: async (imageId, containerId) => (await provider()).hold(imageId, containerId),
    release: async (containerId) => (await provider()).release(containerId),
    config: async (imageId) => (await provider()).config(imageId),
    async commit(request) {
      try {
        return await (await provider()).commit(request);
      } catch (error) {
        throw (await load()).imageError(error);
      }
    },
  };
}
