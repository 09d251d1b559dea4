import {
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sha256 } from './digest.js';
import { isImageError } from './errors.js';
import { type FixtureEntry, makeTar, makeTarGz, streamOf, tempDir } from './tar-fixtures.js';
import { applyLayer, type UnpackOptions, unpackLayer } from './unpack.js';

const isRoot = process.getuid?.() === 0;
let tmp: ReturnType<typeof tempDir>;
let outside: string; // a canary tree next to the layer dir, standing in for the host
let dest: string;

beforeEach(() => {
  tmp = tempDir();
  outside = join(tmp.path, 'host');
  mkdirSync(join(outside, 'etc'), { recursive: true });
  writeFileSync(join(outside, 'canary'), 'untouched');
  writeFileSync(join(outside, 'etc', 'passwd'), 'root:x:0:0');
  dest = join(tmp.path, 'work', 'layer');
  mkdirSync(join(tmp.path, 'work'));
});
afterEach(() => tmp.remove());

function hostUntouched(): void {
  expect(readFileSync(join(outside, 'canary'), 'utf8')).toBe('untouched');
  expect(readFileSync(join(outside, 'etc', 'passwd'), 'utf8')).toBe('root:x:0:0');
  expect(readdirSync(outside).sort()).toEqual(['canary', 'etc']);
  expect(readdirSync(join(outside, 'etc'))).toEqual(['passwd']);
  expect(existsSync('/x')).toBe(false);
}

async function unpack(entries: FixtureEntry[], options: UnpackOptions = {}) {
  return unpackLayer(streamOf(await makeTar(entries)), dest, options);
}

async function rejected(entries: FixtureEntry[], code = 'EIMAGE_UNSAFE_PATH'): Promise<void> {
  const error = await unpack(entries).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isImageError(error), String(error)).toBe(true);
  expect((error as { code: string }).code).toBe(code);
  // Nothing left behind: neither the layer nor its temporary sibling.
  expect(readdirSync(join(tmp.path, 'work'))).toEqual([]);
  hostUntouched();
}

// The relative path from dest to the canary tree.
const up = '../../host';

describe('unpackLayer on hostile tarballs', () => {
  it('refuses ../ escapes', async () => {
    await rejected([{ name: `${up}/canary`, body: 'pwned' }]);
    await rejected([{ name: 'a/../../x', body: 'pwned' }]);
  });

  it('keeps absolute names inside the layer', async () => {
    await unpack([
      { name: '/etc/x', body: 'inside' },
      { name: '/canary', body: 'inside' },
    ]);
    expect(readFileSync(join(dest, 'etc', 'x'), 'utf8')).toBe('inside');
    expect(readFileSync(join(dest, 'canary'), 'utf8')).toBe('inside');
    hostUntouched();
  });

  it('never writes through a symlink the archive made (a -> /, then a/etc/passwd)', async () => {
    await rejected([
      { name: 'a', type: 'symlink', linkname: '/' },
      { name: 'a/etc/passwd', body: 'pwned' },
    ]);
    await rejected([
      { name: 'h', type: 'symlink', linkname: join(outside) },
      { name: 'h/canary', body: 'pwned' },
    ]);
  });

  it('never follows chains of symlinks to ..', async () => {
    await rejected([
      { name: 'l1', type: 'symlink', linkname: '..' },
      { name: 'l2', type: 'symlink', linkname: 'l1/..' },
      { name: 'l3', type: 'symlink', linkname: `l2/${up.slice(6)}` },
      { name: 'l3/canary', body: 'pwned' },
    ]);
  });

  it('keeps symlinks to outside as symlinks (they are only data)', async () => {
    await unpack([{ name: 'etc/passwd', type: 'symlink', linkname: join(outside, 'etc', 'passwd') }]);
    expect(readlinkSync(join(dest, 'etc', 'passwd'))).toBe(join(outside, 'etc', 'passwd'));
    hostUntouched();
  });

  it('refuses a directory entry that replaces a parent by a symlink and then writes below it', async () => {
    await rejected([
      { name: 'd', type: 'directory', mode: 0o755 },
      { name: 'd', type: 'symlink', linkname: outside },
      { name: 'd/canary', body: 'pwned' },
    ]);
  });

  it('refuses hard links to files outside the layer', async () => {
    await rejected([{ name: 'passwd', type: 'link', linkname: '/etc/passwd' }]);
    await rejected([{ name: 'passwd', type: 'link', linkname: `${up}/etc/passwd` }]);
  });

  it('refuses hard links through an archive symlink', async () => {
    await rejected([
      { name: 'a', type: 'symlink', linkname: outside },
      { name: 'x', type: 'link', linkname: 'a/canary' },
    ]);
  });

  it('refuses whiteouts that climb out or sit below a symlink', async () => {
    await rejected([{ name: '../../.wh.x' }]);
    await rejected([{ name: `${up}/.wh.canary` }]);
    await rejected([{ name: 'a', type: 'symlink', linkname: outside }, { name: 'a/.wh.canary' }]);
    await rejected([{ name: 'd/.wh...' }]);
  });

  it('does not make device nodes when devices are not allowed', async () => {
    const result = await unpack(
      [
        { name: 'dev/sda', type: 'block-device', devmajor: 8, devminor: 0, mode: 0o660 },
        { name: 'dev/mem', type: 'character-device', devmajor: 1, devminor: 1, mode: 0o640 },
      ],
      { devices: false },
    );
    expect(existsSync(join(dest, 'dev', 'sda'))).toBe(false);
    expect(existsSync(join(dest, 'dev', 'mem'))).toBe(false);
    expect(result.skipped.map((s) => s.path)).toEqual(['dev/sda', 'dev/mem']);
  });

  it('refuses an entry that would replace the layer directory itself', async () => {
    await rejected([{ name: './', type: 'symlink', linkname: '/' }]);
  });
});

