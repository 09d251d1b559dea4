/**
 * Manifests from a registry: fetched with an Accept header listing docker schema2 and OCI
 * manifests and indexes, bounded in size, and verified against the digest they were asked by (or
 * the registry's `Docker-Content-Digest`) before anything of them is used. From an index the
 * manifest of one platform is picked.
 */
import { sha256 } from '../digest.js';
import { ImageError } from '../errors.js';
import {
  type Descriptor,
  documentMediaType,
  hostArchitecture,
  type ImageIndex,
  MediaType,
} from '../manifest.js';
import { isDigest } from '../reference.js';
import type { RegistryClient } from './client.js';

/** Manifests and indexes larger than this are refused (docker's and containerd's limit). */
export const MANIFEST_LIMIT = 4 * 1024 * 1024;
/** Image configs larger than this are refused. */
export const CONFIG_LIMIT = 8 * 1024 * 1024;

export const MANIFEST_ACCEPT = [
  MediaType.OCI_INDEX,
  MediaType.OCI_MANIFEST,
  MediaType.DOCKER_MANIFEST_LIST,
  MediaType.DOCKER_MANIFEST,
].join(', ');

const INDEX_TYPES = new Set<string>([MediaType.OCI_INDEX, MediaType.DOCKER_MANIFEST_LIST]);
const MANIFEST_TYPES = new Set<string>([MediaType.OCI_MANIFEST, MediaType.DOCKER_MANIFEST]);

export interface FetchedManifest {
  bytes: Buffer;
  /** sha256 of `bytes`, checked against what was asked for. */
  digest: string;
  mediaType: string;
  isIndex: boolean;
}

/** GET /v2/<path>/manifests/<tag or digest>, verified. `what` names it in errors (`host/repo:tag`). */
export async function fetchManifest(
  client: RegistryClient,
  path: string,
  tagOrDigest: string,
  scopes: readonly string[],
  what: string,
): Promise<FetchedManifest> {
  const res = await client.request('GET', `/v2/${path}/manifests/${tagOrDigest}`, {
    headers: { Accept: MANIFEST_ACCEPT },
    scopes,
  });
  if (res.status !== 200) {
    if (res.status === 404) {
      const error = await client.unexpected(res, `manifest for ${what}`);
      throw new ImageError(
        'EIMAGE_NOT_FOUND',
        `manifest for ${what} not found: manifest unknown (${res.url})`,
        {
          url: res.url,
          status: 404,
          reference: what,
          cause: error,
        },
      );
    }
    throw await client.unexpected(res, `manifest for ${what}`);
  }
  const bytes = await res.bytes(MANIFEST_LIMIT, `manifest for ${what}`);
  const digest = sha256(bytes);
  if (isDigest(tagOrDigest) && digest !== tagOrDigest) {
    throw new ImageError(
      'EIMAGE_DIGEST',
      `manifest for ${what} has digest ${digest}, expected ${tagOrDigest}`,
      {
        expected: tagOrDigest,
        actual: digest,
        url: res.url,
      },
    );
  }
  const announced = res.headers.get('docker-content-digest');
  if (announced !== null && isDigest(announced) && announced !== digest) {
    throw new ImageError(
      'EIMAGE_DIGEST',
      `manifest for ${what} has digest ${digest}, the registry announced ${announced}`,
      {
        expected: announced,
        actual: digest,
        url: res.url,
      },
    );
  }
  // The document's own mediaType wins over Content-Type (a proxy may rewrite headers, not bytes).
  let mediaType = documentMediaType(bytes);
  const contentType = res.headers.get('content-type')?.split(';')[0]?.trim();
  if (isSchema1(bytes)) {
    throw new ImageError(
      'EIMAGE_MEDIATYPE',
      `manifest for ${what} is a docker schema 1 manifest ("${contentType ?? 'schemaVersion 1'}"), which is not supported: push the image again with a current client`,
      { url: res.url },
    );
  }
  if (!INDEX_TYPES.has(mediaType) && !MANIFEST_TYPES.has(mediaType) && contentType) mediaType = contentType;
  if (!INDEX_TYPES.has(mediaType) && !MANIFEST_TYPES.has(mediaType)) {
    throw new ImageError(
      'EIMAGE_MEDIATYPE',
      `manifest for ${what} has unsupported media type "${mediaType}"`,
      {
        url: res.url,
      },
    );
  }
  return { bytes, digest, mediaType, isIndex: INDEX_TYPES.has(mediaType) };
}

