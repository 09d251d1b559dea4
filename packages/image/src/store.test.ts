import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { join, relative } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { importRootfsTar, loadArchive, saveArchive } from './archive.js';
import { sha256 } from './digest.js';
import { isImageError } from './errors.js';
import { MediaType } from './manifest.js';
import { type ImageStore, openImageStore } from './store.js';
import { makeTar, makeTarGz, streamOf, tempDir } from './tar-fixtures.js';

let tmp: ReturnType<typeof tempDir>;
let store: ImageStore;

beforeEach(async () => {
  tmp = tempDir();
  store = await openImageStore({ root: join(tmp.path, 'image') });
});
afterEach(() => tmp.remove());

/** Every path in the store with its size, to show that a failed write changed nothing. */
function snapshot(dir = store.root): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d, { withFileTypes: true })) {
      const path = join(d, name.name);
      out.push(`${relative(store.root, path)} ${name.isDirectory() ? 'd' : statSync(path).size}`);
      if (name.isDirectory()) walk(path);
    }
  };
  walk(dir);
  return out.sort();
}

const base = () =>
  makeTarGz([
    { name: 'bin/', type: 'directory', mode: 0o755 },
    { name: 'bin/sh', body: '#!shell', mode: 0o755 },
    { name: 'etc/passwd', body: 'root:x:0:0' },
  ]);

