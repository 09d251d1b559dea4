import { ImageError } from './errors.js';
import { isDigest } from './reference.js';
import { compressionOfMediaType } from './unpack.js';

export const MediaType = {
  OCI_MANIFEST: 'application/vnd.oci.image.manifest.v1+json',
  OCI_INDEX: 'application/vnd.oci.image.index.v1+json',
  OCI_CONFIG: 'application/vnd.oci.image.config.v1+json',
  OCI_LAYER: 'application/vnd.oci.image.layer.v1.tar',
  OCI_LAYER_GZIP: 'application/vnd.oci.image.layer.v1.tar+gzip',
  OCI_LAYER_ZSTD: 'application/vnd.oci.image.layer.v1.tar+zstd',
  DOCKER_MANIFEST: 'application/vnd.docker.distribution.manifest.v2+json',
  DOCKER_MANIFEST_LIST: 'application/vnd.docker.distribution.manifest.list.v2+json',
  DOCKER_CONFIG: 'application/vnd.docker.container.image.v1+json',
  DOCKER_LAYER: 'application/vnd.docker.image.rootfs.diff.tar',
  DOCKER_LAYER_GZIP: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
} as const;

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: { os?: string; architecture?: string; variant?: string };
}

export interface Manifest {
  schemaVersion: 2;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

export interface ImageIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

/** The runtime part of an image config (docker's capitalised keys). */
export interface ContainerConfig {
  User?: string;
  ExposedPorts?: Record<string, object>;
  Env?: string[];
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  Volumes?: Record<string, object>;
  WorkingDir?: string;
  Labels?: Record<string, string>;
  StopSignal?: string;
  [key: string]: unknown;
}

export interface HistoryEntry {
  created?: string;
  created_by?: string;
  author?: string;
  comment?: string;
  empty_layer?: boolean;
}

export interface ImageConfig {
  created?: string;
  author?: string;
  architecture: string;
  os: string;
  variant?: string;
  config?: ContainerConfig;
  rootfs: { type: 'layers'; diff_ids: string[] };
  history?: HistoryEntry[];
  [key: string]: unknown;
}

const LAYER_FROM_DOCKER: Record<string, string> = {
  [MediaType.DOCKER_LAYER]: MediaType.OCI_LAYER,
  [MediaType.DOCKER_LAYER_GZIP]: MediaType.OCI_LAYER_GZIP,
};

function corrupt(what: string, why: string): ImageError {
  return new ImageError('EIMAGE_CORRUPT', `${what} is not valid: ${why}`);
}

function parseJson(bytes: Uint8Array | string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(typeof bytes === 'string' ? bytes : Buffer.from(bytes).toString('utf8'));
  } catch (error) {
    throw new ImageError('EIMAGE_CORRUPT', `${what} is not valid JSON`, { cause: error });
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw corrupt(what, 'not a JSON object');
  return value as Record<string, unknown>;
}

function checkDescriptor(value: unknown, what: string): Descriptor {
  const d = value as Partial<Descriptor> | null;
  if (!d || typeof d !== 'object') throw corrupt(what, 'missing descriptor');
  if (typeof d.mediaType !== 'string') throw corrupt(what, 'descriptor without mediaType');
  if (typeof d.digest !== 'string' || !isDigest(d.digest))
    throw corrupt(what, `bad digest "${String(d.digest)}"`);
  if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0)
    throw corrupt(what, 'bad size');
  return d as Descriptor;
}

/** The media type of a manifest or index document, from its field or its shape. */
export function documentMediaType(bytes: Uint8Array | string): string {
  const doc = parseJson(bytes, 'manifest');
  if (typeof doc.mediaType === 'string') return doc.mediaType;
  if (Array.isArray(doc.manifests)) return MediaType.OCI_INDEX;
  return MediaType.OCI_MANIFEST;
}

/** Parses an image index (OCI or docker manifest list). */
export function parseIndex(bytes: Uint8Array | string): ImageIndex {
  const doc = parseJson(bytes, 'image index');
  if (doc.schemaVersion !== 2) throw corrupt('image index', 'schemaVersion is not 2');
  if (!Array.isArray(doc.manifests)) throw corrupt('image index', 'no manifests');
  for (const [i, m] of doc.manifests.entries()) checkDescriptor(m, `image index manifest ${i}`);
  return doc as unknown as ImageIndex;
}

