import { linkSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { treeSize } from './size.js';
import { cleanupTemp, tempDir } from './test-utils.js';
import { toOverlayWhiteout } from './whiteout.js';

afterEach(cleanupTemp);

describe('treeSize', () => {
  it('sums files and link targets, not directories; a hard link once; a whiteout is nothing', () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'a/b'), { recursive: true });
    writeFileSync(join(dir, 'a/b/ten'), '0123456789');
    writeFileSync(join(dir, 'two'), 'xy');
    linkSync(join(dir, 'two'), join(dir, 'a/again'));
    symlinkSync('abc', join(dir, 'link'));
    toOverlayWhiteout(dir, 'gone');
    expect(treeSize(dir)).toBe(10 + 2 + 3);
  });

  it('is 0 for a missing or empty directory', () => {
    expect(treeSize(join(tempDir(), 'none'))).toBe(0);
    expect(treeSize(tempDir())).toBe(0);
  });
});
