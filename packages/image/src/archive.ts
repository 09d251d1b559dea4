/**
 * Image archives: `box import` (a filesystem tar as a one-layer image), `box load` (docker-archive,
 * OCI image layout as a directory or a tar) and `box save` (docker-archive, oci-archive, oci-dir).
 *
 * An uncompressed archive tar is read in place (indexed, then each member read as a range of it:
 * archive-files.ts); a compressed one is unpacked into the store's staging directory with the same
 * hostile-tar rules as layers (no ownership, no devices) and its blobs are linked into the store.
 * Uncompressed layers are unpacked with a tar-split and kept as their files only; every blob is
 * hashed on the way. Everything streams: no layer is ever held in memory.
 */
import { createHash } from 'node:crypto';
import {
  closeSync,
  constants,
  copyFileSync,
  createReadStream,
  createWriteStream,
  existsSync,
  fstatSync,
  linkSync,
  mkdirSync,
  openSync,
  readSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join, posix } from 'node:path';
import { PassThrough, type Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { O_PATH } from '@box/sys';
import { Decompress as ZstdDecompress } from 'fzstd';
import { pack as tarPack } from 'tar-stream';
import { type ArchiveFiles, directoryFiles, indexTarFiles, type Member } from './archive-files.js';
import { digestHex, sha256 } from './digest.js';
import { errnoOf, ImageError, isImageError } from './errors.js';
import {
  type ContainerConfig,
  type Descriptor,
  documentMediaType,
  type ImageIndex,
  type Manifest,
  MediaType,
  parseIndex,
  parseManifest,
  selectPlatform,
} from './manifest.js';
import { familiarName, familiarString, formatReference, isTag, parseReference } from './reference.js';
import { CONFIG_LIMIT, MANIFEST_LIMIT } from './registry/manifests.js';
import type { ImageStore, StagedLayer, Transaction } from './store.js';
import { type Compression, compressionOfMediaType, detectCompression, unpackLayer } from './unpack.js';

export interface ImportOptions {
  /** Config values for the new image (Cmd, Entrypoint, Env, WorkingDir, User…); Env defaults to PATH. */
  config?: ContainerConfig;
  comment?: string;
  author?: string;
}

/**
 * `box import`: stores a filesystem tar (plain, gzip or zstd) as a single-layer image and tags it
 * `reference` (when given). Returns the image ID.
 */
export async function importRootfsTar(
  store: ImageStore,
  source: Readable | AsyncIterable<Uint8Array>,
  reference?: string,
  options: ImportOptions = {},
): Promise<string> {
  return store.createImage({ layer: source, reference, ...options, createdBy: 'box import' });
}

export interface LoadOptions {
  /** Repository for OCI layouts whose `org.opencontainers.image.ref.name` is a bare tag (as umoci writes). */
  repository?: string;
}

export interface LoadedImage {
  id: string;
  /** Full references now pointing at the image (empty when the archive named none). */
  references: string[];
}

function corrupt(message: string, path?: string, cause?: unknown): ImageError {
  return new ImageError('EIMAGE_CORRUPT', message, { path, cause });
}

/**
 * A document of the archive (an index, a manifest, a config), read whole into memory: within the
 * limits a pull sets, or an archive of a few KB (a sparse member declaring gigabytes) would make
 * box allocate what it declares.
 */
function readDocument(member: Member, limit: number, what: string): Buffer {
  checkSize(member, limit, what);
  return member.read();
}

function checkSize(member: Member, limit: number, what: string): void {
  if (member.size > limit)
    throw new ImageError(
      'EIMAGE_TOO_LARGE',
      `${what} (${member.name}) is ${member.size} bytes, more than the limit of ${limit}`,
    );
}

function readJson<T>(member: Member | undefined, what: string): T {
  if (member === undefined) throw corrupt(`the archive has no ${what}`);
  checkSize(member, MANIFEST_LIMIT, what);
  let text: string;
  try {
    text = member.read().toString('utf8');
  } catch (error) {
    throw corrupt(`the archive has no readable ${what}`, member.name, error);
  }
  try {
    return JSON.parse(text) as T;
  } catch (error) {
    throw corrupt(`the archive's ${what} is not valid JSON`, member.name, error);
  }
}

/** A member the archive must have. */
function need(files: ArchiveFiles, name: string): Member {
  const member = files.find(name);
  if (!member) throw corrupt(`the archive has no blob file ${name}`, name);
  return member;
}

/**
 * Runs a store step on a member's bytes, naming the member in what it refuses: the store's own
 * errors ("blob has digest …", "layer is corrupt or truncated: …") name no file of the archive.
 */
async function naming<T>(member: Member, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (error) {
    if (!isImageError(error) || error.code === 'EIMAGE_IO' || error.message.includes(member.name))
      throw error;
    throw new ImageError(error.code, `${member.name}: ${error.message}`, {
      path: member.name,
      expected: error.expected,
      actual: error.actual,
      cause: error,
    });
  }
}

/**
 * Stores a member as a blob, hashing it: linked when it is a file of the store's own staging,
 * copied otherwise (a user's directory, a range of an archive tar).
 */
async function ingestFile(
  tx: Transaction,
  member: Member,
  expected: string | undefined,
  fromStaging: boolean,
): Promise<{ digest: string; size: number }> {
  if (expected !== undefined && tx.store.blobSize(expected) === member.size) {
    return { digest: expected, size: member.size };
  }
  const path = member.path;
  if (!fromStaging || path === undefined)
    return naming(member, () => tx.store.addBlob(tx, member.stream(), expected));
  const hash = await hashFile(path);
  if (expected !== undefined && hash !== expected) {
    throw new ImageError('EIMAGE_DIGEST', `blob ${basename(path)} has digest ${hash}, expected ${expected}`, {
      expected,
      actual: hash,
      path,
    });
  }
  const target = tx.store.blobPath(hash);
  if (!existsSync(target)) {
    // Linked, not renamed: another image of the archive may name the same file (two tags of one
    // image, docker's layer.tar links). The staging directory goes when the load ends.
    linkSync(path, target);
    tx.created.push(target);
  }
  return { digest: hash, size: member.size };
}

async function hashFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return `sha256:${hash.digest('hex')}`;
}

