/**
 * The image store. Layout under `root` (e.g. `$BOX_ROOT/image`):
 *
 *   blobs/sha256/<hex>        content-addressed manifests, configs and layer blobs (temp + fsync + rename)
 *   layers/<chainID hex>/     one unpacked layer, shared by every image whose chain reaches it:
 *     diff/                   the layer's files (whiteouts as the `onWhiteout`/`onOpaque` hooks made them)
 *     layer.json              chainID, diffID, parent, blob digest, media type, sizes
 *     tar-split.gz            an uncompressed layer's tar without its files' data (tar-split.ts):
 *     tar-split.keep/         imported and committed layers keep no blob, `openBlob` rebuilds it
 *   repositories.json         images (ID → manifest digest, holders), tags and digest references
 *   lock                      flock(2)ed by every writer; readers need no lock (files change by rename)
 *   tmp/                      staging for blobs, layers and archives (same file system, so renames work)
 *
 * Nothing in the store is for other users: unpacked layers hold setuid files, files with
 * capabilities and device nodes of any image, so every directory is closed to others (0700). With
 * `group`, the store root, `layers/` and each layer are root:group 0710 instead, so that processes
 * with that gid (root of containers in user namespaces, which mount the layers as an unprivileged
 * host id) can traverse to `layers/<id>/diff`, and nobody else can. Files are 0600.
 *
 * An image's ID is the digest of its config, as in docker. Everything a write adds is recorded in a
 * transaction and removed again if the write fails, so a failed load or import leaves the store as
 * it was. Garbage collection recomputes what the remaining images reference and deletes the rest.
 */
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  closeSync,
  createReadStream,
  createWriteStream,
  existsSync,
  constants as fsConstants,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  ReadStream,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  type Stats,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { chainIds, DigestStream, digestHex, digestMismatch, sha256 } from './digest.js';
import { errnoOf, ImageError, ioError, isImageError } from './errors.js';
import {
  type ContainerConfig,
  hostArchitecture,
  type ImageConfig,
  type Manifest,
  MediaType,
  parseConfig,
  parseManifest,
} from './manifest.js';
import { familiarString, formatReference, parseReference, type Reference } from './reference.js';
import { rebuildTar } from './tar-split.js';
import {
  detectCompression,
  type OpaqueHook,
  type UnpackOptions,
  unpackLayer,
  type WhiteoutHook,
} from './unpack.js';

export interface ImageStoreOptions {
  /** The store's directory, e.g. `$BOX_ROOT/image`. Created when missing. */
  root: string;
  /**
   * How whiteouts are written into unpacked layers. The default keeps them as OCI marker files
   * (`.wh.<name>`, `.wh..wh..opq`); `@box/unionfs`'s converter turns them into overlayfs ones.
   */
  onWhiteout?: WhiteoutHook;
  onOpaque?: OpaqueHook;
  /** Passed on to `unpackLayer` (defaults: chown and devices when root). */
  unpack?: Pick<UnpackOptions, 'chown' | 'devices' | 'mknod' | 'setXattr'>;
  /** How long a writer waits for the store lock (default 60 s). */
  lockTimeoutMs?: number;
  /**
   * A gid that may traverse (not list) to the unpacked layers: the host gid of root in
   * containers that run in user namespaces and mount the layers themselves. The store root,
   * `layers/` and each layer are then owner:group 0710; without it everything is 0700.
   */
  group?: number;
}

export interface LayerInfo {
  diffID: string;
  chainID: string;
  /** The layer blob's digest and media type as stored. */
  digest: string;
  mediaType: string;
  /** Absolute path of the unpacked layer's files (`layers/<chainID>/diff`). */
  path: string;
  /** Bytes of the uncompressed layer tar. */
  size: number;
}

export interface ResolvedImage {
  /** `sha256:<hex>` of the config. */
  id: string;
  /** The normalised reference that matched, when a reference (not an ID) was given. */
  reference: string | undefined;
  manifestDigest: string;
  manifest: Manifest;
  config: ImageConfig;
  /** Bottom layer first. */
  layers: LayerInfo[];
}

export interface ImageSummary {
  id: string;
  /** Familiar form: `busybox:latest`. */
  repoTags: string[];
  /** Familiar form: `busybox@sha256:…`. */
  repoDigests: string[];
  created: string | undefined;
  /** Sum of the uncompressed layer sizes. */
  size: number;
  /** Holders (containers) that keep the image. */
  holders: string[];
  /** The image config's labels. */
  labels: Record<string, string>;
}

/** `docker image inspect`'s shape (the fields box knows). */
export interface ImageInspect {
  Id: string;
  RepoTags: string[];
  RepoDigests: string[];
  Parent: string;
  Comment: string;
  Created: string | undefined;
  Author: string;
  Architecture: string;
  Variant?: string;
  Os: string;
  Size: number;
  Config: ContainerConfig;
  RootFS: { Type: 'layers'; Layers: string[] };
  Metadata: { LastTagTime: string | undefined };
}

export interface RemoveResult {
  /** References removed (familiar form). */
  untagged: string[];
  /** Image IDs, blobs and layers (chain IDs) deleted. */
  deleted: string[];
}

interface ImageRecord {
  manifest: string;
  holders: string[];
  added: string;
}

interface IndexFile {
  version: 1;
  images: Record<string, ImageRecord>;
  /** `name:tag` → image ID. */
  tags: Record<string, string>;
  /** `name@sha256:…` → image ID. */
  digests: Record<string, string>;
}

