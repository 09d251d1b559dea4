import {
  closeSync,
  fstatSync,
  ftruncateSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  readSync,
  rmSync,
  symlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  AT_EMPTY_PATH,
  AT_REMOVEDIR,
  AT_SYMLINK_NOFOLLOW,
  dataExtents,
  fchmodat,
  fchownat,
  futimens,
  linkat,
  mkdirat,
  mknodat,
  O_EXCL,
  O_TRUNC,
  openat,
  openat2,
  RESOLVE_IN_ROOT,
  RESOLVE_NO_MAGICLINKS,
  readlinkat,
  symlinkat,
  unlinkat,
  utimensat,
} from './at.js';
import { O_CREAT, O_DIRECTORY, O_NOFOLLOW, O_PATH, O_RDONLY, O_WRONLY } from './constants.js';

let base: string;
let root: string;
let outside: string;
let rootfd: number;

beforeEach(() => {
  base = mkdtempSync(join(tmpdir(), 'box-at-'));
  root = join(base, 'root');
  outside = join(base, 'outside');
  mkdirSync(join(root, 'etc'), { recursive: true });
  mkdirSync(outside);
  writeFileSync(join(root, 'etc/secret'), 'inside\n');
  writeFileSync(join(outside, 'secret'), 'outside\n');
  rootfd = openat(-100, root, O_PATH | O_DIRECTORY);
});

afterEach(() => {
  closeSync(rootfd);
  rmSync(base, { recursive: true, force: true });
});

function read(fd: number): string {
  const buf = Buffer.alloc(100);
  const n = readSync(fd, buf);
  closeSync(fd);
  return buf.subarray(0, n).toString();
}

const IN_ROOT = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;

describe('openat2 with RESOLVE_IN_ROOT', () => {
  it('resolves absolute symlinks and ".." against the given root, never the host', () => {
    // The same link on the host would lead to `outside`.
    symlinkSync(outside, join(root, 'link'));
    symlinkSync(join(outside, 'secret'), join(root, 'filelink'));
    expect(() => openat2(rootfd, 'link/secret', { flags: O_RDONLY, resolve: IN_ROOT })).toThrow(
      expect.objectContaining({ syscall: 'openat2', code: 'ENOENT' }),
    );
    expect(() => openat2(rootfd, '/filelink', { flags: O_RDONLY, resolve: IN_ROOT })).toThrow(
      expect.objectContaining({ code: 'ENOENT' }),
    );
    expect(read(openat2(rootfd, '../../../../etc/secret', { flags: O_RDONLY, resolve: IN_ROOT }))).toBe(
      'inside\n',
    );
    // Once the link's target exists inside the root, it is the one opened.
    mkdirSync(join(root, outside), { recursive: true });
    writeFileSync(join(root, outside, 'secret'), 'inside too\n');
    expect(read(openat2(rootfd, 'link/secret', { flags: O_RDONLY, resolve: IN_ROOT }))).toBe('inside too\n');
    // Without RESOLVE_IN_ROOT the same call reaches the host: the test shows the flag matters.
    expect(read(openat2(rootfd, 'filelink', { flags: O_RDONLY }))).toBe('outside\n');
  });

  it('refuses magic links under RESOLVE_NO_MAGICLINKS and creates files with a mode', () => {
    const fd = openat2(rootfd, 'etc/new', {
      flags: O_CREAT | O_EXCL | O_WRONLY,
      mode: 0o640,
      resolve: IN_ROOT,
    });
    writeSync(fd, 'x');
    expect(fstatSync(fd).mode & 0o7777).toBe(0o640 & ~process.umask());
    closeSync(fd);
    expect(readFileSync(join(root, 'etc/new'), 'utf8')).toBe('x');
    const self = openat(-100, '/proc/self', O_PATH | O_DIRECTORY);
    try {
      expect(() => openat2(self, 'exe', { flags: O_PATH, resolve: RESOLVE_NO_MAGICLINKS })).toThrow(
        expect.objectContaining({ code: 'ELOOP' }),
      );
    } finally {
      closeSync(self);
    }
  });
});