describe('unpackLayer digests and corruption', () => {
  it('verifies digest and diffID and keeps nothing on a mismatch', async () => {
    const tar = await makeTarGz([{ name: 'f', body: 'x' }]);
    const wrong = sha256('nope');
    for (const options of [{ expectedDigest: wrong }, { expectedDiffID: wrong }]) {
      const error = await unpackLayer(streamOf(tar), dest, options).catch((e: unknown) => e);
      expect(isImageError(error, 'EIMAGE_DIGEST')).toBe(true);
      expect(readdirSync(join(tmp.path, 'work'))).toEqual([]);
    }
    const ok = await unpackLayer(streamOf(tar), dest, { expectedDigest: sha256(tar) });
    expect(ok.digest).toBe(sha256(tar));
    expect(ok.compression).toBe('gzip');
  });

  it('fails on a truncated gzip and leaves nothing', async () => {
    const big = Buffer.alloc(200_000, 'abcdefgh');
    const tar = await makeTarGz([
      { name: 'f', body: big },
      { name: 'g', body: big },
    ]);
    const error = await unpackLayer(streamOf(tar.subarray(0, tar.length >> 1)), dest).catch(
      (e: unknown) => e,
    );
    expect(isImageError(error, 'EIMAGE_CORRUPT')).toBe(true);
    expect(readdirSync(join(tmp.path, 'work'))).toEqual([]);
  });

  it('fails on a truncated tar and leaves nothing', async () => {
    const tar = await makeTar([{ name: 'f', body: Buffer.alloc(100_000, 1) }]);
    const error = await unpackLayer(streamOf(tar.subarray(0, 50_000)), dest).catch((e: unknown) => e);
    expect(isImageError(error, 'EIMAGE_CORRUPT')).toBe(true);
    expect(readdirSync(join(tmp.path, 'work'))).toEqual([]);
  });

  it('fails on garbage', async () => {
    const error = await unpackLayer(streamOf(Buffer.alloc(2048, 7)), dest).catch((e: unknown) => e);
    expect(isImageError(error, 'EIMAGE_CORRUPT')).toBe(true);
    expect(readdirSync(join(tmp.path, 'work'))).toEqual([]);
  });

  it('names unsupported compression and media types', async () => {
    const xz = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0, 0]);
    const e1 = await unpackLayer(streamOf(xz), dest).catch((e: unknown) => e);
    expect(isImageError(e1, 'EIMAGE_MEDIATYPE')).toBe(true);
    expect((e1 as Error).message).toBe('unsupported compression: xz');
    const e2 = await unpackLayer(streamOf(await makeTar([])), dest, { mediaType: 'text/plain' }).catch(
      (e: unknown) => e,
    );
    expect(isImageError(e2, 'EIMAGE_MEDIATYPE')).toBe(true);
    expect(readdirSync(join(tmp.path, 'work'))).toEqual([]);
  });

  it('unpacks zstd layers', async () => {
    const { execFileSync } = await import('node:child_process');
    const tar = await makeTar([{ name: 'z/file', body: 'zstd!' }]);
    const zst = execFileSync('zstd', ['-q', '-c'], { input: tar });
    const result = await unpackLayer(streamOf(zst), dest, {
      mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd',
    });
    expect(result.compression).toBe('zstd');
    expect(result.diffID).toBe(sha256(tar));
    expect(readFileSync(join(dest, 'z', 'file'), 'utf8')).toBe('zstd!');
  });

  it('refuses an existing destination', async () => {
    mkdirSync(dest);
    const error = await unpack([{ name: 'f', body: 'x' }]).catch((e: unknown) => e);
    expect(isImageError(error, 'EIMAGE_EXISTS')).toBe(true);
  });
});