interface LayerMeta {
  chainID: string;
  diffID: string;
  parent: string | null;
  digest: string;
  mediaType: string;
  size: number;
  compressedSize: number;
  skipped: number;
  /** The layer has a tar-split: its blob can be rebuilt from it (and need not be kept). */
  split?: boolean;
}

/** A layer unpacked into the store's staging area, not yet in place (see `stageLayer`). */
export interface StagedLayer {
  readonly stage: string;
  readonly digest: string;
  readonly mediaType: string;
  readonly diffID: string;
  readonly size: number;
  readonly compressedSize: number;
  readonly skipped: number;
  /** A tar-split was recorded (the layer came uncompressed). */
  readonly split: boolean;
  /** Removes the staging directory unless it was put in place. */
  dispose(): void;
}

/** What an image to add is made of; the blobs (layers) must already be in the store. */
export interface NewImage {
  /** The manifest's bytes as received (kept when already OCI, converted otherwise). */
  manifestBytes: Buffer;
  configBytes: Buffer;
  /** Full references (`name:tag` or `name@digest`) to point at the image. */
  references?: string[];
}

/** The changes of a transaction, undone when it fails. */
export class Transaction {
  readonly created: string[] = [];
  /**
   * Files and directories to delete once the index is written: what no image references any
   * more. Deleted only then, so that a failure before (or while deleting) never leaves an index
   * naming blobs that are gone; what a failed deletion leaves is unreferenced and goes at the next
   * collection.
   */
  readonly garbage: string[] = [];
  constructor(
    readonly store: ImageStore,
    public index: IndexFile,
  ) {}
}

/**
 * Layers of one image unpacked at once: an unpack keeps a CPU busy (inflate, two hashes, the
 * tar), so one per CPU but one left for the rest; on two CPUs, one (three at once measured
 * slower there).
 */
const UNPACK_CONCURRENCY = Math.max(1, availableParallelism() - 1);

const EMPTY_INDEX: IndexFile = { version: 1, images: {}, tags: {}, digests: {} };
const HEX_ID = /^(?:sha256:)?([a-f0-9]{1,64})$/;
const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