function detectFile(member: Member): string {
  const compression = detectCompression(member.head(6));
  return compression === 'gzip'
    ? MediaType.OCI_LAYER_GZIP
    : compression === 'zstd'
      ? MediaType.OCI_LAYER_ZSTD
      : MediaType.OCI_LAYER;
}

/**
 * `box load`: reads a docker-archive (`manifest.json`) or an OCI image layout (`oci-layout`,
 * `index.json`, `blobs/`), as a directory or a tar, verifies every blob and stores the images with
 * the names the archive gives them. Nothing is stored when anything fails.
 */
export async function loadArchive(
  store: ImageStore,
  path: string,
  options: LoadOptions = {},
): Promise<LoadedImage[]> {
  // The path the user gave, through its symlinks (`box load -i ./current -> layouts/v2`), as any
  // tool opens the file it is told to; inside the archive no link is followed out of it. Opened
  // once: what it is (a directory or a tar), and every read of it, are of that one open file, even
  // if whoever controls the path swaps it meanwhile.
  const fd = openArchive(path);
  try {
    return await store.write((tx) => loadOpenArchive(tx, fd, path, options));
  } finally {
    closeSync(fd);
  }
}

/**
 * The archive at `path`, open for reading: a regular file or a directory. What the path names is
 * looked at first through an O_PATH fd, which opens nothing: opening a device or a FIFO for reading
 * can act on it (a watchdog, a tape) or wait for a writer. The file is then opened again through
 * that fd, so it is the very file looked at.
 */
