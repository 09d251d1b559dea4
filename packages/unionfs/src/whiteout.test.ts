import { lstatSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { isUnionfsError } from './errors.js';
import { withOverlay } from './overlay.js';
import { cleanupTemp, mountsUnder, tempDir } from './test-utils.js';
import {
  isOpaque,
  isOverlayWhiteout,
  markOpaque,
  overlayWhiteoutHooks,
  toOverlayWhiteout,
} from './whiteout.js';
import { forceXattrBackend, parseGetfattrDump, xattrBackend } from './xattr.js';

afterAll(cleanupTemp);
afterEach(() => forceXattrBackend(undefined));

describe.each(['sys', 'tools'] as const)('whiteouts and opaque dirs (%s backend)', (kind) => {
  it('makes 0/0 character devices and opaque xattrs that the functions detect', () => {
    forceXattrBackend(kind);
    expect(xattrBackend().kind).toBe(kind);
    const dir = tempDir();
    writeFileSync(join(dir, 'gone'), 'x');
    mkdirSync(join(dir, 'gonedir'));
    writeFileSync(join(dir, 'gonedir', 'f'), 'x');
    toOverlayWhiteout(dir, 'gone');
    toOverlayWhiteout(dir, 'gonedir');
    toOverlayWhiteout(dir, 'never-there');
    for (const name of ['gone', 'gonedir', 'never-there']) {
      const st = lstatSync(join(dir, name));
      expect(isOverlayWhiteout(st)).toBe(true);
      expect(st.rdev).toBe(0);
    }
    expect(isOverlayWhiteout(lstatSync('/dev/null'))).toBe(false);
    mkdirSync(join(dir, 'o'));
    expect(isOpaque(join(dir, 'o'))).toBe(false);
    markOpaque(join(dir, 'o'));
    expect(isOpaque(join(dir, 'o'))).toBe(true);
    expect(xattrBackend().get(join(dir, 'o'), 'trusted.overlay.opaque')?.toString()).toBe('y');
    markOpaque(join(dir, 'o'), { userxattr: true });
    expect(isOpaque(join(dir, 'o'), { userxattr: true })).toBe(true);
    expect(
      xattrBackend()
        .list(join(dir, 'o'))
        .map(([k]) => k),
    ).toEqual(['trusted.overlay.opaque', 'user.overlay.opaque']);
  });

  it('refuses names and directories that could escape the layer', () => {
    forceXattrBackend(kind);
    const dir = tempDir();
    mkdirSync(join(dir, 'real'));
    symlinkSync(join(dir, 'real'), join(dir, 'link'));
    for (const bad of ['', '.', '..', 'a/b', '.wh.x']) {
      expect(() => toOverlayWhiteout(dir, bad)).toThrow();
    }
    try {
      toOverlayWhiteout(join(dir, 'link'), 'x');
      throw new Error('made a whiteout through a symlink');
    } catch (error) {
      expect(isUnionfsError(error, 'EUNIONFSPATH')).toBe(true);
    }
    expect(() => markOpaque(join(dir, 'link'))).toThrow(/not a directory/);
    expect(readdirSync(join(dir, 'real'))).toEqual([]);
  });
});

describe('whiteout hooks round trip', () => {
  it('hides deleted files and the lower contents of opaque dirs when the layer is a lower', async () => {
    const root = tempDir();
    const base = join(root, 'base');
    const layer = join(root, 'layer');
    for (const d of [
      base,
      join(base, 'etc'),
      join(base, 'opq'),
      layer,
      join(layer, 'etc'),
      join(layer, 'opq'),
    ]) {
      mkdirSync(d, { recursive: true });
    }
    writeFileSync(join(base, 'etc', 'passwd'), 'root');
    writeFileSync(join(base, 'etc', 'keep'), 'keep');
    writeFileSync(join(base, 'opq', 'old'), 'old');
    writeFileSync(join(layer, 'opq', 'new'), 'new');
    // What the unpacker does for `etc/.wh.passwd` and `opq/.wh..wh..opq`:
    const hooks = overlayWhiteoutHooks();
    hooks.onWhiteout(join(layer, 'etc'), 'passwd');
    hooks.onOpaque(join(layer, 'opq'));

    const seen = await withOverlay({ lowerdirs: [layer, base], readonly: true }, (m) => ({
      etc: readdirSync(join(m, 'etc')),
      opq: readdirSync(join(m, 'opq')),
    }));
    expect(seen).toEqual({ etc: ['keep'], opq: ['new'] });
    expect(mountsUnder(root)).toEqual([]);
  });
});

describe('parseGetfattrDump', () => {
  it('reads hex values and octal-escaped names', () => {
    const dump =
      '# file: /t/we\\134ir=d\\012x\nuser.y=0x31\n\n# file: /t/a\nuser.b=0x00ff\nuser.a=0sAQI=\n\n';
    const parsed = parseGetfattrDump(dump);
    expect([...parsed.keys()]).toEqual(['/t/we\\ir=d\nx', '/t/a']);
    expect(parsed.get('/t/a')).toEqual([
      ['user.a', Buffer.from([1, 2])],
      ['user.b', Buffer.from([0, 255])],
    ]);
  });
});