function notFound(ref: string, what = 'image'): ImageError {
  return new ImageError('EIMAGE_NOT_FOUND', `no such ${what}: ${ref}`, { reference: ref });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Opens (creating it when needed) the image store under `options.root`. */
export async function openImageStore(options: ImageStoreOptions): Promise<ImageStore> {
  const store = new ImageStore(options);
  try {
    // Missing parents as mkdir -p makes them: the group must pass through them.
    mkdirSync(dirname(store.root), { recursive: true, mode: 0o755 });
    mkdirSync(store.root, { recursive: true, mode: 0o700 });
    const layers = join(store.root, 'layers');
    mkdirSync(layers, { recursive: true, mode: 0o700 });
    // A store made by an older version (0711, 0644 files) or for another group: close it all.
    const rootLoose = store.closeDir(store.root);
    const loose = store.closeDir(layers) || rootLoose;
    for (const dir of [join(store.root, 'blobs'), join(store.root, 'blobs', 'sha256'), store.tmpDir]) {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      if (loose) chmodSync(dir, 0o700);
    }
    if (loose) {
      for (const hex of readdirSync(layers)) store.closeDir(join(layers, hex));
      const index = join(store.root, 'repositories.json');
      if (existsSync(index)) chmodSync(index, 0o600);
    }
  } catch (error) {
    throw ioError('creating the image store in', store.root, error);
  }
  return store;
}

export class ImageStore {
  readonly root: string;
  readonly tmpDir: string;
  readonly options: ImageStoreOptions;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(options: ImageStoreOptions) {
    this.options = options;
    this.root = options.root;
    this.tmpDir = join(options.root, 'tmp');
  }

  /**
   * Gives a directory of the store (root, `layers/`, a layer) its mode: 0700, or 0710 with
   * `options.group` as its group. Returns true when it had another mode or group.
   */
  closeDir(path: string): boolean {
    const { group } = this.options;
    const stats = lstatSync(path);
    let changed = false;
    if (group !== undefined && stats.gid !== group) {
      chownSync(path, stats.uid, group);
      changed = true;
    }
    const mode = group === undefined ? 0o700 : 0o710;
    if ((stats.mode & 0o7777) !== mode || changed) {
      chmodSync(path, mode);
      changed = true;
    }
    return changed;
  }

  blobPath(digest: string): string {
    return join(this.root, 'blobs', 'sha256', digestHex(digest));
  }

  layerDir(chainID: string): string {
    return join(this.root, 'layers', digestHex(chainID));
  }

  /** The blob is stored, or can be rebuilt from an unpacked layer's tar-split. */
  hasBlob(digest: string): boolean {
    return existsSync(this.blobPath(digest)) || this.#splitLayerOf(digest) !== undefined;
  }

  /** A layer that can rebuild the (uncompressed) blob `digest`, when its blob is not kept. */
  #splitLayerOf(digest: string): LayerMeta | undefined {
    let names: string[];
    try {
      names = readdirSync(join(this.root, 'layers'));
    } catch {
      return undefined;
    }
    for (const hex of names) {
      const meta = this.#layerMeta(`sha256:${hex}`);
      if (meta?.split && meta.digest === digest && meta.chainID === `sha256:${hex}`) return meta;
    }
    return undefined;
  }

  readBlob(digest: string): Buffer {
    try {
      return readFileSync(this.blobPath(digest));
    } catch (error) {
      if (errnoOf(error) === 'ENOENT') throw notFound(digest, 'blob');
      throw ioError('reading blob', digest, error);
    }
  }

  /** A blob's bytes: the stored file, or a layer's tar rebuilt from its files and tar-split. */
  openBlob(digest: string): Readable {
    const path = this.blobPath(digest);
    if (existsSync(path)) return createReadStream(path, { highWaterMark: 1 << 20 });
    const layer = this.#splitLayerOf(digest);
    if (layer === undefined) throw notFound(digest, 'blob');
    // An uncompressed blob is its diffID: the rebuilt bytes are checked against it.
    return rebuildTar(this.layerDir(layer.chainID), layer.diffID);
  }

  /** The size of a stored or rebuildable blob, or undefined when there is none. */
  blobSize(digest: string): number | undefined {
    const st = lstatSync(this.blobPath(digest), { throwIfNoEntry: false });
    if (st) return st.size;
    return this.#splitLayerOf(digest)?.size;
  }

  /** A fresh path in the store's staging directory. */
  tempPath(prefix: string): string {
    return join(this.tmpDir, `${prefix}-${randomBytes(8).toString('hex')}`);
  }

  #readIndex(): IndexFile {
    try {
      const parsed = JSON.parse(readFileSync(join(this.root, 'repositories.json'), 'utf8')) as IndexFile;
      return { ...structuredClone(EMPTY_INDEX), ...parsed };
    } catch (error) {
      if (errnoOf(error) === 'ENOENT') return structuredClone(EMPTY_INDEX);
      throw new ImageError('EIMAGE_CORRUPT', 'the image store index repositories.json is unreadable', {
        path: join(this.root, 'repositories.json'),
        cause: error,
      });
    }
  }

  /**
   * Runs `fn` holding the store lock (an in-process queue plus flock(2) on `lock`, for other
   * processes). The index is written atomically when `fn` succeeds; when it throws, everything it
   * added (`tx.created`) is removed and the index is left alone. `durable: false` skips the
   * fsync of the index's directory (the rename may be lost in a power loss, never the index),
   * for changes nobody needs after one (holds of containers removed when they end).
   */
  async write<T>(fn: (tx: Transaction) => Promise<T>, options: { durable?: boolean } = {}): Promise<T> {
    const run = this.#queue.then(() => this.#locked(fn, options.durable !== false));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #locked<T>(fn: (tx: Transaction) => Promise<T>, durable: boolean): Promise<T> {
    const { tryLock, writeFileAtomic } = await import('@box/sys');
    const lockPath = join(this.root, 'lock');
    const fd = openSync(lockPath, 'a', 0o600);
    try {
      const deadline = Date.now() + (this.options.lockTimeoutMs ?? 60_000);
      while (!tryLock(fd, lockPath)) {
        if (Date.now() > deadline) {
          throw new ImageError('EIMAGE_LOCKED', `the image store ${this.root} is locked by another process`, {
            path: lockPath,
          });
        }
        await sleep(25);
      }
      const before = JSON.stringify(this.#readIndex());
      const tx = new Transaction(this, JSON.parse(before) as IndexFile);
      try {
        const result = await fn(tx);
        const after = JSON.stringify(tx.index, null, 2);
        if (after !== JSON.stringify(JSON.parse(before), null, 2)) {
          writeFileAtomic(join(this.root, 'repositories.json'), `${after}\n`, { syncDir: durable });
        }
        if (tx.garbage.length > 0) {
          // What is left stays unreferenced: the next collection takes it.
          const { removeTree } = await import('@box/sys');
          for (const path of tx.garbage) {
            try {
              // A layer's layer.json first: placeLayer takes a layer directory that has one as
              // whole, and a removal stopped halfway must not leave a truncated layer looking so.
              if (lstatSync(path).isDirectory()) rmSync(join(path, 'layer.json'), { force: true });
              removeTree(path);
            } catch {}
          }
        }
        return result;
      } catch (error) {
        const cleanupErrors: unknown[] = [];
        for (const path of tx.created.reverse()) {
          try {
            rmSync(path, { recursive: true, force: true });
          } catch (cleanupError) {
            cleanupErrors.push(cleanupError);
          }
        }
        if (isImageError(error)) {
          error.cleanupErrors.push(...cleanupErrors);
          throw error;
        }
        throw ioError('writing to the image store in', this.root, error);
      }
    } finally {
      closeSync(fd); // releases the flock
    }
  }

  /**
   * Streams `source` into a blob, hashing as it goes. With `expected`, a mismatch throws
   * `EIMAGE_DIGEST` and nothing is stored. Returns the digest and size.
   */
  async addBlob(
    tx: Transaction,
    source: Readable | AsyncIterable<Uint8Array>,
    expected?: string,
  ): Promise<{ digest: string; size: number }> {
    const temp = this.tempPath('blob');
    const fd = openSync(temp, 'wx', 0o600);
    const hash = new DigestStream();
    try {
      try {
        await pipeline(source, hash, createWriteStream('', { fd, autoClose: false, highWaterMark: 1 << 20 }));
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      hash.verify('blob', expected);
      this.#placeBlob(tx, temp, hash.digest);
      return { digest: hash.digest, size: hash.size };
    } catch (error) {
      rmSync(temp, { force: true });
      if (isImageError(error)) throw error;
      throw new ImageError('EIMAGE_IO', `storing a blob failed: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }

  /** Stores bytes as a blob (manifests, configs). */
  addBlobBytes(tx: Transaction, bytes: Buffer, expected?: string): string {
    const digest = sha256(bytes);
    if (expected !== undefined && digest !== expected) throw digestMismatch('blob', expected, digest);
    if (this.hasBlob(digest)) return digest;
    const temp = this.tempPath('blob');
    const fd = openSync(temp, 'wx', 0o600);
    try {
      let offset = 0;
      while (offset < bytes.length) offset += writeSync(fd, bytes, offset, bytes.length - offset);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    this.#placeBlob(tx, temp, digest);
    return digest;
  }

  #placeBlob(tx: Transaction, temp: string, digest: string): void {
    const path = this.blobPath(digest);
    if (existsSync(path)) {
      rmSync(temp, { force: true });
      return;
    }
    renameSync(temp, path);
    tx.created.push(path);
  }

  #layerMeta(chainID: string): LayerMeta | undefined {
    try {
      return JSON.parse(readFileSync(join(this.layerDir(chainID), 'layer.json'), 'utf8')) as LayerMeta;
    } catch {
      return undefined;
    }
  }

  /**
   * Unpacks a stored layer blob into `layers/<chainID>` unless it is there already, verifying the
   * blob's digest and the diffID. Returns the layer's metadata.
   */
  async ensureLayer(
    tx: Transaction,
    layer: { digest: string; mediaType: string; diffID?: string; parent: string | null },
  ): Promise<LayerMeta> {
    const staged = await this.stageLayer(this.openBlob(layer.digest), layer);
    try {
      return this.placeLayer(tx, staged, layer.parent);
    } finally {
      staged.dispose();
    }
  }

  /**
   * Unpacks a layer into a staging directory of the store, outside any transaction (no lock
   * held: a pull unpacks each layer as soon as it has arrived, while others still download),
   * verifying the blob's digest and, when given, its diffID. `placeLayer` puts it in place;
   * `dispose` removes what was not placed.
   */
  async stageLayer(
    source: Readable | AsyncIterable<Uint8Array>,
    layer: { digest?: string; mediaType?: string; diffID?: string; verified?: boolean; size?: number },
  ): Promise<StagedLayer> {
    const stage = this.tempPath('layer');
    mkdirSync(stage, { mode: 0o700 }); // becomes layers/<chainID>: see the store's layout
    this.closeDir(stage);
    try {
      const { onWhiteout = keepWhiteout, onOpaque = keepOpaque } = this.options;
      const result = await unpackLayer(source, join(stage, 'diff'), {
        ...this.options.unpack,
        mediaType: layer.mediaType,
        expectedDigest: layer.verified ? undefined : layer.digest,
        verifiedDigest: layer.verified ? layer.digest : undefined,
        expectedDiffID: layer.diffID,
        onWhiteout,
        onOpaque,
        split: stage,
        sizeHint: layer.size ?? streamSize(source),
      });
      return {
        stage,
        digest: result.digest,
        mediaType: layer.mediaType ?? mediaTypeOf(result.compression),
        diffID: result.diffID,
        size: result.diffSize,
        compressedSize: result.size,
        skipped: result.skipped.length,
        split: result.split,
        dispose: () => rmSync(stage, { recursive: true, force: true }),
      };
    } catch (error) {
      rmSync(stage, { recursive: true, force: true });
      throw error;
    }
  }

  /**
   * One pass over a new layer's bytes. An uncompressed tar is unpacked with a tar-split and no
   * blob is written (the store would otherwise hold it twice; `openBlob` rebuilds it). A
   * compressed one is stored as a blob and unpacked at once (the source is read once, by both;
   * each waits for the slower one). Either failing stops the other; nothing of it is kept then.
   */
  async #storeAndStage(
    tx: Transaction,
    layer: Readable | AsyncIterable<Uint8Array>,
  ): Promise<{ blob: { digest: string; size: number }; staged: StagedLayer }> {
    const size = streamSize(layer);
    const { head, stream } = await peek(layer, 6);
    if (detectCompression(head) === 'none') {
      const staged = await this.stageLayer(stream, { size });
      return { blob: { digest: staged.digest, size: staged.compressedSize }, staged };
    }
    const input = Readable.from(stream, { objectMode: false });
    const toFile = new PassThrough({ highWaterMark: 1 << 20 });
    const toUnpack = new PassThrough({ highWaterMark: 1 << 20 });
    input.pipe(toFile);
    input.pipe(toUnpack);
    input.once('error', (error) => {
      toFile.destroy(error);
      toUnpack.destroy(error);
    });
    const temp = this.tempPath('blob');
    const fd = openSync(temp, 'wx', 0o600);
    const writing = pipeline(toFile, createWriteStream('', { fd, autoClose: false, highWaterMark: 1 << 20 }));
    const unpacking = this.stageLayer(toUnpack, {});
    // A side that fails stops the source, so the other one does not wait for bytes forever.
    const stop = (error: unknown) => {
      input.unpipe();
      input.destroy(error as Error);
      toFile.destroy(error as Error);
      toUnpack.destroy(error as Error);
    };
    writing.catch(stop);
    unpacking.catch(stop);
    const [wrote, unpacked] = await Promise.allSettled([writing, unpacking]);
    try {
      if (unpacked.status === 'rejected') throw unpacked.reason;
      if (wrote.status === 'rejected')
        throw new ImageError('EIMAGE_IO', `storing a blob failed: ${(wrote.reason as Error).message}`, {
          cause: wrote.reason,
        });
      fsyncSync(fd);
    } catch (error) {
      closeSync(fd);
      rmSync(temp, { force: true });
      if (unpacked.status === 'fulfilled') unpacked.value.dispose();
      throw error;
    }
    closeSync(fd);
    const staged = unpacked.value;
    this.#placeBlob(tx, temp, staged.digest);
    return { blob: { digest: staged.digest, size: staged.compressedSize }, staged };
  }

  /** Puts a staged layer in place as `layers/<chainID>` (unless that layer is there already). */
  placeLayer(tx: Transaction, staged: StagedLayer, parent: string | null): LayerMeta {
    const chainID = parent === null ? staged.diffID : sha256(`${parent} ${staged.diffID}`);
    const existing = this.#layerMeta(chainID);
    if (existing) return existing;
    const meta: LayerMeta = {
      chainID,
      diffID: staged.diffID,
      parent,
      digest: staged.digest,
      mediaType: staged.mediaType,
      size: staged.size,
      compressedSize: staged.compressedSize,
      skipped: staged.skipped,
      ...(staged.split ? { split: true } : {}),
    };
    writeFileSync(join(staged.stage, 'layer.json'), `${JSON.stringify(meta, null, 2)}\n`, { mode: 0o600 });
    const final = this.layerDir(chainID);
    rmSync(final, { recursive: true, force: true }); // an incomplete one, without layer.json
    renameSync(staged.stage, final);
    tx.created.push(final);
    return meta;
  }

  /**
   * Adds an image whose layer blobs are in the store: checks the manifest and config, unpacks the
   * layers not yet unpacked (shared by chain ID), stores manifest and config and points the
   * references at it. Returns the image ID.
   */
  async addImage(
    tx: Transaction,
    image: NewImage,
    options: { staged?: ReadonlyMap<string, StagedLayer> } = {},
  ): Promise<string> {
    const { manifest, converted } = parseManifest(image.manifestBytes);
    const config = parseConfig(image.configBytes);
    const configDigest = sha256(image.configBytes);
    if (configDigest !== manifest.config.digest) {
      throw digestMismatch('image config', manifest.config.digest, configDigest);
    }
    const diffIDs = config.rootfs.diff_ids;
    if (diffIDs.length !== manifest.layers.length) {
      throw new ImageError(
        'EIMAGE_CORRUPT',
        `the manifest lists ${manifest.layers.length} layers but the config ${diffIDs.length} diffIDs`,
      );
    }
    const chains = chainIds(diffIDs);
    const missing = manifest.layers.flatMap((layer, i) =>
      this.#layerMeta(chains[i]!) ? [] : [{ layer, i }],
    );
    for (const { layer } of missing)
      if (!options.staged?.has(layer.digest) && !this.hasBlob(layer.digest))
        throw notFound(layer.digest, 'layer blob');
    const placed = new Set<StagedLayer>();
    // The config names every layer's diffID, so each layer's chain ID is known before any is
    // unpacked: they unpack side by side (each in a staging directory of its own), which keeps
    // the zlib threads and the disk busy while one layer's tar is parsed.
    let next = 0;
    let failed = false;
    const unpackNext = async (): Promise<void> => {
      while (!failed && next < missing.length) {
        const { layer, i } = missing[next++]!;
        const parent = i === 0 ? null : chains[i - 1]!;
        const staged = options.staged?.get(layer.digest);
        // A layer listed twice (on two parents) is placed once; the second unpacks the first's blob.
        if (staged && !placed.has(staged)) {
          placed.add(staged);
          // Unpacked already (by a pull, as it arrived): only checked against the config here.
          if (staged.diffID !== diffIDs[i]) throw digestMismatch('layer diffID', diffIDs[i]!, staged.diffID);
          this.placeLayer(tx, staged, parent);
          continue;
        }
        await this.ensureLayer(tx, {
          digest: layer.digest,
          mediaType: layer.mediaType,
          diffID: diffIDs[i],
          parent: i === 0 ? null : chains[i - 1]!,
        }).catch((error: unknown) => {
          failed = true;
          throw error;
        });
      }
    };
    // Every unpack settled before a failure is reported: the transaction's rollback must see
    // every layer directory they made.
    const settled = await Promise.allSettled(
      Array.from({ length: Math.min(UNPACK_CONCURRENCY, missing.length) }, unpackNext),
    );
    const failure = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failure) throw failure.reason;
    this.addBlobBytes(tx, image.configBytes);
    const manifestBytes = converted ? Buffer.from(JSON.stringify(manifest)) : image.manifestBytes;
    const manifestDigest = this.addBlobBytes(tx, manifestBytes);
    const id = configDigest;
    const previous = tx.index.images[id];
    tx.index.images[id] = {
      manifest: manifestDigest,
      holders: previous?.holders ?? [],
      added: new Date().toISOString(),
    };
    for (const reference of image.references ?? [])
      this.#point(tx, parseReference(reference), id, manifestDigest);
    return id;
  }

  #point(tx: Transaction, ref: Reference, id: string, manifestDigest: string): void {
    if (ref.tag !== undefined) tx.index.tags[`${ref.name}:${ref.tag}`] = id;
    tx.index.digests[`${ref.name}@${ref.digest ?? manifestDigest}`] = id;
  }

  /**
   * Makes a new image of `layer` (a filesystem tar, optionally compressed) on top of `parent`
   * (or alone): `box import`, and `box commit` with the container's diff.
   */
  async createImage(options: {
    layer: Readable | AsyncIterable<Uint8Array>;
    parent?: string;
    reference?: string;
    config?: ContainerConfig;
    comment?: string;
    author?: string;
    createdBy?: string;
  }): Promise<string> {
    const reference =
      options.reference === undefined ? undefined : formatReference(parseReference(options.reference));
    return this.write(async (tx) => {
      const parent = options.parent === undefined ? undefined : this.resolve(options.parent, tx.index);
      const { blob, staged } = await this.#storeAndStage(tx, options.layer);
      const { mediaType } = staged;
      const parentChain = parent?.layers[parent.layers.length - 1]?.chainID ?? null;
      let meta: LayerMeta;
      try {
        meta = this.placeLayer(tx, staged, parentChain);
      } finally {
        staged.dispose();
      }
      const now = new Date().toISOString();
      const base: ContainerConfig = parent?.config.config ?? { Env: [DEFAULT_PATH] };
      const config: ImageConfig = {
        created: now,
        ...(options.author ? { author: options.author } : {}),
        architecture: parent?.config.architecture ?? hostArchitecture(),
        os: 'linux',
        config: { ...base, ...options.config },
        rootfs: { type: 'layers', diff_ids: [...(parent?.config.rootfs.diff_ids ?? []), meta.diffID] },
        history: [
          ...(parent?.config.history ?? []),
          {
            created: now,
            created_by: options.createdBy ?? (parent ? 'box commit' : 'box import'),
            ...(options.comment ? { comment: options.comment } : {}),
          },
        ],
      };
      const configBytes = Buffer.from(JSON.stringify(config));
      const manifest: Manifest = {
        schemaVersion: 2,
        mediaType: MediaType.OCI_MANIFEST,
        config: { mediaType: MediaType.OCI_CONFIG, digest: sha256(configBytes), size: configBytes.length },
        layers: [...(parent?.manifest.layers ?? []), { mediaType, digest: blob.digest, size: blob.size }],
      };
      return this.addImage(tx, {
        manifestBytes: Buffer.from(JSON.stringify(manifest)),
        configBytes,
        references: reference === undefined ? [] : [reference],
      });
    });
  }

  /** The image ID that `ref` (reference, full ID or unique ID prefix) names, or undefined. */
  #find(ref: string, index: IndexFile): { id: string; reference: string | undefined } | undefined {
    const full = /^sha256:[a-f0-9]{64}$/.test(ref) ? ref : undefined;
    if (full !== undefined) return index.images[full] ? { id: full, reference: undefined } : undefined;
    let parsed: Reference | undefined;
    try {
      parsed = parseReference(ref);
    } catch (error) {
      if (!HEX_ID.test(ref)) throw error;
    }
    if (parsed) {
      const key =
        parsed.digest !== undefined ? `${parsed.name}@${parsed.digest}` : `${parsed.name}:${parsed.tag}`;
      const id = parsed.digest !== undefined ? index.digests[key] : index.tags[key];
      if (id !== undefined && index.images[id]) return { id, reference: formatReference(parsed) };
    }
    const hex = HEX_ID.exec(ref)?.[1];
    if (hex !== undefined) {
      const matches = Object.keys(index.images).filter((id) => id.startsWith(`sha256:${hex}`));
      if (matches.length === 1) return { id: matches[0]!, reference: undefined };
      if (matches.length > 1) {
        throw new ImageError('EIMAGE_NOT_FOUND', `image ID prefix ${ref} is ambiguous`, { reference: ref });
      }
    }
    return undefined;
  }

  /** Everything needed to run an image: config, manifest and the unpacked layer dirs, bottom first. */
  resolve(ref: string, index: IndexFile = this.#readIndex()): ResolvedImage {
    const found = this.#find(ref, index);
    if (!found) throw notFound(ref);
    const record = index.images[found.id]!;
    const { manifest } = parseManifest(this.readBlob(record.manifest));
    const config = parseConfig(this.readBlob(manifest.config.digest));
    const chains = chainIds(config.rootfs.diff_ids);
    const layers = chains.map((chainID, i): LayerInfo => {
      const meta = this.#layerMeta(chainID);
      if (!meta) {
        throw new ImageError(
          'EIMAGE_NOT_FOUND',
          `layer ${chainID} of image ${found.id} is missing from the store`,
          {
            reference: ref,
            path: this.layerDir(chainID),
          },
        );
      }
      return {
        diffID: config.rootfs.diff_ids[i]!,
        chainID,
        digest: manifest.layers[i]!.digest,
        mediaType: manifest.layers[i]!.mediaType,
        path: join(this.layerDir(chainID), 'diff'),
        size: meta.size,
      };
    });
    return {
      id: found.id,
      reference: found.reference,
      manifestDigest: record.manifest,
      manifest,
      config,
      layers,
    };
  }

  /** True when `ref` names an image in the store. */
  hasImage(ref: string): boolean {
    return this.#find(ref, this.#readIndex()) !== undefined;
  }

  #refsOf(id: string, index: IndexFile): { tags: string[]; digests: string[] } {
    const tags = Object.keys(index.tags).filter((k) => index.tags[k] === id);
    const digests = Object.keys(index.digests).filter((k) => index.digests[k] === id);
    return { tags, digests };
  }

  #familiar(key: string): string {
    return familiarString(parseReference(key));
  }

  listImages(): ImageSummary[] {
    const index = this.#readIndex();
    return Object.keys(index.images).map((id) => {
      const image = this.resolve(id, index);
      const { tags, digests } = this.#refsOf(id, index);
      return {
        id,
        repoTags: tags.map((t) => this.#familiar(t)).sort(),
        repoDigests: digests.map((d) => this.#familiar(d)).sort(),
        created: image.config.created,
        size: image.layers.reduce((sum, l) => sum + l.size, 0),
        holders: [...index.images[id]!.holders],
        labels: { ...image.config.config?.Labels },
      };
    });
  }

  inspectImage(ref: string): ImageInspect {
    const index = this.#readIndex();
    const image = this.resolve(ref, index);
    const { tags, digests } = this.#refsOf(image.id, index);
    const history = image.config.history ?? [];
    return {
      Id: image.id,
      RepoTags: tags.map((t) => this.#familiar(t)).sort(),
      RepoDigests: digests.map((d) => this.#familiar(d)).sort(),
      Parent: '',
      Comment: history[history.length - 1]?.comment ?? '',
      Created: image.config.created,
      Author: image.config.author ?? '',
      Architecture: image.config.architecture,
      ...(image.config.variant ? { Variant: image.config.variant } : {}),
      Os: image.config.os,
      Size: image.layers.reduce((sum, l) => sum + l.size, 0),
      Config: { ...image.config.config },
      RootFS: { Type: 'layers', Layers: [...image.config.rootfs.diff_ids] },
      Metadata: { LastTagTime: index.images[image.id]!.added },
    };
  }

  /** Points `target` (`name[:tag]`) at the image `source` names. */
  async tag(source: string, target: string): Promise<void> {
    const ref = parseReference(target);
    if (ref.digest !== undefined) {
      throw new ImageError('EIMAGE_REFERENCE', `cannot tag with a digest reference "${target}"`, {
        reference: target,
      });
    }
    await this.write(async (tx) => {
      const found = this.#find(source, tx.index);
      if (!found) throw notFound(source);
      tx.index.tags[`${ref.name}:${ref.tag}`] = found.id;
    });
  }

  /** Marks an image as used by `holder` (a container ID): `removeImage` refuses it unless forced. */
  async retain(ref: string, holder: string, options: { durable?: boolean } = {}): Promise<string> {
    return this.write(async (tx) => {
      const found = this.#find(ref, tx.index);
      if (!found) throw notFound(ref);
      const record = tx.index.images[found.id]!;
      if (!record.holders.includes(holder)) record.holders.push(holder);
      return found.id;
    }, options);
  }

  /** Drops `holder`'s hold on an image (by ID or reference); unknown holders are ignored. */
  async release(ref: string, holder: string): Promise<void> {
    await this.write(async (tx) => {
      const found = this.#find(ref, tx.index);
      if (!found) return;
      const record = tx.index.images[found.id]!;
      record.holders = record.holders.filter((h) => h !== holder);
    });
  }

  /**
   * Drops `holder`'s hold on every image, for a holder whose record is lost (a container whose
   * removal was interrupted). Takes the store lock only when there is something to drop.
   */
  async releaseHolder(holder: string, options: { durable?: boolean } = {}): Promise<void> {
    const held = (index: IndexFile) =>
      Object.values(index.images).filter((record) => record.holders.includes(holder));
    if (held(this.#readIndex()).length === 0) return;
    await this.write(async (tx) => {
      for (const record of held(tx.index)) record.holders = record.holders.filter((h) => h !== holder);
    }, options);
  }

  /**
   * `box rmi`. By reference: untags; the image goes when no other tag is left. By ID: removes all
   * its references and the image. An image held by a container is refused (`EIMAGE_IN_USE`); with
   * `force` it is untagged but kept until released. Unreferenced blobs and layers are collected.
   */
  async removeImage(ref: string, options: { force?: boolean } = {}): Promise<RemoveResult> {
    return this.write(async (tx) => {
      const index = tx.index;
      const found = this.#find(ref, index);
      if (!found) throw notFound(ref);
      const { id } = found;
      const record = index.images[id]!;
      const { tags, digests } = this.#refsOf(id, index);
      const result: RemoveResult = { untagged: [], deleted: [] };
      let dropKeys: string[];
      if (found.reference !== undefined) {
        const parsed = parseReference(found.reference);
        const key =
          parsed.digest !== undefined ? `${parsed.name}@${parsed.digest}` : `${parsed.name}:${parsed.tag}`;
        const otherTags = tags.filter((t) => t !== key);
        dropKeys = otherTags.length > 0 ? [key] : [...tags, ...digests];
      } else {
        dropKeys = [...tags, ...digests];
      }
      const keepsTags = tags.some((t) => !dropKeys.includes(t));
      if (!keepsTags && record.holders.length > 0 && !options.force) {
        throw new ImageError(
          'EIMAGE_IN_USE',
          `image ${ref} is used by ${record.holders.length === 1 ? 'container' : 'containers'} ${record.holders.join(', ')}`,
          { reference: ref },
        );
      }
      for (const key of dropKeys) {
        if (key in index.tags) delete index.tags[key];
        else delete index.digests[key];
        result.untagged.push(this.#familiar(key));
      }
      if (!keepsTags && record.holders.length === 0) {
        for (const key of digests) delete index.digests[key];
        delete index.images[id];
        result.deleted.push(id);
        result.deleted.push(...this.#collect(tx));
      }
      return result;
    });
  }

  /** Removes images with no tag and no holder (with `all`, every image without a holder). */
  async prune(options: { all?: boolean } = {}): Promise<RemoveResult> {
    return this.write(async (tx) => {
      const index = tx.index;
      const result: RemoveResult = { untagged: [], deleted: [] };
      for (const id of Object.keys(index.images)) {
        const { tags, digests } = this.#refsOf(id, index);
        if (index.images[id]!.holders.length > 0 || (tags.length > 0 && !options.all)) continue;
        for (const key of [...tags, ...digests]) {
          if (key in index.tags) {
            delete index.tags[key];
            result.untagged.push(this.#familiar(key));
          } else delete index.digests[key];
        }
        delete index.images[id];
        result.deleted.push(id);
      }
      result.deleted.push(...this.#collect(tx));
      return result;
    });
  }

  /**
   * Blobs and layers no image in the transaction's index references, deleted once it is written
   * (tx.garbage). Returns what goes.
   */
  #collect(tx: Transaction): string[] {
    const { index } = tx;
    const blobs = new Set<string>();
    const layers = new Set<string>();
    for (const record of Object.values(index.images)) {
      blobs.add(record.manifest);
      const { manifest } = parseManifest(this.readBlob(record.manifest));
      blobs.add(manifest.config.digest);
      for (const layer of manifest.layers) blobs.add(layer.digest);
      const config = parseConfig(this.readBlob(manifest.config.digest));
      for (const chain of chainIds(config.rootfs.diff_ids)) layers.add(chain);
    }
    const deleted: string[] = [];
    const blobDir = join(this.root, 'blobs', 'sha256');
    for (const hex of readdirSync(blobDir)) {
      if (blobs.has(`sha256:${hex}`)) continue;
      tx.garbage.push(join(blobDir, hex));
      deleted.push(`sha256:${hex}`);
    }
    const layerDir = join(this.root, 'layers');
    for (const hex of readdirSync(layerDir)) {
      if (layers.has(`sha256:${hex}`)) continue;
      tx.garbage.push(join(layerDir, hex));
      deleted.push(`layer sha256:${hex}`);
    }
    for (const name of readdirSync(this.tmpDir)) {
      let st: Stats | undefined;
      try {
        st = lstatSync(join(this.tmpDir, name));
      } catch {}
      // Staging left by a crashed writer (we hold the lock, so nothing is being written now).
      if (st) tx.garbage.push(join(this.tmpDir, name));
    }
    return deleted;
  }

  /** The references (full form) that point at an image, for `saveArchive`. */
  referencesOf(id: string): { tags: string[]; digests: string[] } {
    return this.#refsOf(id, this.#readIndex());
  }

  /** Layer metadata by chain ID (sizes for docker-archive export). */
  layerMeta(chainID: string): LayerMeta {
    const meta = this.#layerMeta(chainID);
    if (!meta) throw notFound(chainID, 'layer');
    return meta;
  }
}

/** The size of a stream read from a file (fs.createReadStream, whole or a range), if it is one. */
function streamSize(source: unknown): number | undefined {
  if (!(source instanceof ReadStream) || typeof source.path !== 'string') return undefined;
  const { start, end } = source as unknown as { start?: number; end?: number };
  if (end !== undefined && end !== Number.POSITIVE_INFINITY) return end - (start ?? 0) + 1;
  try {
    return statSync(source.path).size - (start ?? 0);
  } catch {
    return undefined;
  }
}

/** The first `n` bytes of a stream (or fewer, when it is shorter), and the whole stream again. */
async function peek(
  source: Readable | AsyncIterable<Uint8Array>,
  n: number,
): Promise<{ head: Buffer; stream: AsyncIterable<Uint8Array> }> {
  const iterator = source[Symbol.asyncIterator]();
  const chunks: Uint8Array[] = [];
  let length = 0;
  let done = false;
  while (length < n) {
    const step = await iterator.next();
    if (step.done) {
      done = true;
      break;
    }
    chunks.push(step.value);
    length += step.value.length;
  }
  const head = Buffer.concat(chunks);
  async function* stream(): AsyncGenerator<Uint8Array> {
    let finished = done;
    try {
      if (head.length > 0) yield head;
      while (!finished) {
        const step = await iterator.next();
        if (step.done) finished = true;
        else yield step.value;
      }
    } finally {
      if (!finished) await iterator.return?.();
    }
  }
  return { head, stream: stream() };
}

/** The store's default whiteout hook: keep the OCI marker file `.wh.<name>` in the layer. */
const keepWhiteout: WhiteoutHook = (dir, name) => touchMarker(join(dir, `.wh.${name}`));

/** The store's default opaque hook: keep the OCI marker file `.wh..wh..opq`. */
const keepOpaque: OpaqueHook = (dir) => touchMarker(join(dir, '.wh..wh..opq'));

function touchMarker(path: string): void {
  closeSync(openSync(path, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_NOFOLLOW, 0o600));
}

/** The OCI layer media type of a compression. */
function mediaTypeOf(compression: string): string {
  if (compression === 'gzip') return MediaType.OCI_LAYER_GZIP;
  if (compression === 'zstd') return MediaType.OCI_LAYER_ZSTD;
  return MediaType.OCI_LAYER;
}