function openArchive(path: string): number {
  let pathFd: number;
  try {
    pathFd = openSync(path, O_PATH);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT')
      throw new ImageError('EIMAGE_NOT_FOUND', `no such archive: ${path}`, { path });
    throw cannotOpen(path, error);
  }
  try {
    const st = fstatSync(pathFd);
    if (!st.isFile() && !st.isDirectory())
      throw corrupt(`${path} is neither an archive file nor an OCI layout directory`, path);
    return openSync(`/proc/self/fd/${pathFd}`, constants.O_RDONLY | constants.O_NOCTTY);
  } catch (error) {
    throw error instanceof ImageError ? error : cannotOpen(path, error);
  } finally {
    closeSync(pathFd);
  }
}

function cannotOpen(path: string, error: unknown): ImageError {
  return new ImageError('EIMAGE_IO', `cannot open archive ${path}: ${(error as Error).message}`, {
    path,
    cause: error,
  });
}

async function loadOpenArchive(
  tx: Transaction,
  fd: number,
  path: string,
  options: LoadOptions,
): Promise<LoadedImage[]> {
  const { store } = tx;
  let stagingFd: number | undefined;
  let staging: string | undefined;
  try {
    let files: ArchiveFiles;
    let fromStaging = false;
    if (fstatSync(fd).isDirectory()) files = directoryFiles(fd, path);
    else if (archiveCompression(fd) === 'none')
      files = await readArchive(path, () => indexTarFiles(fd, path));
    else {
      staging = store.tempPath('archive');
      const dir = staging;
      await readArchive(path, () =>
        unpackLayer(createReadStream('', { fd, autoClose: false, start: 0, highWaterMark: 1 << 20 }), dir, {
          chown: false,
          devices: false,
          onWhiteout: () => {
            throw corrupt('the archive contains a whiteout entry', path);
          },
          onOpaque: () => {
            throw corrupt('the archive contains a whiteout entry', path);
          },
        }),
      );
      stagingFd = openSync(staging, constants.O_RDONLY | constants.O_DIRECTORY);
      files = directoryFiles(stagingFd, staging);
      fromStaging = true;
    }
    if (files.find('oci-layout') && files.find('index.json')) {
      return await loadOciLayout(tx, files, fromStaging, options);
    }
    if (files.find('manifest.json')) return await loadDockerArchive(tx, files, fromStaging);
    throw corrupt(
      `${path} is neither a docker-archive (manifest.json) nor an OCI image layout (oci-layout, index.json)`,
      path,
    );
  } finally {
    if (stagingFd !== undefined) closeSync(stagingFd);
    if (staging !== undefined) rmSync(staging, { recursive: true, force: true });
  }
}

/** The compression of an archive file, from its first bytes. */
function archiveCompression(fd: number): Compression {
  const head = Buffer.alloc(6);
  readSync(fd, head, 0, 6, 0);
  return detectCompression(head);
}

/** Runs `read` on an archive, naming the archive in what it refuses. */
async function readArchive<T>(path: string, read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (error) {
    if (isImageError(error) && error.code !== 'EIMAGE_IO') {
      throw new ImageError(error.code, `cannot read archive ${path}: ${error.message}`, {
        path,
        cause: error,
      });
    }
    if (!isImageError(error))
      throw new ImageError('EIMAGE_CORRUPT', `cannot read archive ${path}: ${(error as Error).message}`, {
        path,
        cause: error,
      });
    throw error;
  }
}

/**
 * The blob a descriptor names, which must be the size the descriptor says: its digest is checked
 * only once it is read, and a file that declares more (a sparse one costs its owner no disk) would
 * be read, and written to the store, to its end first.
 */
function ociBlob(files: ArchiveFiles, descriptor: { digest: string; size?: number }): Member {
  const member = need(files, `blobs/sha256/${digestHex(descriptor.digest)}`);
  if (typeof descriptor.size === 'number' && member.size !== descriptor.size)
    throw corrupt(
      `blob ${descriptor.digest} is ${member.size} bytes, its descriptor says ${descriptor.size}`,
      member.name,
    );
  return member;
}

