/**
 * `box push`: the local image's layer blobs and config (skipped when the registry has them,
 * mounted from another repository of the same registry when the image is known to be there,
 * uploaded otherwise: POST, then a monolithic PUT ?digest=), then the manifest, last, with its
 * media type. The bytes pushed are the store's own, so the registry's digests are the store's.
 */
import { sha256 } from '../digest.js';
import { ImageError } from '../errors.js';
import { documentMediaType } from '../manifest.js';
import { formatReference, parseReference } from '../reference.js';
import type { ImageStore } from '../store.js';
import { repositoryScope } from './auth.js';
import { backoffMs, type RegistryClient, sleep } from './client.js';
import { clientFor, eachLimit, type LayerStatus, type RegistryOptions } from './options.js';
import { isTransient } from './transport.js';

export interface PushResult {
  /** The normalised reference pushed to. */
  reference: string;
  /** The manifest digest (the same as the store's). */
  digest: string;
  /** The manifest's size in bytes. */
  size: number;
}

interface Blob {
  digest: string;
  size: number;
}

/** Repositories of the same registry that the image was pulled from or pushed to (mount sources). */
function mountSources(store: ImageStore, id: string, domain: string, path: string): string[] {
  const sources = new Set<string>();
  const { tags, digests } = store.referencesOf(id);
  for (const key of [...digests, ...tags]) {
    const ref = parseReference(key);
    if (ref.domain === domain && ref.path !== path) sources.add(ref.path);
  }
  return [...sources];
}

async function uploadLocation(
  client: RegistryClient,
  res: { headers: Headers; url: string },
  what: string,
): Promise<string> {
  const location = res.headers.get('location');
  if (!location)
    throw new ImageError(
      'EIMAGE_REGISTRY',
      `the registry started an upload of ${what} without a Location (${res.url})`,
      { url: res.url },
    );
  return client.url(location);
}

async function pushBlob(
  client: RegistryClient,
  store: ImageStore,
  path: string,
  blob: Blob,
  sources: readonly string[],
  emit: (status: LayerStatus, current?: number) => void,
): Promise<void> {
  const scopes = [repositoryScope(path, 'pull,push')];
  const head = await client.request('HEAD', `/v2/${path}/blobs/${blob.digest}`, { scopes });
  await head.discard();
  if (head.status === 200) return emit('exists');
  if (head.status !== 404) throw await client.unexpected(head, `blob ${blob.digest}`);

  let location: string | undefined;
  for (const from of sources) {
    const res = await client.request(
      'POST',
      `/v2/${path}/blobs/uploads/?mount=${encodeURIComponent(blob.digest)}&from=${encodeURIComponent(from)}`,
      { scopes: [...scopes, repositoryScope(from, 'pull')] },
    );
    await res.discard();
    if (res.status === 201) return emit('mounted');
    // 202: the registry could not mount but opened an upload session instead.
    if (res.status === 202) {
      location = await uploadLocation(client, res, blob.digest);
      break;
    }
  }
  emit('pushing', 0);
  for (let attempt = 0; ; attempt++) {
    try {
      if (location === undefined) {
        const started = await client.request('POST', `/v2/${path}/blobs/uploads/`, { scopes });
        await started.discard();
        if (started.status !== 202)
          throw await client.unexpected(started, `starting the upload of ${blob.digest}`);
        location = await uploadLocation(client, started, blob.digest);
      }
      const url = new URL(location);
      url.searchParams.set('digest', blob.digest);
      const done = await client.request('PUT', url.toString(), {
        scopes,
        attempts: 1, // a failed upload session starts again from POST
        headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(blob.size) },
        body: () => store.openBlob(blob.digest),
      });
      await done.discard();
      if (done.status !== 201) throw await client.unexpected(done, `uploading blob ${blob.digest}`);
      const stored = done.headers.get('docker-content-digest');
      if (stored !== null && stored !== blob.digest) {
        throw new ImageError('EIMAGE_DIGEST', `the registry stored blob ${blob.digest} as ${stored}`, {
          expected: blob.digest,
          actual: stored,
          url: done.url,
        });
      }
      return emit('pushed', blob.size);
    } catch (error) {
      location = undefined;
      if (!isTransient(error) || attempt >= 3) throw error;
      emit('retrying');
      await sleep(backoffMs(attempt), client.options.signal);
    }
  }
}

/** Pushes the local image `source` (reference or ID) to `target` (default: `source`). */
export async function pushImage(
  store: ImageStore,
  source: string,
  target?: string,
  options: RegistryOptions = {},
): Promise<PushResult> {
  const image = store.resolve(source);
  const destination = target ?? image.reference;
  if (destination === undefined) {
    throw new ImageError(
      'EIMAGE_REFERENCE',
      `push ${source}: an image ID needs a target reference to push to`,
      {
        reference: source,
      },
    );
  }
  const ref = parseReference(destination);
  if (ref.digest !== undefined) {
    throw new ImageError('EIMAGE_REFERENCE', `cannot push to a digest reference "${destination}"`, {
      reference: destination,
    });
  }
  const normalized = formatReference(ref);
  const emit = options.onProgress ?? (() => undefined);
  const manifestBytes = store.readBlob(image.manifestDigest);
  if (sha256(manifestBytes) !== image.manifestDigest) {
    throw new ImageError(
      'EIMAGE_CORRUPT',
      `the stored manifest ${image.manifestDigest} of ${source} does not match its digest`,
      {
        reference: source,
      },
    );
  }
  const client = clientFor(ref.domain, options);
  const sources = mountSources(store, image.id, ref.domain, ref.path);
  const layers = image.manifest.layers.map((l) => ({ digest: l.digest, size: l.size }));
  emit({ type: 'resolved', reference: normalized, digest: image.manifestDigest, layers });
  const unique = [...new Map(layers.map((l) => [l.digest, l])).values()];
  for (const l of unique) emit({ type: 'layer', digest: l.digest, status: 'waiting' });
  await eachLimit(unique, options.concurrency ?? 3, (blob) =>
    pushBlob(client, store, ref.path, blob, sources, (status, current) =>
      emit({
        type: 'layer',
        digest: blob.digest,
        status,
        ...(current !== undefined ? { current, total: blob.size } : {}),
      }),
    ),
  );
  const config = image.manifest.config;
  await pushBlob(
    client,
    store,
    ref.path,
    { digest: config.digest, size: config.size },
    sources,
    () => undefined,
  );

  const res = await client.request('PUT', `/v2/${ref.path}/manifests/${ref.tag}`, {
    scopes: [repositoryScope(ref.path, 'pull,push')],
    headers: { 'Content-Type': documentMediaType(manifestBytes) },
    body: () => manifestBytes,
  });
  await res.discard();
  if (res.status !== 201) throw await client.unexpected(res, `pushing the manifest of ${normalized}`);
  const stored = res.headers.get('docker-content-digest');
  if (stored !== null && stored !== image.manifestDigest) {
    throw new ImageError(
      'EIMAGE_DIGEST',
      `the registry stored the manifest of ${normalized} as ${stored}, not ${image.manifestDigest}`,
      {
        expected: image.manifestDigest,
        actual: stored,
        url: res.url,
      },
    );
  }
  // RepoDigests: the image is now known at name@digest (also a mount source for later pushes).
  await store.write(async (tx) => {
    if (tx.index.images[image.id]) tx.index.digests[`${ref.name}@${image.manifestDigest}`] = image.id;
  });
  emit({ type: 'done', reference: normalized, digest: image.manifestDigest, status: 'pushed' });
  return { reference: normalized, digest: image.manifestDigest, size: manifestBytes.length };
}
