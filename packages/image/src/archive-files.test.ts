/**
 * An archive directory changed by its owner while box reads it (`box load -i DIR` of a directory
 * another user controls): each member is found, then changed, then read, in that order, so the
 * race is won every time.
 */
import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { text } from 'node:stream/consumers';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { directoryFiles } from './archive-files.js';
import { isImageError } from './errors.js';
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

function expectReplaced(read: () => unknown): void {
  let caught: unknown;
  try {
    read();
  } catch (error) {
    caught = error;
  }
  expect(isImageError(caught) && caught.code).toBe('EIMAGE_CORRUPT');
  expect((caught as Error).message).toMatch(/was replaced while the archive was read/);
}

describe('directoryFiles', () => {
  it('reads a member found in the directory, whole, by its head and as a stream', async () => {
    const files = directoryFiles(archive);
    try {
      const member = files.find('blobs/sha256/abc');
      expect(member?.size).toBe(11);
      expect(member?.read().toString()).toBe('layer bytes');
      expect(member?.head(5).toString()).toBe('layer');
      expect(await text(member!.stream())).toBe('layer bytes');
      expect(files.find('blobs/sha256/missing')).toBeUndefined();
      expect(files.find('blobs')).toBeUndefined();
    } finally {
      files.close();
    }
  });

  it('follows the archive’s own relative links, and not one out of it', () => {
    symlinkSync('blobs/sha256/abc', join(archive, 'layer.tar'));
    symlinkSync('../outside/sha256/abc', join(archive, 'escape'));
    const files = directoryFiles(archive);
    try {
      expect(files.find('layer.tar')?.read().toString()).toBe('layer bytes');
      expect(() => files.find('escape')).toThrow(/outside the archive/);
    } finally {
      files.close();
    }
  });

  it('does not read a host file through a member swapped for a symlink after it was found', () => {
    const files = directoryFiles(archive);
    try {
      const member = files.find('index.json')!;
      rmSync(join(archive, 'index.json'));
      symlinkSync(secret, join(archive, 'index.json'));
      expectReplaced(() => member.read());
      expectReplaced(() => member.head(4));
      expectReplaced(() => member.stream());
    } finally {
      files.close();
    }
  });

  it('does not read a host file through a directory on the way swapped for a symlink', () => {
    const files = directoryFiles(archive);
    try {
      const member = files.find('blobs/sha256/abc')!;
      renameSync(join(archive, 'blobs'), join(archive, 'old-blobs'));
      symlinkSync(join(tmp.path, 'outside'), join(archive, 'blobs'));
      expectReplaced(() => member.read());
      // Found after the swap, the link is the archive's own, and leads out of it.
      expect(() => files.find('blobs/sha256/abc')).toThrow(/is a symlink to/);
    } finally {
      files.close();
    }
  });

  it('does not hang on a member swapped for a FIFO', () => {
    const files = directoryFiles(archive);
    try {
      const member = files.find('index.json')!;
      rmSync(join(archive, 'index.json'));
      execFileSync('mkfifo', [join(archive, 'index.json')]);
      expectReplaced(() => member.read());
      expectReplaced(() => member.stream());
    } finally {
      files.close();
    }
  });

  it('reads no more than the size it found, however the member grows', async () => {
    const files = directoryFiles(archive);
    try {
      const member = files.find('blobs/sha256/abc')!;
      appendFileSync(join(archive, 'blobs/sha256/abc'), Buffer.alloc(1 << 20, 'x'));
      expect(member.read().toString()).toBe('layer bytes');
      expect(await text(member.stream())).toBe('layer bytes');
    } finally {
      files.close();
    }
  });
});