function refFromAnnotations(
  annotations: Record<string, string> | undefined,
  options: LoadOptions,
): string | undefined {
  const full = annotations?.['io.containerd.image.name'];
  if (full) return formatReference(parseReference(full));
  const name = annotations?.['org.opencontainers.image.ref.name'];
  if (!name) return undefined;
  if (!name.includes('/') && !name.includes(':') && isTag(name)) {
    return options.repository === undefined
      ? undefined
      : formatReference(parseReference(`${options.repository}:${name}`));
  }
  return formatReference(parseReference(name));
}

async function loadOciLayout(
  tx: Transaction,
  files: ArchiveFiles,
  fromStaging: boolean,
  options: LoadOptions,
): Promise<LoadedImage[]> {
  const layout = readJson<{ imageLayoutVersion?: string }>(files.find('oci-layout'), 'oci-layout');
  if (typeof layout.imageLayoutVersion !== 'string') throw corrupt('oci-layout has no imageLayoutVersion');
  const index = parseIndex(readDocument(need(files, 'index.json'), MANIFEST_LIMIT, 'the image index'));
  const loaded = new Map<string, LoadedImage>();
  for (const descriptor of index.manifests) {
    const reference = refFromAnnotations(descriptor.annotations, options);
    const id = await loadOciManifest(tx, files, fromStaging, descriptor, 0);
    const entry = loaded.get(id) ?? { id, references: [] };
    if (reference !== undefined) {
      const manifestDigest = tx.index.images[id]!.manifest;
      const ref = parseReference(reference);
      if (ref.tag !== undefined) tx.index.tags[`${ref.name}:${ref.tag}`] = id;
      tx.index.digests[`${ref.name}@${manifestDigest}`] = id;
      entry.references.push(reference);
    }
    loaded.set(id, entry);
  }
  return [...loaded.values()];
}

async function loadOciManifest(
  tx: Transaction,
  files: ArchiveFiles,
  fromStaging: boolean,
  descriptor: Descriptor,
  depth: number,
): Promise<string> {
  if (depth > 4) throw corrupt('image indexes nest too deeply');
  const bytes = readDocument(ociBlob(files, descriptor), MANIFEST_LIMIT, 'a manifest');
  const actual = sha256(bytes);
  if (actual !== descriptor.digest) {
    throw new ImageError('EIMAGE_DIGEST', `manifest has digest ${actual}, expected ${descriptor.digest}`, {
      expected: descriptor.digest,
      actual,
    });
  }
  const type = documentMediaType(bytes);
  if (type === MediaType.OCI_INDEX || type === MediaType.DOCKER_MANIFEST_LIST) {
    const nested: ImageIndex = parseIndex(bytes);
    const chosen = selectPlatform(nested);
    if (!chosen)
      throw new ImageError('EIMAGE_NOT_FOUND', 'the image index has no manifest for this platform');
    return loadOciManifest(tx, files, fromStaging, chosen, depth + 1);
  }
  const { manifest } = parseManifest(bytes);
  const configBytes = readDocument(ociBlob(files, manifest.config), CONFIG_LIMIT, 'an image config');
  const staged = new Map<string, StagedLayer>();
  try {
    for (const layer of manifest.layers) {
      const compression = compressionOfMediaType(layer.mediaType);
      await ingestLayer(tx, ociBlob(files, layer), layer.digest, fromStaging, compression, staged);
    }
    return await tx.store.addImage(tx, { manifestBytes: bytes, configBytes }, { staged });
  } finally {
    for (const layer of staged.values()) layer.dispose();
  }
}

/**
 * A layer file of an archive: an uncompressed one the store does not have is unpacked from the
 * file with a tar-split (into `staged`, for `addImage`), so no blob is kept beside its files;
 * a compressed one is stored as a blob.
 */