/** docker's schema 1 (`schemaVersion: 1`, signed `fsLayers`), which docker itself no longer pulls. */
function isSchema1(bytes: Buffer): boolean {
  try {
    return (JSON.parse(bytes.toString('utf8')) as { schemaVersion?: unknown }).schemaVersion === 1;
  } catch {
    return false; // documentMediaType has refused what is not JSON
  }
}

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

/** `linux/arm64/v8` → platform; undefined → this host's (`linux/amd64` on x64). */
export function parsePlatform(value: string | undefined): Platform {
  if (value === undefined || value === '') return { os: 'linux', architecture: hostArchitecture() };
  const parts = value.toLowerCase().split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => !/^[a-z0-9_.-]+$/.test(p))) {
    throw new ImageError('EIMAGE_PLATFORM', `"${value}" is not a platform (os/arch[/variant])`);
  }
  const arch = normalizeArch(parts[1]!);
  return { os: parts[0]!, architecture: arch, ...(parts[2] ? { variant: parts[2] } : {}) };
}

function normalizeArch(arch: string): string {
  return (
    (
      { x86_64: 'amd64', 'x86-64': 'amd64', aarch64: 'arm64', armhf: 'arm', armel: 'arm' } as Record<
        string,
        string
      >
    )[arch] ?? arch
  );
}

export function formatPlatform(
  p: { os?: string; architecture?: string; variant?: string } | undefined,
): string {
  if (!p) return 'unknown';
  return [p.os ?? 'unknown', p.architecture ?? 'unknown', ...(p.variant ? [p.variant] : [])].join('/');
}

/** arm64's missing variant counts as v8. */
function variantOf(p: { architecture?: string; variant?: string } | undefined): string | undefined {
  return p?.variant ?? (normalizeArch(p?.architecture ?? '') === 'arm64' ? 'v8' : undefined);
}

/**
 * Whether an image of platform `actual` (its config's os, architecture and variant) is one of
 * `wanted`: the same os and architecture (x86_64 is amd64, aarch64 arm64), and the variant when
 * one is asked for.
 */
export function platformMatches(
  actual: { os?: string; architecture?: string; variant?: string },
  wanted: Platform,
): boolean {
  return (
    actual.os === wanted.os &&
    normalizeArch(actual.architecture ?? '') === wanted.architecture &&
    (wanted.variant === undefined || variantOf(actual) === wanted.variant)
  );
}

/**
 * The index entry for `wanted`. A variant asked for must match (arm64's missing variant counts as
 * v8); without one, an entry without variant is preferred. Attestation manifests are never picked.
 */
export function choosePlatform(index: ImageIndex, wanted: Platform, what: string): Descriptor {
  const images = index.manifests.filter(
    (m) =>
      MANIFEST_TYPES.has(m.mediaType) &&
      !m.annotations?.['vnd.docker.reference.type'] &&
      m.platform?.os !== 'unknown',
  );
  const matches = images.filter((m) => m.platform !== undefined && platformMatches(m.platform, wanted));
  const found = matches.find((m) => m.platform?.variant === undefined) ?? matches[0];
  if (!found) {
    const available = images.map((m) => formatPlatform(m.platform));
    throw new ImageError(
      'EIMAGE_PLATFORM',
      `no manifest for platform ${formatPlatform(wanted)} in ${what}; available: ${available.length ? available.join(', ') : 'none'}`,
      { reference: what },
    );
  }
  return found;
}
