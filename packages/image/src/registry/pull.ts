/**
 * `box pull`: manifest (and platform from an index), config, layers downloaded in parallel into
 * resumable partial files, then one store transaction that moves the blobs in and adds the image.
 * A failed pull leaves the store as it was (partial files stay in its staging area, to resume).
 *
 * Threat model: every manifest, config and blob is verified against its digest before it is used;
 * sizes are bounded (manifest 4 MiB, config 8 MiB, each blob its descriptor's size); file names
 * come from validated digests only.
 */
import { createReadStream, existsSync, renameSync, rmSync } from 'node:fs';
import { sha256 } from '../digest.js';
import { ImageError } from '../errors.js';
import { type Descriptor, parseConfig, parseIndex, parseManifest } from '../manifest.js';
import { formatReference, parseReference } from '../reference.js';
import type { ImageStore, StagedLayer } from '../store.js';
import { repositoryScope } from './auth.js';
import { type DownloadedBlob, downloadBlob } from './blobs.js';
import type { RegistryClient } from './client.js';
import {
  CONFIG_LIMIT,
  choosePlatform,
  fetchManifest,
  formatPlatform,
  MANIFEST_LIMIT,
  parsePlatform,
} from './manifests.js';
import { clientFor, eachLimit, type RegistryOptions } from './options.js';

/** More layers than any real image has (overlayfs stops at ~128 lower dirs anyway). */
const MAX_LAYERS = 256;

export interface PullOptions extends RegistryOptions {
  /** `os/arch[/variant]`; default this host's (`linux/amd64` on x64). */
  platform?: string;
}

export interface PullResult {
  /** The image ID (config digest). */
  id: string;
  /** The normalised reference pulled: `docker.io/library/busybox:latest`. */
  reference: string;
  /** The registry's manifest (or index) digest: what RepoDigests show. */
  digest: string;
  /** True when the image was in the store already and only the manifest was fetched. */
  upToDate: boolean;
}

function tooLarge(what: string, size: number, limit: number): ImageError {
  return new ImageError('EIMAGE_TOO_LARGE', `${what} is ${size} bytes, more than the limit of ${limit}`);
}

async function fetchConfig(
  client: RegistryClient,
  path: string,
  descriptor: Descriptor,
  scopes: readonly string[],
  store: ImageStore,
): Promise<Buffer> {
  if (descriptor.size > CONFIG_LIMIT)
    throw tooLarge(`the image config ${descriptor.digest}`, descriptor.size, CONFIG_LIMIT);
  if (store.hasBlob(descriptor.digest)) return store.readBlob(descriptor.digest);
  const res = await client.request('GET', `/v2/${path}/blobs/${descriptor.digest}`, { scopes });
  if (res.status !== 200) throw await client.unexpected(res, `image config ${descriptor.digest}`);
  const bytes = await res.bytes(descriptor.size, `image config ${descriptor.digest}`);
  const digest = sha256(bytes);
  if (digest !== descriptor.digest || bytes.length !== descriptor.size) {
    throw new ImageError(
      'EIMAGE_DIGEST',
      `image config from ${res.url} has digest ${digest}, expected ${descriptor.digest}`,
      {
        expected: descriptor.digest,
        actual: digest,
        url: res.url,
      },
    );
  }
  return bytes;
}