describe('unpackLayer fidelity', () => {
  it('keeps ownership, modes, mtimes, symlinks and hard links', async () => {
    const mtime = new Date('2020-01-02T03:04:05Z');
    await unpack([
      { name: 'dir/', type: 'directory', mode: 0o750, uid: 1234, gid: 5678, mtime },
      { name: 'dir/file', body: 'hello', mode: 0o4711, uid: 1000, gid: 1001, mtime },
      { name: 'dir/link', type: 'symlink', linkname: 'file', uid: 1002, gid: 1003, mtime },
      { name: 'dir/hard', type: 'link', linkname: 'dir/file' },
      { name: 'ro/', type: 'directory', mode: 0o555, mtime },
      { name: 'ro/inside', body: 'x', mode: 0o400, mtime },
      { name: 'fifo', type: 'fifo', mode: 0o600, mtime },
    ]);
    const file = lstatSync(join(dest, 'dir', 'file'));
    expect(file.mode & 0o7777).toBe(0o4711);
    expect(file.mtime.getTime()).toBe(mtime.getTime());
    expect(file.nlink).toBe(2);
    expect(lstatSync(join(dest, 'dir', 'hard')).ino).toBe(file.ino);
    const link = lstatSync(join(dest, 'dir', 'link'));
    expect(link.isSymbolicLink()).toBe(true);
    expect(readlinkSync(join(dest, 'dir', 'link'))).toBe('file');
    expect(link.mtime.getTime()).toBe(mtime.getTime());
    const dir = lstatSync(join(dest, 'dir'));
    expect(dir.mode & 0o7777).toBe(0o750);
    expect(dir.mtime.getTime()).toBe(mtime.getTime());
    expect(lstatSync(join(dest, 'ro')).mode & 0o7777).toBe(0o555);
    expect(readFileSync(join(dest, 'ro', 'inside'), 'utf8')).toBe('x');
    if (isRoot) {
      expect([file.uid, file.gid]).toEqual([1000, 1001]);
      expect([link.uid, link.gid]).toEqual([1002, 1003]);
      expect([dir.uid, dir.gid]).toEqual([1234, 5678]);
      expect(lstatSync(join(dest, 'fifo')).isFIFO()).toBe(true);
    }
  });

  it('makes device nodes as root', async () => {
    expect(isRoot, 'the tests run as root').toBe(true);
    const result = await unpack([
      { name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666 },
    ]);
    expect(result.skipped).toEqual([]);
    const st = lstatSync(join(dest, 'dev', 'null'));
    expect(st.isCharacterDevice()).toBe(true);
    expect(st.rdev).toBe(0x103);
    expect(st.mode & 0o7777).toBe(0o666);
  });

  it("applies SCHILY.xattr PAX records, except overlayfs's own marks", async () => {
    const result = await unpack([
      {
        name: 'f',
        body: 'x',
        pax: {
          'SCHILY.xattr.user.box': 'value',
          'SCHILY.xattr.trusted.overlay.redirect': '/elsewhere',
          'SCHILY.xattr.user.overlay.opaque': 'y',
        },
      } as FixtureEntry,
    ]);
    const { lgetxattr } = await import('@box/sys');
    expect(lgetxattr(join(dest, 'f'), 'user.box')?.toString()).toBe('value');
    expect(lgetxattr(join(dest, 'f'), 'trusted.overlay.redirect')).toBeNull();
    expect(lgetxattr(join(dest, 'f'), 'user.overlay.opaque')).toBeNull();
    expect(result.skipped.map((s) => s.reason).sort()).toEqual([
      "xattr trusted.overlay.redirect not set: overlayfs's own",
      "xattr user.overlay.opaque not set: overlayfs's own",
    ]);
  });

  it("never sets a directory's xattrs through a symlink a later entry put on its path", async () => {
    // x/sub/ carries xattrs (set at the end, with the directories' modes); a later entry makes x a
    // symlink to the host: lsetxattr of x/sub would follow it and set them on the host's sub.
    mkdirSync(join(outside, 'sub'));
    const result = await unpack([
      { name: 'x/', type: 'directory' },
      {
        name: 'x/sub/',
        type: 'directory',
        pax: { 'SCHILY.xattr.user.box': 'escaped' },
      } as FixtureEntry,
      { name: 'x', type: 'symlink', linkname: outside },
    ]);
    const { lgetxattr } = await import('@box/sys');
    expect(lgetxattr(join(outside, 'sub'), 'user.box')).toBeNull();
    expect(lstatSync(join(dest, 'x')).isSymbolicLink()).toBe(true);
    expect(result.skipped).toEqual([]);
    // A directory that stays gets its xattrs.
    rmSync(dest, { recursive: true });
    await unpack([
      { name: 'y/', type: 'directory', pax: { 'SCHILY.xattr.user.box': 'kept' } } as FixtureEntry,
    ]);
    expect(lgetxattr(join(dest, 'y'), 'user.box')?.toString()).toBe('kept');
  });

  it('later entries replace earlier ones', async () => {
    await unpack([
      { name: 'a', body: 'first' },
      { name: 'a', body: 'second' },
      { name: 'd/x', body: 'x' },
      { name: 'd', type: 'symlink', linkname: 'a' },
    ]);
    expect(readFileSync(join(dest, 'a'), 'utf8')).toBe('second');
    expect(readlinkSync(join(dest, 'd'))).toBe('a');
  });
});

