import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ContainerView, resolveInRoot } from './resolve.js';

let root: string;

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'box-resolve-'));
  mkdirSync(join(root, 'etc'));
  writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0::/root:/bin/sh\n');
  mkdirSync(join(root, 'usr/lib'), { recursive: true });
  mkdirSync(join(root, 'a/b/c'), { recursive: true });
  symlinkSync('/etc', join(root, 'abs-etc')); // absolute: must mean <root>/etc
  symlinkSync('/', join(root, 'slash'));
  symlinkSync('../../../../../../..', join(root, 'a/b/c/up')); // climbs far above the root
  symlinkSync('/../../../etc/passwd', join(root, 'abs-up'));
  symlinkSync('lib', join(root, 'usr/lib64')); // relative, same directory
  symlinkSync('../usr/lib64', join(root, 'etc/libs')); // chain: -> ../usr/lib64 -> lib
  symlinkSync('/abs-etc', join(root, 'chain')); // symlink to a symlink
  symlinkSync('missing/../../../etc', join(root, 'through-missing'));
  symlinkSync('loop2', join(root, 'loop1'));
  symlinkSync('loop1', join(root, 'loop2'));
  symlinkSync('self/x', join(root, 'self'));
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

const inside = (path: string) => join(root, path);

describe('resolveInRoot', () => {
  it('joins plain paths to the root', () => {
    expect(resolveInRoot(root, '/etc/passwd')).toBe(inside('etc/passwd'));
    expect(resolveInRoot(root, 'etc/passwd')).toBe(inside('etc/passwd'));
    expect(resolveInRoot(root, '/')).toBe(root);
    expect(resolveInRoot(root, '')).toBe(root);
    expect(resolveInRoot(root, '/./etc//passwd/')).toBe(inside('etc/passwd'));
  });

  it('keeps missing components as they are', () => {
    expect(resolveInRoot(root, '/does/not/exist')).toBe(inside('does/not/exist'));
    expect(resolveInRoot(root, '/etc/passwd/below-a-file')).toBe(inside('etc/passwd/below-a-file'));
  });

  it('never climbs above the root with ..', () => {
    expect(resolveInRoot(root, '../../../etc/passwd')).toBe(inside('etc/passwd'));
    expect(resolveInRoot(root, '/a/../../..')).toBe(root);
  });

  it('resolves absolute symlinks inside the root, not on the host', () => {
    expect(resolveInRoot(root, '/abs-etc/passwd')).toBe(inside('etc/passwd'));
    expect(resolveInRoot(root, '/abs-etc')).toBe(inside('etc'));
    expect(resolveInRoot(root, '/slash/etc/shadow')).toBe(inside('etc/shadow'));
    expect(resolveInRoot(root, '/abs-up')).toBe(inside('etc/passwd'));
    expect(resolveInRoot(root, '/chain/passwd')).toBe(inside('etc/passwd'));
  });

  it('stops ../.. chains in symlink targets at the root', () => {
    expect(resolveInRoot(root, '/a/b/c/up')).toBe(root);
    expect(resolveInRoot(root, '/a/b/c/up/etc/passwd')).toBe(inside('etc/passwd'));
    expect(resolveInRoot(root, '/through-missing/passwd')).toBe(inside('etc/passwd'));
  });

  it('follows relative symlinks and chains of them', () => {
    expect(resolveInRoot(root, '/usr/lib64/libc.so')).toBe(inside('usr/lib/libc.so'));
    expect(resolveInRoot(root, '/etc/libs/x')).toBe(inside('usr/lib/x'));
  });

  it('throws on symlink loops instead of spinning', () => {
    expect(() => resolveInRoot(root, '/loop1')).toThrow(/too many levels of symbolic links/);
    expect(() => resolveInRoot(root, '/loop2/x')).toThrow(/too many levels of symbolic links/);
    expect(() => resolveInRoot(root, '/self')).toThrow(/too many levels of symbolic links/);
  });

  it('stays inside the root for every hostile path', () => {
    const hostile = [
      '..',
      '../..',
      '/../etc/shadow',
      'abs-etc/../../..',
      'a/b/c/up/../../..',
      'slash/slash/slash/..',
      'etc/libs/../../../..',
      'through-missing/../..',
      'abs-up/../../../root',
    ];
    for (const path of hostile) {
      const resolved = resolveInRoot(root, path);
      expect(resolved === root || resolved.startsWith(`${root}/`), `${path} -> ${resolved}`).toBe(true);
    }
  });

  // Not lexically: "link/.." is the parent of the link's target, as the kernel has it.
  it('applies .. after a symlink to the symlink target, as the kernel does', () => {
    // /usr/lib64 -> lib, so /usr/lib64/.. is /usr; /a/b/c/up -> / so /a/b/c/up/../etc is /etc.
    expect(resolveInRoot(root, '/a/b/c/up/../etc')).toBe(inside('etc'));
  });

  it("takes every name below a new file system (a tmpfs) as it is: the image's files there are hidden", () => {
    const view = new ContainerView([root]);
    try {
      const tmpfs = [{ destination: '/abs-etc', fresh: true as const }];
      expect(view.resolve('/abs-etc/passwd')).toBe('/etc/passwd');
      expect(view.resolve('/abs-etc/passwd', tmpfs)).toBe('/abs-etc/passwd');
      expect(view.find('/etc/passwd')?.stats.isFile()).toBe(true);
      expect(view.find('/etc/passwd', [{ destination: '/etc', fresh: true }])).toBeUndefined();
    } finally {
      view.close();
    }
  });
});