describe('image store', () => {
  it('imports a rootfs tar and resolves it', async () => {
    const id = await importRootfsTar(store, streamOf(await base()), 'busybox', { config: { Cmd: ['sh'] } });
    const image = store.resolve('busybox');
    expect(image.id).toBe(id);
    expect(image.reference).toBe('docker.io/library/busybox:latest');
    expect(image.config.config?.Env).toEqual([
      'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    ]);
    expect(image.config.config?.Cmd).toEqual(['sh']);
    expect(image.manifest.layers[0]!.mediaType).toBe(MediaType.OCI_LAYER_GZIP);
    expect(image.layers).toHaveLength(1);
    expect(readFileSync(join(image.layers[0]!.path, 'bin', 'sh'), 'utf8')).toBe('#!shell');
    expect(store.resolve(id.slice(7, 19)).id).toBe(id);
    const [summary] = store.listImages();
    expect(summary).toMatchObject({ id, repoTags: ['busybox:latest'], size: image.layers[0]!.size });
    const inspect = store.inspectImage('docker.io/library/busybox:latest');
    expect(inspect).toMatchObject({
      Id: id,
      RepoTags: ['busybox:latest'],
      Os: 'linux',
      RootFS: { Layers: [image.layers[0]!.diffID] },
    });
    expect(inspect.RepoDigests[0]).toBe(`busybox@${image.manifestDigest}`);
    expect(store.resolve(`busybox@${image.manifestDigest}`).id).toBe(id);
  });

  it('shares a base layer between two images and keeps it while one is left', async () => {
    await importRootfsTar(store, streamOf(await base()), 'base:1');
    const a = await store.createImage({
      parent: 'base:1',
      layer: streamOf(await makeTar([{ name: 'a', body: 'a' }])),
      reference: 'app-a',
    });
    const b = await store.createImage({
      parent: 'base:1',
      layer: streamOf(await makeTar([{ name: 'b', body: 'b' }])),
      reference: 'app-b',
    });
    const ra = store.resolve(a);
    const rb = store.resolve(b);
    expect(ra.layers[0]!.path).toBe(rb.layers[0]!.path);
    expect(ra.layers[0]!.digest).toBe(rb.layers[0]!.digest);
    expect(readdirSync(join(store.root, 'layers'))).toHaveLength(3);
    await store.removeImage('base:1');
    await store.removeImage('app-a');
    expect(existsSync(ra.layers[1]!.path)).toBe(false);
    expect(existsSync(rb.layers[0]!.path)).toBe(true);
    expect(store.hasBlob(rb.layers[0]!.digest)).toBe(true);
    expect(readFileSync(join(rb.layers[1]!.path, 'b'), 'utf8')).toBe('b');
    await store.removeImage('app-b');
    expect(readdirSync(join(store.root, 'layers'))).toEqual([]);
    expect(readdirSync(join(store.root, 'blobs', 'sha256'))).toEqual([]);
  });

  it("removes an image whose layer is deeper than Node's rmSync can walk, and keeps the store whole", async () => {
    await importRootfsTar(store, streamOf(await makeTar([{ name: 'f', body: 'x' }])), 'kept');
    const deep = `${'a/'.repeat(2000)}f`;
    await importRootfsTar(store, streamOf(await makeTar([{ name: deep, body: 'deep' }])), 'deep');
    const layer = store.resolve('deep').layers[0]!.path;
    const result = await store.removeImage('deep');
    expect(result.deleted.length).toBeGreaterThan(1);
    expect(existsSync(layer)).toBe(false);
    expect(store.listImages().map((image) => image.repoTags)).toEqual([['kept:latest']]);
    expect(readFileSync(join(store.resolve('kept').layers[0]!.path, 'f'), 'utf8')).toBe('x');
  });

  it('refuses to remove an image in use unless forced, and prunes it once released', async () => {
    const id = await importRootfsTar(store, streamOf(await base()), 'busybox');
    await store.retain('busybox', 'container-1');
    const error = await store.removeImage('busybox').catch((e: unknown) => e);
    expect(isImageError(error, 'EIMAGE_IN_USE')).toBe(true);
    expect((error as Error).message).toBe('image busybox is used by container container-1');
    expect(store.hasImage('busybox')).toBe(true);
    const forced = await store.removeImage('busybox', { force: true });
    expect(forced).toEqual({
      untagged: ['busybox:latest', `busybox@${store.resolve(id).manifestDigest}`],
      deleted: [],
    });
    expect(store.resolve(id).layers[0]!.path).toMatch(/diff$/);
    expect((await store.prune()).deleted).toEqual([]);
    await store.release(id, 'container-1');
    expect((await store.prune()).deleted).toContain(id);
    expect(store.listImages()).toEqual([]);
  });

  it('drops a holder from every image it holds, knowing only the holder', async () => {
    const a = await importRootfsTar(store, streamOf(await base()), 'a');
    await store.retain('a', 'lost');
    await store.retain('a', 'kept');
    await store.releaseHolder('lost');
    await store.releaseHolder('never-held');
    expect(store.listImages().find((image) => image.id === a)!.holders).toEqual(['kept']);
  });

  it('tags, untags by one tag and keeps the image for the other', async () => {
    const id = await importRootfsTar(store, streamOf(await base()), 'one');
    await store.tag('one', 'localhost:5000/two:v2');
    expect(store.listImages()[0]!.repoTags).toEqual(['localhost:5000/two:v2', 'one:latest']);
    expect(await store.removeImage('one')).toEqual({ untagged: ['one:latest'], deleted: [] });
    expect(store.resolve('localhost:5000/two:v2').id).toBe(id);
    const error = await store.tag('missing', 'x').catch((e: unknown) => e);
    expect(isImageError(error, 'EIMAGE_NOT_FOUND')).toBe(true);
    expect(() => store.resolve('Bad:Ref')).toThrow(/invalid reference format/);
  });

  it('stores nothing when a layer is corrupt, truncated or does not match its digest', async () => {
    await importRootfsTar(store, streamOf(await base()), 'keep');
    const before = snapshot();
    const full = await makeTarGz([{ name: 'f', body: randomBytes(300_000) }]);
    const truncated = full.subarray(0, full.length >> 1);
    for (const input of [truncated, Buffer.alloc(4096, 9)]) {
      const error = await importRootfsTar(store, streamOf(input), 'broken').catch((e: unknown) => e);
      expect(isImageError(error, 'EIMAGE_CORRUPT'), String(error)).toBe(true);
      expect(snapshot()).toEqual(before);
    }
    // An OCI layout whose layer blob does not hash to its name.
    const layout = join(tmp.path, 'bad-layout');
    await saveArchive(store, ['keep'], layout, { format: 'oci-dir' });
    const image = store.resolve('keep');
    await store.removeImage('keep');
    const emptied = snapshot();
    // Of the size its descriptor says (another size is refused before any read): a byte of the gzip
    // header's mtime changed, so it unpacks the same and hashes otherwise.
    const blob = join(layout, 'blobs', 'sha256', image.layers[0]!.digest.slice(7));
    const bytes = readFileSync(blob);
    bytes[4]! ^= 0xff;
    writeFileSync(blob, bytes);
    const error = await loadArchive(store, layout).catch((e: unknown) => e);
    expect(isImageError(error, 'EIMAGE_DIGEST'), String(error)).toBe(true);
    // Naming the archive's file, not only the digests.
    expect(String(error)).toContain(`blobs/sha256/${image.layers[0]!.digest.slice(7)}: `);
    expect(snapshot()).toEqual(emptied);
  });

  it('keeps whiteouts as OCI markers by default, or calls the given hooks', async () => {
    const layer = await makeTar([{ name: 'etc/.wh.passwd' }, { name: 'var/.wh..wh..opq' }]);
    await importRootfsTar(store, streamOf(layer), 'wh');
    const path = store.resolve('wh').layers[0]!.path;
    expect(readdirSync(join(path, 'etc'))).toEqual(['.wh.passwd']);
    expect(readdirSync(join(path, 'var'))).toEqual(['.wh..wh..opq']);
    const calls: string[] = [];
    const hooked = await openImageStore({
      root: join(tmp.path, 'hooked'),
      onWhiteout: (dir, name, info) => {
        calls.push(`wh ${relative(info.root, dir)} ${name}`);
      },
      onOpaque: (_dir, info) => {
        calls.push(`opq ${info.path}`);
      },
    });
    await importRootfsTar(hooked, streamOf(layer), 'wh');
    expect(calls).toEqual(['wh etc passwd', 'opq var']);
  });

  it('round-trips through docker-archive, oci-archive and oci-dir', async () => {
    await importRootfsTar(store, streamOf(await base()), 'busybox:1');
    const original = store.resolve('busybox:1');
    for (const format of ['docker-archive', 'oci-archive', 'oci-dir'] as const) {
      const out = join(tmp.path, `saved-${format}`);
      await saveArchive(store, ['busybox:1'], out, { format });
      const other = await openImageStore({ root: join(tmp.path, `other-${format}`) });
      const loaded = await loadArchive(other, out);
      expect(loaded).toEqual([{ id: original.id, references: ['docker.io/library/busybox:1'] }]);
      const again = other.resolve('busybox:1');
      expect(again.layers.map((l) => l.diffID)).toEqual(original.layers.map((l) => l.diffID));
      expect(readFileSync(join(again.layers[0]!.path, 'etc', 'passwd'), 'utf8')).toBe('root:x:0:0');
    }
    const error = await saveArchive(store, ['busybox:1'], join(tmp.path, 'saved-oci-dir'), {
      format: 'oci-dir',
    }).catch((e: unknown) => e);
    expect(isImageError(error, 'EIMAGE_EXISTS')).toBe(true);
  });

  it('loads a compressed archive of two tags of one image, in both formats', async () => {
    await importRootfsTar(store, streamOf(await base()), 'busybox:1');
    await store.tag('busybox:1', 'busybox:two');
    const { id } = store.resolve('busybox:1');
    for (const format of ['docker-archive', 'oci-archive'] as const) {
      const out = join(tmp.path, `two-${format}.tar`);
      await saveArchive(store, ['busybox:1', 'busybox:two'], out, { format });
      execFileSync('gzip', [out]);
      const other = await openImageStore({ root: join(tmp.path, `other-two-${format}`) });
      const loaded = await loadArchive(other, `${out}.gz`);
      expect(loaded.flatMap((image) => image.references).sort()).toEqual([
        'docker.io/library/busybox:1',
        'docker.io/library/busybox:two',
      ]);
      expect(new Set(loaded.map((image) => image.id))).toEqual(new Set([id]));
      expect(readFileSync(join(other.resolve('busybox:two').layers[0]!.path, 'etc', 'passwd'), 'utf8')).toBe(
        'root:x:0:0',
      );
    }
  });

  it('loads an archive named through a symlink, a directory or a tar', async () => {
    await importRootfsTar(store, streamOf(await base()), 'busybox:1');
    const { id } = store.resolve('busybox:1');
    for (const format of ['oci-dir', 'docker-archive'] as const) {
      const out = join(tmp.path, `saved-${format}`);
      await saveArchive(store, ['busybox:1'], out, { format });
      const link = join(tmp.path, `link-${format}`);
      symlinkSync(out, link);
      const other = await openImageStore({ root: join(tmp.path, `other-${format}`) });
      expect(await loadArchive(other, link)).toEqual([{ id, references: ['docker.io/library/busybox:1'] }]);
    }
  });

  it('refuses a blob of another size than its descriptor says before reading it', async () => {
    await importRootfsTar(store, streamOf(await base()), 'busybox:1');
    const out = join(tmp.path, 'layout');
    await saveArchive(store, ['busybox:1'], out, { format: 'oci-dir' });
    const layer = store.resolve('busybox:1').manifest.layers[0]!;
    // A sparse file: 1 GiB declared, no disk used by whoever made it.
    truncateSync(join(out, 'blobs', 'sha256', layer.digest.slice(7)), 1 << 30);
    const other = await openImageStore({ root: join(tmp.path, 'other') });
    const error = await loadArchive(other, out).catch((e: unknown) => e);
    expect(isImageError(error, 'EIMAGE_CORRUPT'), String(error)).toBe(true);
    expect(String(error)).toContain(
      `blob ${layer.digest} is 1073741824 bytes, its descriptor says ${layer.size}`,
    );
    // Nothing of it written: no blob, no layer, nothing staged.
    for (const dir of ['blobs/sha256', 'layers', 'tmp'])
      expect(readdirSync(join(other.root, dir))).toEqual([]);
  });

  it('refuses an archive path that is neither a file nor a directory, without waiting on it', async () => {
    const fifo = join(tmp.path, 'archive.fifo');
    execFileSync('mkfifo', [fifo]);
    const error = await loadArchive(store, fifo).catch((e: unknown) => e);
    expect(isImageError(error, 'EIMAGE_CORRUPT'), String(error)).toBe(true);
    expect(String(error)).toContain(`${fifo} is neither an archive file nor an OCI layout directory`);
  });

  it('rejects a manifest with an unknown media type', async () => {
    const dir = join(tmp.path, 'layout');
    await importRootfsTar(store, streamOf(await base()), 'x');
    await saveArchive(store, ['x'], dir, { format: 'oci-dir' });
    const image = store.resolve('x');
    const manifest = {
      ...image.manifest,
      layers: [{ ...image.manifest.layers[0]!, mediaType: 'application/x-rar' }],
    };
    const bytes = Buffer.from(JSON.stringify(manifest));
    writeFileSync(join(dir, 'blobs', 'sha256', sha256(bytes).slice(7)), bytes);
    writeFileSync(
      join(dir, 'index.json'),
      JSON.stringify({
        schemaVersion: 2,
        manifests: [{ mediaType: MediaType.OCI_MANIFEST, digest: sha256(bytes), size: bytes.length }],
      }),
    );
    const other = await openImageStore({ root: join(tmp.path, 'other') });
    const error = await loadArchive(other, dir).catch((e: unknown) => e);
    expect(isImageError(error, 'EIMAGE_MEDIATYPE'), String(error)).toBe(true);
  });

  it('follows docker-archive layer symlinks only inside the archive', async () => {
    await importRootfsTar(store, streamOf(await makeTar([{ name: 'f', body: 'x' }])), 'sym');
    const dir = join(tmp.path, 'docker-dir');
    const tarFile = join(tmp.path, 'docker.tar');
    await saveArchive(store, ['sym'], tarFile, { format: 'docker-archive' });
    mkdirSync(dir);
    execFileSync('tar', ['-xf', tarFile, '-C', dir]);
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
    const layer = manifest[0].Layers[0] as string;
    renameSync(join(dir, layer), join(dir, 'shared.tar'));
    symlinkSync('../shared.tar', join(dir, layer));
    const other = await openImageStore({ root: join(tmp.path, 'other') });
    expect((await loadArchive(other, dir))[0]!.references).toEqual(['docker.io/library/sym:latest']);
    writeFileSync(
      join(dir, 'manifest.json'),
      JSON.stringify([{ ...manifest[0], Layers: ['../../../../etc/passwd'] }]),
    );
    const error = await loadArchive(other, dir).catch((e: unknown) => e);
    expect(isImageError(error, 'EIMAGE_UNSAFE_PATH'), String(error)).toBe(true);
    // A NUL byte in a name: `..\0` is `..` to the kernel, and led out of the archive.
    writeFileSync(
      join(dir, 'manifest.json'),
      JSON.stringify([{ ...manifest[0], Config: '..\0/..\0/etc/passwd' }]),
    );
    const nul = await loadArchive(other, dir).catch((e: unknown) => e);
    expect(isImageError(nul, 'EIMAGE_UNSAFE_PATH'), String(nul)).toBe(true);
    rmSync(join(dir, layer));
    symlinkSync('/etc/passwd', join(dir, layer));
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest));
    const error2 = await loadArchive(other, dir).catch((e: unknown) => e);
    expect(isImageError(error2, 'EIMAGE_UNSAFE_PATH'), String(error2)).toBe(true);
  });

  it("reads an archive's index, manifests and configs only within a pull's limits", async () => {
    await importRootfsTar(store, streamOf(await makeTar([{ name: 'f', body: 'x' }])), 'big');
    const dir = join(tmp.path, 'docker-dir');
    const saved = join(tmp.path, 'docker.tar');
    await saveArchive(store, ['big'], saved, { format: 'docker-archive' });
    mkdirSync(dir);
    execFileSync('tar', ['-xf', saved, '-C', dir]);
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
    // A sparse config of 9 MiB: a few bytes on disk, and memory of its declared size if read.
    truncateSync(join(dir, manifest[0].Config), 9 * 1024 * 1024);
    const other = await openImageStore({ root: join(tmp.path, 'other') });
    const error = await loadArchive(other, dir).catch((e: unknown) => e);
    expect(isImageError(error, 'EIMAGE_TOO_LARGE'), String(error)).toBe(true);
    expect(String(error)).toMatch(/is 9437184 bytes, more than the limit of 8388608/);
    truncateSync(join(dir, 'manifest.json'), 5 * 1024 * 1024);
    const error2 = await loadArchive(other, dir).catch((e: unknown) => e);
    expect(isImageError(error2, 'EIMAGE_TOO_LARGE'), String(error2)).toBe(true);
    expect(other.listImages()).toEqual([]);
  });

  it('reads an archive tar in place, following its symlinks only inside it', async () => {
    await importRootfsTar(store, streamOf(await makeTar([{ name: 'f', body: 'x' }])), 'sym');
    const dir = join(tmp.path, 'docker-dir');
    const saved = join(tmp.path, 'docker.tar');
    await saveArchive(store, ['sym'], saved, { format: 'docker-archive' });
    mkdirSync(dir);
    execFileSync('tar', ['-xf', saved, '-C', dir]);
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
    const layer = manifest[0].Layers[0] as string;
    renameSync(join(dir, layer), join(dir, 'shared.tar'));
    symlinkSync('../shared.tar', join(dir, layer));
    const archive = (name: string) => {
      const path = join(tmp.path, name);
      execFileSync('tar', ['-cf', path, '-C', dir, '.']);
      return path;
    };
    const other = await openImageStore({ root: join(tmp.path, 'other') });
    const staging = () => readdirSync(join(other.root, 'tmp'));
    expect((await loadArchive(other, archive('linked.tar')))[0]!.references).toEqual([
      'docker.io/library/sym:latest',
    ]);
    expect(staging()).toEqual([]);
    rmSync(join(dir, layer));
    symlinkSync('../../../../../etc/passwd', join(dir, layer));
    const error = await loadArchive(other, archive('escape.tar')).catch((e: unknown) => e);
    expect(isImageError(error, 'EIMAGE_UNSAFE_PATH'), String(error)).toBe(true);
    rmSync(join(dir, layer));
    symlinkSync('/etc/passwd', join(dir, layer));
    const error2 = await loadArchive(other, archive('absolute.tar')).catch((e: unknown) => e);
    expect(isImageError(error2, 'EIMAGE_UNSAFE_PATH'), String(error2)).toBe(true);
    expect((error2 as Error).message).toMatch(
      /cannot read archive .*absolute\.tar|is a symlink to \/etc\/passwd/,
    );
    // A tar that ends early names the archive.
    const whole = readFileSync(saved);
    writeFileSync(join(tmp.path, 'short.tar'), whole.subarray(0, whole.length - 3000));
    const short = await loadArchive(other, join(tmp.path, 'short.tar')).catch((e: unknown) => e);
    expect(isImageError(short, 'EIMAGE_CORRUPT'), String(short)).toBe(true);
    expect((short as Error).message).toMatch(/cannot read archive .*short\.tar/);
  });
});