describe('the *at calls', () => {
  it('open without following a final symlink, make and read links, directories and nodes', () => {
    symlinkat(join(outside, 'secret'), rootfd, 'etc/link');
    expect(readlinkSync(join(root, 'etc/link'))).toBe(join(outside, 'secret'));
    expect(readlinkat(rootfd, 'etc/link').toString()).toBe(join(outside, 'secret'));
    expect(() => openat(rootfd, 'etc/link', O_WRONLY | O_TRUNC | O_NOFOLLOW)).toThrow(
      expect.objectContaining({ syscall: 'openat', code: 'ELOOP' }),
    );
    expect(() => openat(rootfd, 'etc/link', O_CREAT | O_EXCL | O_WRONLY, 0o600)).toThrow(
      expect.objectContaining({ code: 'EEXIST' }),
    );
    expect(readFileSync(join(outside, 'secret'), 'utf8')).toBe('outside\n');
    // readlinkat with an empty name reads the link open as O_PATH|O_NOFOLLOW.
    const linkfd = openat(rootfd, 'etc/link', O_PATH | O_NOFOLLOW);
    expect(readlinkat(linkfd, '').toString()).toBe(join(outside, 'secret'));
    closeSync(linkfd);

    mkdirat(rootfd, 'd', 0o750);
    expect(lstatSync(join(root, 'd')).isDirectory()).toBe(true);
    expect(() => mkdirat(rootfd, 'd', 0o750)).toThrow(expect.objectContaining({ code: 'EEXIST' }));
    mknodat(rootfd, 'd/fifo', 0o010644);
    expect(lstatSync(join(root, 'd/fifo')).isFIFO()).toBe(true);

    fchownat(rootfd, 'etc/link', 123, 456, AT_SYMLINK_NOFOLLOW);
    expect(lstatSync(join(root, 'etc/link'))).toMatchObject({ uid: 123, gid: 456 });
    expect(lstatSync(join(outside, 'secret')).uid).toBe(0);
    fchmodat(rootfd, 'd/fifo', 0o600, AT_SYMLINK_NOFOLLOW);
    expect(lstatSync(join(root, 'd/fifo')).mode & 0o7777).toBe(0o600);

    utimensat(rootfd, 'etc/link', { atimeNs: 1_000_000_123n, mtimeNs: 2_000_000_456n }, AT_SYMLINK_NOFOLLOW);
    expect(lstatSync(join(root, 'etc/link'), { bigint: true }).mtimeNs).toBe(2_000_000_456n);
    const fd = openat(rootfd, 'etc/secret', O_WRONLY);
    futimens(fd, { atimeNs: 5n, mtimeNs: -1_500_000_000n });
    expect(fstatSync(fd, { bigint: true }).mtimeNs).toBe(-1_500_000_000n);
    linkat(fd, '', rootfd, 'etc/hard', AT_EMPTY_PATH);
    closeSync(fd);
    expect(lstatSync(join(root, 'etc/hard')).ino).toBe(lstatSync(join(root, 'etc/secret')).ino);

    unlinkat(rootfd, 'd/fifo');
    unlinkat(rootfd, 'd', AT_REMOVEDIR);
    expect(() => lstatSync(join(root, 'd'))).toThrow();
    expect(() => unlinkat(rootfd, 'nope')).toThrow(
      expect.objectContaining({ syscall: 'unlinkat', code: 'ENOENT', path: `nope (dir fd ${rootfd})` }),
    );
  });

  it('takes names as raw bytes', () => {
    const name = Buffer.from([0x6e, 0xff, 0x6e]);
    mkdirat(rootfd, name, 0o700);
    const fd = openat(rootfd, name, O_PATH | O_DIRECTORY);
    closeSync(fd);
    unlinkat(rootfd, name, AT_REMOVEDIR);
  });
});

describe('names with a NUL byte', () => {
  it('are refused, not cut short at the NUL (`..\\0/x` would be `..`)', () => {
    const etc = openat(rootfd, 'etc', O_PATH | O_DIRECTORY);
    try {
      const nul = expect.objectContaining({ code: 'EINVAL', message: expect.stringContaining('a NUL byte') });
      expect(() => openat(etc, '..\0/outside', O_PATH)).toThrow(nul);
      expect(() => openat2(etc, Buffer.from('..\0'), { flags: O_PATH })).toThrow(nul);
      expect(() => mkdirat(etc, 'd\0', 0o700)).toThrow(nul);
      expect(() => symlinkat('x\0y', etc, 'l')).toThrow(nul);
      expect(() => unlinkat(etc, 'secret\0x', 0)).toThrow(nul);
      expect(() => linkat(etc, 'secret', etc, 'copy\0', 0)).toThrow(nul);
      expect(readFileSync(join(root, 'etc/secret'), 'utf8')).toBe('inside\n');
    } finally {
      closeSync(etc);
    }
  });
});

describe('dataExtents', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'box-extents-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const extentsOf = (path: string) => {
    const fd = openat(-100, path, O_RDONLY);
    try {
      return dataExtents(fd, fstatSync(fd).size);
    } finally {
      closeSync(fd);
    }
  };

  it("leaves a sparse file's holes out, and lists a dense file as one extent", () => {
    const sparse = join(dir, 'sparse');
    const fd = openat(-100, sparse, O_CREAT | O_WRONLY, 0o600);
    writeSync(fd, Buffer.from('a'), 0, 1, 1 << 20);
    writeSync(fd, Buffer.from('b'), 0, 1, 64 << 20);
    ftruncateSync(fd, 1 << 30);
    closeSync(fd);
    const extents = extentsOf(sparse);
    // Two runs of data (whole blocks around each byte), nothing after the last: 1 GiB of holes.
    expect(extents).toHaveLength(2);
    expect(extents[0]!.offset).toBeLessThanOrEqual(1 << 20);
    expect(extents[0]!.offset + extents[0]!.length).toBeGreaterThan(1 << 20);
    expect(extents[1]!.offset).toBeLessThanOrEqual(64 << 20);
    expect(extents[1]!.offset + extents[1]!.length).toBeGreaterThan(64 << 20);
    expect(extents[1]!.offset + extents[1]!.length).toBeLessThan(65 << 20);

    writeFileSync(join(dir, 'dense'), Buffer.alloc(10000, 1));
    expect(extentsOf(join(dir, 'dense'))).toEqual([{ offset: 0, length: 10000 }]);
    writeFileSync(join(dir, 'empty'), '');
    expect(extentsOf(join(dir, 'empty'))).toEqual([]);
  });
});