async function ingestLayer(
  tx: Transaction,
  member: Member,
  expected: string | undefined,
  fromStaging: boolean,
  compression: Compression,
  staged: Map<string, StagedLayer>,
): Promise<{ digest: string; size: number }> {
  if (compression !== 'none' || (expected !== undefined && tx.store.hasBlob(expected)))
    return ingestFile(tx, member, expected, fromStaging);
  const layer = await naming(member, () =>
    tx.store.stageLayer(member.stream(), {
      size: member.size,
      digest: expected,
      mediaType: MediaType.OCI_LAYER,
    }),
  );
  const known = staged.get(layer.digest);
  if (known) layer.dispose();
  else staged.set(layer.digest, layer);
  return { digest: layer.digest, size: layer.compressedSize };
}

interface DockerManifestEntry {
  Config: string;
  RepoTags?: string[] | null;
  Layers: string[];
}

async function loadDockerArchive(
  tx: Transaction,
  files: ArchiveFiles,
  fromStaging: boolean,
): Promise<LoadedImage[]> {
  const entries = readJson<DockerManifestEntry[]>(files.find('manifest.json'), 'manifest.json');
  if (!Array.isArray(entries)) throw corrupt('manifest.json is not a list');
  const out: LoadedImage[] = [];
  for (const entry of entries) {
    if (typeof entry?.Config !== 'string' || !Array.isArray(entry.Layers)) {
      throw corrupt('a manifest.json entry has no Config or Layers');
    }
    const configBytes = readDocument(need(files, entry.Config), CONFIG_LIMIT, 'an image config');
    const layers: Descriptor[] = [];
    const staged = new Map<string, StagedLayer>();
    try {
      for (const layerPath of entry.Layers) {
        const file = need(files, layerPath);
        const mediaType = detectFile(file);
        const compression = compressionOfMediaType(mediaType);
        const { digest, size } = await ingestLayer(tx, file, undefined, fromStaging, compression, staged);
        layers.push({ mediaType, digest, size });
      }
      const manifest: Manifest = {
        schemaVersion: 2,
        mediaType: MediaType.OCI_MANIFEST,
        config: { mediaType: MediaType.OCI_CONFIG, digest: sha256(configBytes), size: configBytes.length },
        layers,
      };
      const references = (entry.RepoTags ?? []).map((tag) => formatReference(parseReference(tag)));
      const id = await tx.store.addImage(
        tx,
        { manifestBytes: Buffer.from(JSON.stringify(manifest)), configBytes, references },
        { staged },
      );
      out.push({ id, references });
    } finally {
      for (const layer of staged.values()) layer.dispose();
    }
  }
  return out;
}

export type ArchiveFormat = 'docker-archive' | 'oci-archive' | 'oci-dir';

export interface SaveOptions {
  format?: ArchiveFormat;
}

interface SavedImage {
  ref: string;
  image: ReturnType<ImageStore['resolve']>;
  /** Full `name:tag` references to write for it. */
  tags: string[];
}

function collect(store: ImageStore, refs: readonly string[]): SavedImage[] {
  if (refs.length === 0) throw new ImageError('EIMAGE_REFERENCE', 'no image to save was given');
  return refs.map((ref) => {
    const image = store.resolve(ref);
    let tags: string[];
    if (image.reference !== undefined) {
      const parsed = parseReference(image.reference);
      tags = parsed.tag !== undefined ? [`${parsed.name}:${parsed.tag}`] : [];
    } else tags = store.referencesOf(image.id).tags;
    return { ref, image, tags };
  });
}

/** Files of an archive, each a blob of the store or bytes. */
type ArchiveFile =
  | { name: string; blob: string; size: number }
  | { name: string; bytes: Buffer }
  | { name: string; stream: () => Readable; size: number };

