import { execFileSync } from 'node:child_process';
import {
  chownSync,
  linkSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { COPY_FALLBACK_MESSAGE, prepareCopyRootfs, selectDriver } from './copy.js';
import { withOverlay } from './overlay.js';
import { cleanupTemp, tempDir } from './test-utils.js';
import { markOpaque, toOverlayWhiteout } from './whiteout.js';
import { xattrBackend } from './xattr.js';

afterAll(cleanupTemp);

/** Every path below dir with its type, mode, owner, and content or link target. */
function snapshot(dir: string): string[] {
  const out = execFileSync('find', [dir, '-mindepth', '1', '-printf', '%P %y %m %U:%G %l\\n'], {
    encoding: 'utf8',
  });
  return out
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const path = line.split(' ')[0]!;
      const st = lstatSync(join(dir, path));
      return st.isFile() ? `${line} ${readFileSync(join(dir, path), 'utf8')}` : line;
    })
    .sort();
}

describe('prepareCopyRootfs', () => {
  it('materialises the layers as the overlay shows them', async () => {
    const root = tempDir();
    const [bottom, middle, top] = ['bottom', 'middle', 'top'].map((d) => join(root, d)) as [
      string,
      string,
      string,
    ];
    mkdirSync(join(bottom, 'etc'), { recursive: true });
    mkdirSync(join(bottom, 'opt', 'old'), { recursive: true });
    mkdirSync(join(bottom, 'lib'), { recursive: true });
    writeFileSync(join(bottom, 'etc', 'passwd'), 'root');
    writeFileSync(join(bottom, 'etc', 'group'), 'root');
    writeFileSync(join(bottom, 'opt', 'old', 'f'), 'old');
    writeFileSync(join(bottom, 'lib', 'x'), 'x');
    symlinkSync('/etc', join(bottom, 'link'));
    mkdirSync(join(middle, 'etc'), { recursive: true });
    mkdirSync(join(middle, 'opt'), { recursive: true });
    writeFileSync(join(middle, 'etc', 'group'), 'root,users');
    toOverlayWhiteout(join(middle, 'etc'), 'passwd');
    toOverlayWhiteout(middle, 'lib');
    mkdirSync(join(top, 'opt'), { recursive: true });
    markOpaque(join(top, 'opt'));
    writeFileSync(join(top, 'opt', 'new'), 'new');
    mkdirSync(join(top, 'link')); // a dir replaces the lower symlink (never followed)
    writeFileSync(join(top, 'link', 'inside'), 'inside');
    writeFileSync(join(top, 'hard1'), 'hard');
    linkSync(join(top, 'hard1'), join(top, 'hard2'));
    chownSync(join(top, 'hard1'), 1000, 1000);
    xattrBackend().set(join(top, 'hard1'), 'user.k', 'v');

    const lowerdirs = [top, middle, bottom];
    const target = join(root, 'rootfs');
    const warnings: string[] = [];
    const stats = prepareCopyRootfs(lowerdirs, target, { onWarning: (m) => warnings.push(m) });
    expect(warnings).toEqual([COPY_FALLBACK_MESSAGE]);
    expect(stats.whiteouts).toBe(2);
    const merged = await withOverlay({ lowerdirs, readonly: true }, (m) => snapshot(m));
    expect(snapshot(target)).toEqual(merged);
    expect(lstatSync(join(target, 'link')).isDirectory()).toBe(true);
    expect(statSync(join(target, 'hard1')).ino).toBe(statSync(join(target, 'hard2')).ino);
    expect(xattrBackend().get(join(target, 'hard1'), 'user.k')?.toString()).toBe('v');
    expect(xattrBackend().get(join(target, 'opt'), 'trusted.overlay.opaque')).toBeNull();
    expect(readFileSync(join(bottom, 'etc', 'passwd'), 'utf8')).toBe('root'); // layers untouched
    expect(() => prepareCopyRootfs(lowerdirs, target)).toThrow(/empty directory/);
  });

  it('picks overlay where it works', async () => {
    expect(await selectDriver()).toEqual({ driver: 'overlay' });
  });
});
