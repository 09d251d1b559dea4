import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  existsSync,
  linkSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { importRootfsTar, loadArchive, saveArchive } from './archive.js';
import { sha256 } from './digest.js';
import { isImageError } from './errors.js';
import { type ImageStore, openImageStore } from './store.js';
import { makeTar, makeTarGz, streamOf, tempDir } from './tar-fixtures.js';
import { KEEP_DIR, SPLIT_FILE } from './tar-split.js';

let tmp: ReturnType<typeof tempDir>;
let store: ImageStore;

beforeEach(async () => {
  tmp = tempDir();
  store = await openImageStore({ root: join(tmp.path, 'image') });
});
afterEach(() => tmp.remove());

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Imports `tar` and checks that the store kept no blob but gives back the same bytes. */
async function importAndRebuild(
  tar: Buffer,
  chunkSize = 4096,
): Promise<{ layerDir: string; digest: string }> {
  await importRootfsTar(store, streamOf(tar, chunkSize), 'split:1');
  const image = store.resolve('split:1');
  const layer = image.manifest.layers[0]!;
  expect(layer.digest).toBe(sha256(tar));
  expect(layer.size).toBe(tar.length);
  expect(existsSync(store.blobPath(layer.digest))).toBe(false);
  expect(store.hasBlob(layer.digest)).toBe(true);
  expect(store.blobSize(layer.digest)).toBe(tar.length);
  const rebuilt = await readAll(store.openBlob(layer.digest));
  expect(rebuilt.length).toBe(tar.length);
  expect(rebuilt.equals(tar)).toBe(true);
  const layerDir = store.layerDir(image.layers[0]!.chainID);
  expect(existsSync(join(layerDir, SPLIT_FILE))).toBe(true);
  return { layerDir, digest: layer.digest };
}

/** A tree for GNU tar: long names, hard links, empty and large files, odd names. */
function makeTree(dir: string): void {
  const deep = join(dir, 'a'.repeat(60), 'b'.repeat(60), 'c'.repeat(60));
  mkdirSync(deep, { recursive: true });
  writeFileSync(join(deep, `${'long-name-'.repeat(12)}.txt`), 'deep and long\n');
  writeFileSync(join(dir, 'empty'), '');
  writeFileSync(join(dir, 'big'), randomBytes(3 * 1024 * 1024 + 17));
  writeFileSync(join(dir, 'exact-block'), Buffer.alloc(512, 7));
  writeFileSync(join(dir, 'héllo wörld ✓'), 'unicode\n');
  linkSync(join(dir, 'big'), join(dir, 'big-link'));
  symlinkSync('big', join(dir, 'big-symlink'));
  mkdirSync(join(dir, 'empty-dir'));
}