function ociFiles(store: ImageStore, images: SavedImage[]): ArchiveFile[] {
  const files: ArchiveFile[] = [{ name: 'oci-layout', bytes: Buffer.from('{"imageLayoutVersion":"1.0.0"}') }];
  const blobs = new Map<string, number>();
  const manifests: Descriptor[] = [];
  for (const { image, tags } of images) {
    const manifestSize = store.readBlob(image.manifestDigest).length;
    blobs.set(image.manifestDigest, manifestSize);
    blobs.set(image.manifest.config.digest, image.manifest.config.size);
    for (const layer of image.manifest.layers) blobs.set(layer.digest, layer.size);
    const base = { mediaType: MediaType.OCI_MANIFEST, digest: image.manifestDigest, size: manifestSize };
    if (tags.length === 0) manifests.push(base);
    for (const tag of tags) {
      const parsed = parseReference(tag);
      manifests.push({
        ...base,
        annotations: {
          'io.containerd.image.name': tag,
          'org.opencontainers.image.ref.name': parsed.tag ?? 'latest',
        },
      });
    }
  }
  const index = { schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests };
  files.push({ name: 'index.json', bytes: Buffer.from(JSON.stringify(index)) });
  for (const [digest, size] of blobs)
    files.push({ name: `blobs/sha256/${digestHex(digest)}`, blob: digest, size });
  return files;
}

function dockerFiles(store: ImageStore, images: SavedImage[]): ArchiveFile[] {
  const files: ArchiveFile[] = [];
  const written = new Set<string>();
  const manifest: DockerManifestEntry[] = [];
  const repositories: Record<string, Record<string, string>> = {};
  for (const { image, tags } of images) {
    const configName = `${digestHex(image.id)}.json`;
    if (!written.has(configName)) {
      files.push({ name: configName, blob: image.id, size: image.manifest.config.size });
      written.add(configName);
    }
    const layers: string[] = [];
    for (const layer of image.layers) {
      const name = `${digestHex(layer.diffID)}/layer.tar`;
      layers.push(name);
      if (written.has(name)) continue;
      written.add(name);
      const compression = compressionOfMediaType(layer.mediaType);
      if (compression === 'none') files.push({ name, blob: layer.digest, size: layer.size });
      else {
        files.push({
          name,
          size: layer.size,
          stream: () => {
            const blob = store.openBlob(layer.digest);
            if (compression === 'gzip') return blob.pipe(createGunzip());
            return zstdStream(blob);
          },
        });
      }
    }
    const repoTags = tags.map((t) => familiarString(parseReference(t)));
    manifest.push({ Config: configName, RepoTags: repoTags, Layers: layers });
    const top = image.layers[image.layers.length - 1];
    for (const tag of tags) {
      const parsed = parseReference(tag);
      const repo = familiarName(parsed);
      repositories[repo] ??= {};
      repositories[repo][parsed.tag ?? 'latest'] = top ? digestHex(top.diffID) : '';
    }
  }
  files.push({ name: 'manifest.json', bytes: Buffer.from(JSON.stringify(manifest)) });
  files.push({ name: 'repositories', bytes: Buffer.from(JSON.stringify(repositories)) });
  return files;
}

function zstdStream(source: Readable): Readable {
  const out = new PassThrough();
  const z = new ZstdDecompress((data) => {
    out.write(Buffer.from(data.buffer, data.byteOffset, data.length));
  });
  source.on('data', (chunk: Buffer) => z.push(chunk));
  source.on('end', () => {
    z.push(new Uint8Array(0), true);
    out.end();
  });
  source.on('error', (error) => out.destroy(error));
  return out;
}

/**
 * `box save > FILE`: writes images as a docker-archive or OCI archive tar to a stream (stdout,
 * a pipe). Nothing is written before every image is found; a failure midway leaves what the
 * stream took, as docker's.
 */
export async function saveArchiveTo(
  store: ImageStore,
  refs: readonly string[],
  destination: Writable,
  options: { format?: 'docker-archive' | 'oci-archive' } = {},
): Promise<void> {
  const images = collect(store, refs);
  const files =
    (options.format ?? 'docker-archive') === 'docker-archive'
      ? dockerFiles(store, images)
      : ociFiles(store, images);
  try {
    await writeTar(store, files, destination);
  } catch (error) {
    if (isImageError(error)) throw error;
    throw new ImageError(
      'EIMAGE_IO',
      `saving to a stream failed (${errnoOf(error) ?? (error as Error).message})`,
      {
        cause: error,
      },
    );
  }
}

