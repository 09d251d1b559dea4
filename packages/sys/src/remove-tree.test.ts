import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { removeTree } from './remove-tree.js';

const top = mkdtempSync(join(tmpdir(), 'box-remove-tree-'));
afterAll(() => rmSync(top, { recursive: true, force: true }));

describe('removeTree', () => {
  it("removes a tree deeper than Node's rmSync can walk, and nothing a link leads to", () => {
    const tree = join(top, 'deep');
    const outside = join(top, 'outside');
    mkdirSync(outside);
    writeFileSync(join(outside, 'kept'), 'kept');
    mkdirSync(tree);
    symlinkSync(outside, join(tree, 'link'));
    // 2000 levels: Node's recursive rmSync overflows its stack (a container can make deeper ones).
    execFileSync('mkdir', ['-p', join(tree, 'a/'.repeat(2000))]);
    expect(() => rmSync(tree, { recursive: true, force: true })).toThrow();
    removeTree(tree);
    expect(existsSync(tree)).toBe(false);
    expect(existsSync(join(outside, 'kept'))).toBe(true);
    removeTree(tree); // gone already: fine
  });

  it('never removes what a mount below the tree shows, of the same file system or not', () => {
    const victim = join(top, 'victim');
    mkdirSync(victim);
    writeFileSync(join(victim, 'keep'), 'keep');
    for (const depth of [1, 2000]) {
      const tree = join(top, `mounted-${depth}`);
      const sub = join(tree, 'a/'.repeat(depth - 1), 'sub');
      mkdirSync(sub, { recursive: true });
      execFileSync('mount', ['--bind', victim, sub]);
      try {
        expect(() => removeTree(tree)).toThrow(depth === 1 ? /EBUSY/ : /is mounted in it/);
        expect(existsSync(join(victim, 'keep'))).toBe(true);
      } finally {
        execFileSync('umount', [sub]);
      }
      removeTree(tree);
      expect(existsSync(tree)).toBe(false);
    }
  });
});
