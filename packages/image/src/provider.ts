/**
 * The image store as a container engine's image provider (`createEngine({ images })` of
 * @box/runtime): resolve a reference to layer directories and config, hold an image while a
 * container uses it, commit a container's changes as a new image. Typed structurally, so this
 * package does not depend on the engine.
 */
import type { Readable } from 'node:stream';
import type { ContainerConfig } from './manifest.js';
import { familiarString, parseReference } from './reference.js';
import type { ImageStore } from './store.js';

export interface ProvidedImage {
  id: string;
  /** As the user sees it: `busybox:latest`, or the short ID of an untagged image. */
  name: string;
  /** Unpacked layer directories, top first (overlayfs's lowerdir order). */
  layers: string[];
  layersRoot: string;
  config: ContainerConfig;
}

export interface ImageProviderOf {
  resolve(reference: string): Promise<ProvidedImage>;
  hold(imageId: string, containerId: string, options?: { durable?: boolean }): Promise<void>;
  release(containerId: string, options?: { durable?: boolean }): Promise<void>;
  config(imageId: string): Promise<ContainerConfig>;
  commit(request: {
    layer: Readable;
    parent: string;
    reference?: string;
    config: ContainerConfig;
    comment?: string;
    author?: string;
    createdBy: string;
  }): Promise<string>;
}

/**
 * An engine's image provider over `store`. Open the store with overlayfs whiteouts
 * (`overlayWhiteoutHooks()` of @box/unionfs) so that containers stack the layers directly.
 */
export function engineImageProvider(store: ImageStore): ImageProviderOf {
  return {
    async resolve(reference) {
      const resolved = store.resolve(reference);
      return {
        id: resolved.id,
        name: resolved.reference
          ? familiarString(parseReference(resolved.reference))
          : resolved.id.slice(7, 19),
        layers: resolved.layers.map((layer) => layer.path).reverse(),
        layersRoot: store.root,
        config: resolved.config.config ?? {},
      };
    },
    async hold(imageId, containerId, options) {
      await store.retain(imageId, containerId, options);
    },
    async release(containerId, options) {
      await store.releaseHolder(containerId, options);
    },
    async config(imageId) {
      return store.resolve(imageId).config.config ?? {};
    },
    commit: (request) => store.createImage(request),
  };
}