describe('whiteouts', () => {
  it('calls the hooks with the directory and name', async () => {
    const calls: unknown[] = [];
    const result = await unpack(
      [
        { name: 'etc/', type: 'directory' },
        { name: 'etc/.wh.passwd' },
        { name: 'var/lib/.wh..wh..opq' },
        { name: '.wh.top' },
      ],
      {
        onWhiteout: (dir, name, info) => {
          calls.push(['whiteout', dir, name, info.path]);
        },
        onOpaque: async (dir, info) => {
          calls.push(['opaque', dir, info.path]);
        },
      },
    );
    expect(result.entries).toBe(4);
    const root = calls.length ? (calls[0] as string[])[1]!.replace(/\/etc$/, '') : '';
    expect(calls).toEqual([
      ['whiteout', `${root}/etc`, 'passwd', 'etc/passwd'],
      ['opaque', `${root}/var/lib`, 'var/lib'],
      ['whiteout', root, 'top', 'top'],
    ]);
    expect(readdirSync(dest).sort()).toEqual(['etc', 'var']);
  });

  it('applyLayer deletes whited-out paths and empties opaque directories by default', async () => {
    mkdirSync(dest);
    await applyLayer(
      streamOf(
        await makeTar([
          { name: 'keep', body: '1' },
          { name: 'gone/sub/file', body: '2' },
          { name: 'opq/old', body: '3' },
        ]),
      ),
      dest,
    );
    await applyLayer(
      streamOf(
        await makeTar([{ name: '.wh.gone' }, { name: 'opq/.wh..wh..opq' }, { name: 'opq/new', body: '4' }]),
      ),
      dest,
    );
    expect(readdirSync(dest).sort()).toEqual(['keep', 'opq']);
    expect(readdirSync(join(dest, 'opq'))).toEqual(['new']);
  });

  it('applyLayer does not follow a symlink left by an earlier layer', async () => {
    mkdirSync(dest);
    await applyLayer(streamOf(await makeTar([{ name: 'a', type: 'symlink', linkname: outside }])), dest);
    const error = await applyLayer(
      streamOf(await makeTar([{ name: 'a/canary', body: 'pwned' }])),
      dest,
    ).catch((e: unknown) => e);
    expect(isImageError(error, 'EIMAGE_UNSAFE_PATH')).toBe(true);
    const error2 = await applyLayer(streamOf(await makeTar([{ name: 'a/.wh.canary' }])), dest).catch(
      (e: unknown) => e,
    );
    expect(isImageError(error2, 'EIMAGE_UNSAFE_PATH')).toBe(true);
    hostUntouched();
  });
});
