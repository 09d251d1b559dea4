import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  existsSync,
  linkSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { importRootfsTar, loadArchive, saveArchive } from './archive.js';
import { sha256 } from './digest.js';
import { isImageError } from './errors.js';
import { type ImageStore, openImageStore } from './store.js';
import { makeTar, makeTarGz, streamOf, tempDir } from './tar-fixtures.js';
import { KEEP_DIR, MAX_PENDING, SPLIT_FILE } from './tar-split.js';

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

describe('tar-split against hostile and unusual layers', () => {
  /** A tar streamed from parts (buffers, or counts of zero bytes made on the fly), never held whole. */
  function streamed(parts: (Buffer | number)[]): { stream: Readable; digest: () => string } {
    const hash = createHash('sha256');
    async function* chunks(): AsyncGenerator<Buffer> {
      for (const part of parts) {
        if (typeof part !== 'number') {
          hash.update(part);
          yield part;
          continue;
        }
        for (let left = part; left > 0; left -= 1 << 20) {
          const zeros = Buffer.alloc(Math.min(left, 1 << 20));
          hash.update(zeros);
          yield zeros;
        }
      }
    }
    let digest: string | undefined;
    return { stream: Readable.from(chunks()), digest: () => (digest ??= `sha256:${hash.digest('hex')}`) };
  }

  /** One tar header (ustar, via tar-stream) for `name` with `size` bytes of data to follow. */
  async function header(name: string, size: number, type: 'file' | 'pax' = 'file'): Promise<Buffer> {
    if (type === 'pax') {
      // A PAX header record (typeflag x) whose data is a comment, then nothing else of it.
      const tar = await makeTar([{ name: 'x', body: Buffer.alloc(0), pax: { comment: 'c' } }]);
      return tar.subarray(0, 1024); // the x header and its one block of data
    }
    const tar = await makeTar([{ name, body: Buffer.alloc(0) }]);
    const block = Buffer.from(tar.subarray(0, 512));
    block.write(`${size.toString(8).padStart(11, '0')}\0`, 124, 'ascii');
    block.fill(0x20, 148, 156);
    let sum = 0;
    for (const byte of block) sum += byte;
    block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
    return block;
  }

  it('settles long runs of zeros as they come: a whiteout with 100 MB of data, then 200 MB of empty blocks', async () => {
    const first = await makeTar([{ name: 'kept', body: 'kept' }]);
    const body = first.subarray(0, first.length - 1024); // without its end blocks
    const wh = await header('.wh.big', 100 << 20);
    // More than MAX_PENDING of each: held in memory, either would be refused.
    const { stream, digest } = streamed([body, wh, 100 << 20, 200 << 20]);
    await importRootfsTar(store, stream, 'zeros:1');
    const layer = store.resolve('zeros:1').manifest.layers[0]!;
    expect(layer.digest).toBe(digest());
    expect(existsSync(store.blobPath(layer.digest))).toBe(false);
    const rebuilt = createHash('sha256');
    for await (const chunk of store.openBlob(layer.digest)) rebuilt.update(chunk as Buffer);
    expect(`sha256:${rebuilt.digest('hex')}`).toBe(digest());
    const splitFile = join(store.layerDir(store.resolve('zeros:1').layers[0]!.chainID), SPLIT_FILE);
    expect(statSync(splitFile).size).toBeLessThan(4096); // zeros kept as counts
  }, 120_000);

  it('refuses a layer that makes it hold more than MAX_PENDING, leaving nothing', async () => {
    // After a PAX header the next entry's place is unknown until the parser reports it.
    const pax = await header('x', 0, 'pax');
    const { stream } = streamed([pax, MAX_PENDING + (1 << 20), await header('late', 0), 1024]);
    const error = await importRootfsTar(store, stream, 'held:1').catch((e: unknown) => e);
    expect(isImageError(error) && error.code).toBe('EIMAGE_CORRUPT');
    expect((error as Error).message).toMatch(/more than 64 MiB between two of its entries/);
    expect(readdirSync(join(store.root, 'layers'))).toEqual([]);
    expect(readdirSync(store.tmpDir)).toEqual([]);
  });

  it('keeps what an overlay-style whiteout hook deletes (it replaces the path with char 0/0)', async () => {
    const overlay = await openImageStore({
      root: join(tmp.path, 'overlay-store'),
      onWhiteout: (dir, name) => {
        rmSync(join(dir, name), { recursive: true, force: true });
        execFileSync('mknod', [join(dir, name), 'c', '0', '0']);
      },
      onOpaque: () => {},
    });
    const tar = await makeTar([
      { name: 'a', body: 'file a' },
      { name: '.wh.a' },
      { name: 'd/', type: 'directory' },
      { name: 'd/f', body: 'file d/f' },
      { name: '.wh.d' },
    ]);
    await importRootfsTar(overlay, streamOf(tar), 'ov:1');
    const image = overlay.resolve('ov:1');
    const rebuilt = await readAll(overlay.openBlob(image.manifest.layers[0]!.digest));
    expect(rebuilt.equals(tar)).toBe(true);
  });

  it('a layer that cannot be rebuilt fails save with one error, leaving no partial file', async () => {
    const tar = await makeTar([{ name: 'etc/passwd', body: 'root:x:0:0\n' }]);
    const { layerDir } = await importAndRebuild(tar);
    writeFileSync(join(layerDir, 'diff', 'etc', 'passwd'), 'ROOT:x:0:0\n');
    const out = join(tmp.path, 'out');
    mkdirSync(out);
    for (const format of ['docker-archive', 'oci-archive'] as const) {
      const error = await saveArchive(store, ['split:1'], join(out, `${format}.tar`), { format }).catch(
        (e: unknown) => e,
      );
      expect(isImageError(error) && error.code).toBe('EIMAGE_CORRUPT');
    }
    expect(readdirSync(out)).toEqual([]);
  });

  it('an archive tar read in place: a hard-linked member reads as the file it links to', async () => {
    await importRootfsTar(store, streamOf(await makeTar([{ name: 'f', body: 'x' }])), 'arc:1');
    const saved = join(tmp.path, 'arc.tar');
    await saveArchive(store, ['arc:1'], saved, { format: 'docker-archive' });
    const dir = join(tmp.path, 'arc');
    mkdirSync(dir);
    execFileSync('tar', ['-xf', saved, '-C', dir]);
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
    const layer = manifest[0].Layers[0] as string;
    linkSync(join(dir, layer), join(dir, 'linked.tar'));
    manifest[0].Layers = ['linked.tar'];
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest));
    // GNU tar stores the second name of a file as a hard link member.
    const archive = join(tmp.path, 'linked-archive.tar');
    execFileSync('tar', ['-cf', archive, '-C', dir, '.']);
    const other = await openImageStore({ root: join(tmp.path, 'other-arc') });
    const [loaded] = await loadArchive(other, archive);
    expect(loaded?.references).toEqual(['docker.io/library/arc:1']);
  });
});