/** Pulls `reference` into `store`. See the module comment. */
export async function pullImage(
  store: ImageStore,
  reference: string,
  options: PullOptions = {},
): Promise<PullResult> {
  const ref = parseReference(reference);
  const normalized = formatReference(ref);
  const wanted = parsePlatform(options.platform);
  const emit = options.onProgress ?? (() => undefined);
  // Our own signal: the first failed layer stops the others (their partial files are kept).
  const controller = new AbortController();
  const onAbort = () => controller.abort(options.signal?.reason);
  if (options.signal?.aborted) onAbort();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const client = clientFor(ref.domain, { ...options, signal: controller.signal });
    const scopes = [repositoryScope(ref.path, 'pull')];

    const top = await fetchManifest(client, ref.path, ref.digest ?? ref.tag!, scopes, normalized);
    let manifestBytes = top.bytes;
    if (top.isIndex) {
      const index = parseIndex(top.bytes);
      const entry = choosePlatform(index, wanted, normalized);
      if (entry.size > MANIFEST_LIMIT)
        throw tooLarge(`the manifest ${entry.digest}`, entry.size, MANIFEST_LIMIT);
      const child = await fetchManifest(
        client,
        ref.path,
        entry.digest,
        scopes,
        `${normalized} (${formatPlatform(entry.platform)})`,
      );
      if (child.isIndex) {
        throw new ImageError(
          'EIMAGE_CORRUPT',
          `the index of ${normalized} points at another index ${entry.digest}`,
        );
      }
      manifestBytes = child.bytes;
    }
    const { manifest } = parseManifest(manifestBytes);
    if (manifest.layers.length > MAX_LAYERS) {
      throw new ImageError(
        'EIMAGE_TOO_LARGE',
        `${normalized} has ${manifest.layers.length} layers, more than ${MAX_LAYERS}`,
      );
    }
    const references = [
      ...(ref.tag !== undefined ? [`${ref.name}:${ref.tag}`] : []),
      `${ref.name}@${top.digest}`,
    ];
    const id = manifest.config.digest;

    // This manifest digest was pulled into this image before: nothing to fetch. Up to date (as
    // docker says) when the tag pointed at it already; otherwise the tag is moved and the image
    // counts as downloaded for it.
    if (store.hasImage(`${ref.name}@${top.digest}`) && store.resolve(`${ref.name}@${top.digest}`).id === id) {
      const tagged =
        ref.tag === undefined ||
        (store.hasImage(`${ref.name}:${ref.tag}`) && store.resolve(`${ref.name}:${ref.tag}`).id === id);
      if (!tagged) await store.tag(id, `${ref.name}:${ref.tag}`);
      emit({
        type: 'done',
        reference: normalized,
        digest: top.digest,
        status: tagged ? 'up to date' : 'downloaded',
      });
      return { id, reference: normalized, digest: top.digest, upToDate: tagged };
    }

    const configBytes = await fetchConfig(client, ref.path, manifest.config, scopes, store);
    const config = parseConfig(configBytes);
    if (
      options.platform !== undefined &&
      !top.isIndex &&
      (config.os !== wanted.os || config.architecture !== wanted.architecture)
    ) {
      throw new ImageError(
        'EIMAGE_PLATFORM',
        `${normalized} is for ${formatPlatform(config)}, not the requested platform ${formatPlatform(wanted)}; available: ${formatPlatform(config)}`,
        { reference: normalized },
      );
    }
    emit({
      type: 'resolved',
      reference: normalized,
      digest: top.digest,
      layers: manifest.layers.map((l) => ({ digest: l.digest, size: l.size })),
    });

    const unique = [...new Map(manifest.layers.map((l) => [l.digest, l])).values()];
    const missing = unique.filter((l) => {
      if (!store.hasBlob(l.digest)) return true;
      emit({ type: 'layer', digest: l.digest, status: 'exists' });
      return false;
    });
    for (const l of missing) emit({ type: 'layer', digest: l.digest, status: 'waiting' });
    const downloaded: { layer: Descriptor; blob: DownloadedBlob }[] = [];
    // Each layer is unpacked (into the store's staging area, no lock held) as soon as it has
    // arrived, while the others still download; the transaction below only puts them in place.
    const diffIdOf = new Map(manifest.layers.map((l, i) => [l.digest, config.rootfs.diff_ids[i]]));
    const staging: Promise<StagedLayer>[] = [];
    // One unpack at a time, beside the downloads: an unpack is CPU-bound (inflate, two hashes,
    // the tar), and more of them at once measured slower on two CPUs; memory stays bounded too.
    const unpackSlots = limiter(1);
    const staged = new Map<string, StagedLayer>();
    try {
      await eachLimit(missing, options.concurrency ?? 3, async (layer) => {
        try {
          const blob = await downloadBlob(client, ref.path, layer, store.tmpDir, {
            scopes,
            signal: controller.signal,
            onProgress: (status, current, total) =>
              emit({ type: 'layer', digest: layer.digest, status, current, total }),
          });
          downloaded.push({ layer, blob });
          emit({ type: 'layer', digest: layer.digest, status: 'extracting' });
          const unpacking = unpackSlots.run(() =>
            store.stageLayer(createReadStream(blob.path, { highWaterMark: 1 << 20 }), {
              digest: layer.digest,
              // downloadBlob hashed the file as it wrote it (store's own, locked): not again
              verified: true,
              size: layer.size,
              mediaType: layer.mediaType,
              diffID: diffIdOf.get(layer.digest),
            }),
          );
          staging.push(
            unpacking.then((s) => {
              staged.set(layer.digest, s);
              return s;
            }),
          );
          unpacking.catch(() => controller.abort(new Error('unpacking a layer failed')));
        } catch (error) {
          controller.abort(error);
          throw error;
        }
      });
      // Every unpack settled (so that none is left writing), then the first failure.
      const unpacked = await Promise.allSettled(staging);
      const failure = unpacked.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failure) throw failure.reason;
      const id = await store.write(async (tx) => {
        for (const { layer, blob } of downloaded) {
          const target = store.blobPath(layer.digest);
          if (existsSync(target)) rmSync(blob.path, { force: true });
          else {
            renameSync(blob.path, target);
            tx.created.push(target);
          }
        }
        // The store also points name@<its manifest digest> at the image; when that is not the
        // registry's digest (a converted docker manifest, a platform's manifest in an index) it
        // is nothing anyone can pull by: RepoDigests show the registry's digest only, as docker's.
        const keys = new Set(Object.keys(tx.index.digests));
        const added = await store.addImage(tx, { manifestBytes, configBytes, references }, { staged });
        const own = `${ref.name}@${tx.index.images[added]!.manifest}`;
        if (own !== `${ref.name}@${top.digest}` && !keys.has(own)) delete tx.index.digests[own];
        return added;
      });
      for (const { layer } of downloaded) emit({ type: 'layer', digest: layer.digest, status: 'complete' });
      emit({ type: 'done', reference: normalized, digest: top.digest, status: 'downloaded' });
      return { id, reference: normalized, digest: top.digest, upToDate: false };
    } finally {
      await Promise.allSettled(staging);
      for (const layer of staged.values()) layer.dispose();
      for (const { blob } of downloaded) blob.release();
    }
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
  }
}

/** Runs at most `slots` of the functions given to `run` at once, the others in turn. */
function limiter(slots: number): { run<T>(fn: () => Promise<T>): Promise<T> } {
  let free = slots;
  const waiting: (() => void)[] = [];
  return {
    async run(fn) {
      if (free === 0) await new Promise<void>((resolve) => waiting.push(resolve));
      else free--;
      try {
        return await fn();
      } finally {
        const next = waiting.shift();
        if (next) next();
        else free++;
      }
    },
  };
}