/**
 * Parses an OCI or docker schema2 image manifest and returns it in OCI form (docker media types
 * turned into OCI ones) plus whether that differs from the input (if not, keep the input's bytes). Unknown media types → `EIMAGE_MEDIATYPE`.
 */
export function parseManifest(bytes: Uint8Array | string): { manifest: Manifest; converted: boolean } {
  const doc = parseJson(bytes, 'manifest');
  if (doc.schemaVersion !== 2) throw corrupt('manifest', 'schemaVersion is not 2');
  const mediaType = (doc.mediaType as string | undefined) ?? MediaType.OCI_MANIFEST;
  if (mediaType !== MediaType.OCI_MANIFEST && mediaType !== MediaType.DOCKER_MANIFEST) {
    throw new ImageError('EIMAGE_MEDIATYPE', `unsupported manifest media type "${mediaType}"`);
  }
  const config = checkDescriptor(doc.config, 'manifest config');
  if (config.mediaType !== MediaType.OCI_CONFIG && config.mediaType !== MediaType.DOCKER_CONFIG) {
    throw new ImageError('EIMAGE_MEDIATYPE', `unsupported image config media type "${config.mediaType}"`);
  }
  if (!Array.isArray(doc.layers)) throw corrupt('manifest', 'no layers');
  let converted = mediaType !== MediaType.OCI_MANIFEST || config.mediaType !== MediaType.OCI_CONFIG;
  const layers = doc.layers.map((l, i) => {
    const layer = checkDescriptor(l, `manifest layer ${i}`);
    const oci = LAYER_FROM_DOCKER[layer.mediaType];
    if (oci !== undefined) {
      converted = true;
      return { ...layer, mediaType: oci };
    }
    compressionOfMediaType(layer.mediaType);
    return layer;
  });
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MediaType.OCI_MANIFEST,
    config: { ...config, mediaType: MediaType.OCI_CONFIG },
    layers,
  };
  if (doc.annotations && typeof doc.annotations === 'object') {
    manifest.annotations = doc.annotations as Record<string, string>;
  }
  return { manifest, converted };
}

/** Parses and checks an image config. */
export function parseConfig(bytes: Uint8Array | string): ImageConfig {
  const doc = parseJson(bytes, 'image config');
  const rootfs = doc.rootfs as { type?: unknown; diff_ids?: unknown } | undefined;
  if (rootfs?.type !== 'layers' || !Array.isArray(rootfs.diff_ids)) {
    throw corrupt('image config', 'rootfs.diff_ids is missing');
  }
  for (const id of rootfs.diff_ids) {
    if (typeof id !== 'string' || !isDigest(id)) throw corrupt('image config', `bad diffID "${String(id)}"`);
  }
  if (typeof doc.architecture !== 'string' || typeof doc.os !== 'string') {
    throw corrupt('image config', 'architecture or os is missing');
  }
  return doc as unknown as ImageConfig;
}

/** The OCI architecture name of this machine. */
export function hostArchitecture(): string {
  const map: Record<string, string> = {
    x64: 'amd64',
    arm64: 'arm64',
    arm: 'arm',
    ia32: '386',
    s390x: 's390x',
    ppc64: 'ppc64le',
  };
  return map[process.arch] ?? process.arch;
}

/** Picks the manifest for linux/<this architecture> from an index (or the only one). */
export function selectPlatform(index: ImageIndex, architecture = hostArchitecture()): Descriptor | undefined {
  const candidates = index.manifests.filter(
    (m) =>
      m.mediaType !== 'application/vnd.oci.image.layer.v1.tar' &&
      !m.annotations?.['vnd.docker.reference.type'],
  );
  return (
    candidates.find((m) => m.platform?.os === 'linux' && m.platform.architecture === architecture) ??
    (candidates.length === 1 ? candidates[0] : candidates.find((m) => m.platform === undefined))
  );
}
