import {
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeFileAtomic } from './atomic.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'box-atomic-test-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('writeFileAtomic', () => {
  it('writes a new file and replaces an old one whole, with its mode whatever the umask; no temporary file stays', () => {
    const path = join(dir, 'state.json');
    const umask = process.umask(0o077);
    try {
      writeFileAtomic(path, 'first');
      expect(readFileSync(path, 'utf8')).toBe('first');
      expect(statSync(path).mode & 0o777).toBe(0o600);
      writeFileAtomic(path, Buffer.from('second, longer'), { mode: 0o644, fsync: false, syncDir: true });
      expect(readFileSync(path, 'utf8')).toBe('second, longer');
      expect(statSync(path).mode & 0o777).toBe(0o644);
    } finally {
      process.umask(umask);
    }
    expect(readdirSync(dir)).toEqual(['state.json']);
  });

  it('replaces a symlink planted at the path instead of writing through it', () => {
    const target = join(dir, 'target');
    writeFileSync(target, 'keep');
    const path = join(dir, 'link');
    symlinkSync(target, path);
    writeFileAtomic(path, 'new');
    expect(readFileSync(target, 'utf8')).toBe('keep');
    expect(lstatSync(path).isFile()).toBe(true);
    expect(readFileSync(path, 'utf8')).toBe('new');
  });

  it('a write that fails leaves what was there and no temporary file', () => {
    expect(() => writeFileAtomic(join(dir, 'missing', 'f'), 'x')).toThrow(/ENOENT/);
    // A rename onto a directory that is not empty fails: the temporary file is removed.
    const taken = join(dir, 'taken');
    mkdirSync(taken);
    writeFileSync(join(taken, 'inside'), 'old');
    expect(() => writeFileAtomic(taken, 'x')).toThrow(/EISDIR|ENOTEMPTY|EEXIST/);
    expect(readdirSync(dir)).toEqual(['taken']);
    expect(readFileSync(join(taken, 'inside'), 'utf8')).toBe('old');
  });
});
