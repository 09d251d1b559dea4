/**
 * An archive directory changed by its owner while box reads it (`box load -i DIR` of a directory
 * another user controls): each member is found, then changed, then read, in that order, so the
 * race is won every time.
 */
import { execFileSync } from 'node:child_process';
import {
  appendFileSync,
  closeSync,
  constants,
  mkdirSync,
  openSync,
  readdirSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { text } from 'node:stream/consumers';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type ArchiveFiles, directoryFiles } from './archive-files.js';
import { tempDir } from './tar-fixtures.js';

let tmp: ReturnType<typeof tempDir>;
let archive: string;
/** A file outside the archive that its owner would like root to read. */
let secret: string;

beforeEach(() => {
  tmp = tempDir();
  archive = join(tmp.path, 'archive');
  mkdirSync(join(archive, 'blobs/sha256'), { recursive: true });
  writeFileSync(join(archive, 'index.json'), '{"schemaVersion":2}');
  writeFileSync(join(archive, 'blobs/sha256/abc'), 'layer bytes');
  const outside = join(tmp.path, 'outside');
  mkdirSync(join(outside, 'sha256'), { recursive: true });
  secret = join(outside, 'sha256/abc');
  writeFileSync(secret, 'host secret');
});
afterEach(() => tmp.remove());

/** `use` on the files of the archive directory, open as the loader opens it. */
async function withFiles(use: (files: ArchiveFiles) => unknown): Promise<void> {
  const fd = openSync(archive, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await use(directoryFiles(fd, archive));
  } finally {
    closeSync(fd);
  }
}

const REPLACED = /was replaced while the archive was read/;

describe('directoryFiles', () => {
  it('reads a member found in the directory, whole, by its head and as a stream', () =>
    withFiles(async (files) => {
      const member = files.find('blobs/sha256/abc');
      expect(member?.size).toBe(11);
      expect(member?.read().toString()).toBe('layer bytes');
      expect(member?.head(5).toString()).toBe('layer');
      expect(await text(member!.stream())).toBe('layer bytes');
      expect(files.find('blobs/sha256/missing')).toBeUndefined();
      expect(files.find('blobs')).toBeUndefined();
    }));

  it('follows the archive’s own relative links, and not one out of it', () =>
    withFiles((files) => {
      symlinkSync('blobs/sha256/abc', join(archive, 'layer.tar'));
      symlinkSync('../outside/sha256/abc', join(archive, 'escape'));
      expect(files.find('layer.tar')?.read().toString()).toBe('layer bytes');
      expect(() => files.find('escape')).toThrow(/outside the archive/);
    }));

  it('refuses a name with a NUL byte (the kernel reads `..\\0` as `..`), and one deeper than any archive’s', () =>
    withFiles((files) => {
      writeFileSync(join(archive, 'secret'), 'no');
      expect(() => files.find('blobs/..\0/..\0/outside/sha256/abc')).toThrow(/holds a NUL byte/);
      expect(() => files.find(`${'d/'.repeat(40)}x`)).toThrow(/longer or deeper than any archive's names/);
      expect(() => files.find(`${'x'.repeat(2000)}`)).toThrow(/longer or deeper/);
    }));

  it('does not read a host file through a member swapped for a symlink after it was found', () =>
    withFiles(async (files) => {
      const member = files.find('index.json')!;
      rmSync(join(archive, 'index.json'));
      symlinkSync(secret, join(archive, 'index.json'));
      expect(() => member.read()).toThrow(REPLACED);
      expect(() => member.head(4)).toThrow(REPLACED);
      await expect(text(member.stream())).rejects.toThrow(REPLACED);
    }));

  it('does not read a host file through a directory on the way swapped for a symlink', () =>
    withFiles((files) => {
      const member = files.find('blobs/sha256/abc')!;
      renameSync(join(archive, 'blobs'), join(archive, 'old-blobs'));
      symlinkSync(join(tmp.path, 'outside'), join(archive, 'blobs'));
      expect(() => member.read()).toThrow(REPLACED);
      // Found after the swap, the link is the archive's own, and leads out of it.
      expect(() => files.find('blobs/sha256/abc')).toThrow(/is a symlink to/);
    }));

  it('does not hang on a member swapped for a FIFO, nor fail on a socket with another error', () =>
    withFiles(async (files) => {
      const member = files.find('index.json')!;
      rmSync(join(archive, 'index.json'));
      execFileSync('mkfifo', [join(archive, 'index.json')]);
      expect(() => member.read()).toThrow(REPLACED);
      await expect(text(member.stream())).rejects.toThrow(REPLACED);
      rmSync(join(archive, 'index.json'));
      const server = createServer();
      await new Promise<void>((resolve) => server.listen(join(archive, 'index.json'), resolve));
      try {
        expect(() => member.read()).toThrow(REPLACED);
        expect(files.find('index.json')).toBeUndefined();
      } finally {
        server.close();
      }
    }));

  it('reads no more than the size it found, however the member grows', () =>
    withFiles(async (files) => {
      const member = files.find('blobs/sha256/abc')!;
      appendFileSync(join(archive, 'blobs/sha256/abc'), Buffer.alloc(1 << 20, 'x'));
      expect(member.read().toString()).toBe('layer bytes');
      expect(await text(member.stream())).toBe('layer bytes');
    }));

  it('holds no file descriptor for a stream made and never read', () =>
    withFiles((files) => {
      const member = files.find('blobs/sha256/abc')!;
      const before = readdirSync('/proc/self/fd').length;
      const streams = Array.from({ length: 5 }, () => member.stream());
      expect(readdirSync('/proc/self/fd').length).toBe(before);
      for (const stream of streams) stream.destroy();
    }));
});