describe('image store permissions', () => {
  const mode = (path: string) => statSync(path).mode & 0o7777;

  it('is closed to other users: directories 0700, files 0600', async () => {
    await importRootfsTar(store, streamOf(await base()), 'busybox');
    const [layer] = store.resolve('busybox').layers;
    const layerDir = join(layer!.path, '..');
    for (const dir of [
      store.root,
      join(store.root, 'layers'),
      layerDir,
      join(store.root, 'blobs', 'sha256'),
    ]) {
      expect({ dir, mode: mode(dir) }).toEqual({ dir, mode: 0o700 });
    }
    const blobs = readdirSync(join(store.root, 'blobs', 'sha256'));
    expect(blobs.length).toBeGreaterThan(0);
    for (const file of [
      join(store.root, 'repositories.json'),
      join(layerDir, 'layer.json'),
      ...blobs.map((b) => join(store.root, 'blobs', 'sha256', b)),
    ]) {
      expect({ file, mode: mode(file) }).toEqual({ file, mode: 0o600 });
    }
  });

  it('with a group, lets only that group traverse to the layers (root:group 0710)', async () => {
    const group = 4242;
    const shared = await openImageStore({ root: join(tmp.path, 'shared'), group });
    await importRootfsTar(shared, streamOf(await base()), 'busybox');
    const layerDir = join(shared.resolve('busybox').layers[0]!.path, '..');
    for (const dir of [shared.root, join(shared.root, 'layers'), layerDir]) {
      expect({ dir, mode: mode(dir), gid: statSync(dir).gid }).toEqual({ dir, mode: 0o710, gid: group });
    }
    expect(mode(join(shared.root, 'blobs'))).toBe(0o700);
  });

  it('closes a store left open by an older version when opened again', async () => {
    await importRootfsTar(store, streamOf(await base()), 'busybox');
    const layerDir = join(store.resolve('busybox').layers[0]!.path, '..');
    for (const dir of [store.root, join(store.root, 'layers'), layerDir]) chmodSync(dir, 0o711);
    chmodSync(join(store.root, 'repositories.json'), 0o644);
    const again = await openImageStore({ root: store.root, group: 4242 });
    for (const dir of [again.root, join(again.root, 'layers'), layerDir]) {
      expect({ dir, mode: mode(dir), gid: statSync(dir).gid }).toEqual({ dir, mode: 0o710, gid: 4242 });
    }
    expect(mode(join(again.root, 'repositories.json'))).toBe(0o600);
  });
});