describe('tar-split: layers kept as their files', () => {
  for (const format of ['gnu', 'posix', 'ustar'] as const) {
    it(`rebuilds a GNU tar (--format=${format}) byte for byte from the unpacked layer`, async () => {
      const src = join(tmp.path, 'src');
      mkdirSync(src);
      makeTree(src);
      const args = ['-c', `--format=${format}`, '-C', src, '.'];
      if (format === 'ustar') {
        // ustar cannot hold the 180-character directory path
        execFileSync('rm', ['-rf', join(src, 'a'.repeat(60))]);
      }
      const tar = execFileSync('tar', args, { maxBuffer: 64 << 20 });
      await importAndRebuild(tar, 65536);
    });
  }

  it('rebuilds entries that later entries replace, remove or hide, and zeros after the end of the archive', async () => {
    const tar = await makeTar([
      { name: 'a/', type: 'directory' },
      { name: 'a/x', body: 'first x' },
      { name: 'a/x', body: 'second x, longer than the first' }, // replaces a/x
      { name: 'd/', type: 'directory' },
      { name: 'd/f', body: 'in d' },
      { name: 'd/g/', type: 'directory' },
      { name: 'd/g/h', body: 'deeper in d' },
      { name: 'd', type: 'symlink', linkname: 'a' }, // the directory d, and its files, replaced
      { name: 'h', body: 'hard link target' },
      { name: 'other', body: 'other' },
      { name: 'h', type: 'link', linkname: 'other' }, // h replaced by a link to other
      { name: 'a/.wh.gone', body: 'data of a whiteout' },
      { name: `${'p'.repeat(150)}/${'q'.repeat(120)}`, body: 'pax path' },
    ]);
    const trailing = Buffer.concat([tar, Buffer.alloc(4096)]); // zeros after the end blocks
    const { layerDir } = await importAndRebuild(trailing, 333);
    // The replaced files are kept as hard links by entry number; nothing of them is in diff/.
    expect(readdirSync(join(layerDir, KEEP_DIR)).sort()).toEqual(['2', '5', '7', '9']);
    expect(readFileSync(join(layerDir, 'diff', 'a', 'x'), 'utf8')).toBe('second x, longer than the first');
  });

  it('keeps an uncompressed import as its files: the store holds no second copy', async () => {
    const files = Array.from({ length: 200 }, (_, i) => ({
      name: `f/${i}`,
      body: randomBytes(20_000 + i),
    }));
    const tar = await makeTar(files);
    const { layerDir } = await importAndRebuild(tar, 65536);
    const split = statSync(join(layerDir, SPLIT_FILE)).size;
    const blobs = readdirSync(join(store.root, 'blobs', 'sha256')).map(
      (hex) => statSync(join(store.root, 'blobs', 'sha256', hex)).size,
    );
    // Only the config and the manifest are blobs; the tar-split is a small fraction of the tar.
    expect(blobs).toHaveLength(2);
    expect(Math.max(...blobs)).toBeLessThan(4096);
    expect(split).toBeLessThan(tar.length / 100);
  });

  it('still keeps a compressed import as its blob', async () => {
    const gz = await makeTarGz([{ name: 'x', body: 'gz' }]);
    await importRootfsTar(store, streamOf(gz), 'gz:1');
    const image = store.resolve('gz:1');
    expect(existsSync(store.blobPath(image.manifest.layers[0]!.digest))).toBe(true);
    expect(existsSync(join(store.layerDir(image.layers[0]!.chainID), SPLIT_FILE))).toBe(false);
  });

  it('refuses to rebuild from a layer whose file was changed behind its back', async () => {
    const tar = await makeTar([{ name: 'etc/passwd', body: 'root:x:0:0\n' }]);
    const { layerDir, digest } = await importAndRebuild(tar);
    // Same size, other bytes: only the digest check can see it.
    writeFileSync(join(layerDir, 'diff', 'etc', 'passwd'), 'ROOT:x:0:0\n');
    const error = await readAll(store.openBlob(digest)).catch((e: unknown) => e);
    expect(isImageError(error) && error.code).toBe('EIMAGE_CORRUPT');
    expect((error as Error).message).toMatch(/cannot be rebuilt as a tar: the rebuilt tar has digest/);
    // A file replaced by a symlink to a host file is never followed.
    execFileSync('rm', [join(layerDir, 'diff', 'etc', 'passwd')]);
    symlinkSync('/etc/hostname', join(layerDir, 'diff', 'etc', 'passwd'));
    const followed = await readAll(store.openBlob(digest)).catch((e: unknown) => e);
    expect((followed as Error).message).toMatch(/its file etc\/passwd cannot be opened \(ELOOP\)/);
  });

  it('saves and loads a split layer with the digests it was imported with', async () => {
    const tar = await makeTar([
      { name: 'bin/', type: 'directory' },
      { name: 'bin/sh', body: '#!shell', mode: 0o755 },
    ]);
    const id = await importRootfsTar(store, streamOf(tar), 'rt:1');
    const before = store.resolve('rt:1');
    for (const format of ['docker-archive', 'oci-archive', 'oci-dir'] as const) {
      const out = join(tmp.path, `saved-${format}`);
      await saveArchive(store, ['rt:1'], out, { format });
      const other = await openImageStore({ root: join(tmp.path, `other-${format}`) });
      const [loaded] = await loadArchive(other, out);
      expect(loaded?.id).toBe(id);
      const after = other.resolve('rt:1');
      expect(after.manifest.layers.map((l) => l.digest)).toEqual(before.manifest.layers.map((l) => l.digest));
      // Loaded as files and a tar-split too: no blob beside them.
      expect(existsSync(other.blobPath(after.manifest.layers[0]!.digest))).toBe(false);
      expect((await readAll(other.openBlob(after.manifest.layers[0]!.digest))).equals(tar)).toBe(true);
    }
  });

  it('rebuilds a blob that another chain needs from the split layer that has it', async () => {
    const top = await makeTar([{ name: 'top', body: 'on any base' }]);
    const baseA = await makeTar([{ name: 'a', body: 'A' }]);
    await importRootfsTar(store, streamOf(baseA), 'a:1');
    // `top` on a: a commit-like import on a parent.
    await store.createImage({ layer: streamOf(top), parent: 'a:1', reference: 'top-on-a:1' });
    const digest = sha256(top);
    expect(existsSync(store.blobPath(digest))).toBe(false);
    expect((await readAll(store.openBlob(digest))).equals(top)).toBe(true);
    // Removing the images takes their layers and tar-splits with them.
    await store.removeImage('top-on-a:1');
    await store.removeImage('a:1');
    expect(store.hasBlob(digest)).toBe(false);
    expect(readdirSync(join(store.root, 'layers'))).toEqual([]);
  });

  it('rebuilds a 32 MB file read back in 1 MB chunks', async () => {
    const size = 32 * 1024 * 1024;
    const tar = await makeTar([{ name: 'large', body: Buffer.alloc(size, 1) }]);
    await importAndRebuild(tar, 1 << 20);
  });

  it('reads a source that is not a Readable', async () => {
    const tar = await makeTar([{ name: 'x', body: 'iterable' }]);
    async function* chunks(): AsyncGenerator<Uint8Array> {
      yield tar.subarray(0, 3);
      yield tar.subarray(3);
    }
    await importRootfsTar(store, chunks(), 'it:1');
    const layer = store.resolve('it:1').manifest.layers[0]!;
    expect((await readAll(store.openBlob(layer.digest))).equals(tar)).toBe(true);
  });
});