/**
 * `box save`: writes images (by reference or ID) as a docker-archive tar, an OCI archive tar or an
 * OCI layout directory. `out` must not exist; it is written next to itself and renamed when complete.
 */
export async function saveArchive(
  store: ImageStore,
  refs: readonly string[],
  out: string,
  options: SaveOptions = {},
): Promise<void> {
  const format = options.format ?? 'docker-archive';
  if (existsSync(out))
    throw new ImageError('EIMAGE_EXISTS', `cannot save to ${out}: it already exists`, { path: out });
  const images = collect(store, refs);
  const files = format === 'docker-archive' ? dockerFiles(store, images) : ociFiles(store, images);
  const temp = join(dirname(out), `.${basename(out)}.saving-${process.pid}-${Date.now()}`);
  try {
    if (format === 'oci-dir') await writeDir(store, files, temp);
    else await writeTar(store, files, temp);
    renameSync(temp, out);
  } catch (error) {
    rmSync(temp, { recursive: true, force: true });
    if (isImageError(error)) throw error;
    throw new ImageError(
      'EIMAGE_IO',
      `saving to ${out} failed (${errnoOf(error) ?? (error as Error).message})`,
      {
        path: out,
        cause: error,
      },
    );
  }
}

async function writeDir(store: ImageStore, files: ArchiveFile[], dir: string): Promise<void> {
  // Closed to others, as a tar is 0600: the layout holds every file of the images.
  mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true, mode: 0o700 });
  for (const file of files) {
    const path = join(dir, file.name);
    if ('bytes' in file) writeFileSync(path, file.bytes);
    else if ('blob' in file && existsSync(store.blobPath(file.blob)))
      copyFileSync(store.blobPath(file.blob), path);
    else await pipeline('blob' in file ? store.openBlob(file.blob) : file.stream(), createWriteStream(path));
  }
}

async function writeTar(
  store: ImageStore,
  files: ArchiveFile[],
  destination: string | Writable,
): Promise<void> {
  const pack = tarPack();
  const output = pipeline(
    pack,
    // 0600 as docker's: the archive holds every file of the image, 0600 ones included.
    typeof destination === 'string'
      ? createWriteStream(destination, { flags: 'wx', mode: 0o600 })
      : destination,
  );
  const mtime = new Date();
  const dirs = new Set<string>();
  const entry = (header: Parameters<typeof pack.entry>[0], body?: Buffer) =>
    new Promise<void>((resolve, reject) => {
      const done = (error?: Error | null) => (error ? reject(error) : resolve());
      if (body) pack.entry(header, body, done);
      else pack.entry(header, done);
    });
  try {
    for (const file of files) {
      const parent = posix.dirname(file.name);
      const parts = parent === '.' ? [] : parent.split('/');
      for (let i = 1; i <= parts.length; i++) {
        const d = parts.slice(0, i).join('/');
        if (dirs.has(d)) continue;
        dirs.add(d);
        await entry({ name: `${d}/`, type: 'directory', mode: 0o755, mtime });
      }
      if ('bytes' in file) {
        await entry({ name: file.name, size: file.bytes.length, mode: 0o644, mtime }, file.bytes);
        continue;
      }
      const stream = 'blob' in file ? store.openBlob(file.blob) : file.stream();
      await new Promise<void>((resolve, reject) => {
        const sink = pack.entry({ name: file.name, size: file.size, mode: 0o644, mtime }, (error) =>
          error ? reject(error) : resolve(),
        );
        // The entry's failure is reported once, through reject: the sink's own 'error' (from
        // the destroy below) must have a listener, or it would end the process.
        sink.on('error', () => {});
        stream.on('error', (error) => {
          sink.destroy(error);
          reject(error);
        });
        stream.pipe(sink as unknown as NodeJS.WritableStream);
      });
    }
    pack.finalize();
    await output;
  } catch (error) {
    pack.destroy(error as Error);
    await output.catch(() => undefined);
    throw error;
  }
}
