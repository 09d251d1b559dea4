import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
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

  it('of a tree that changes while it goes (changing): never removes what a swapped-in symlink leads to', async () => {
    // A container sharing the tree waits until the removal is inside `d`, then puts a symlink to
    // a host directory in its place: a walk by path goes on removing `d/fNNNN` in the host's.
    const tree = join(top, 'changing');
    const host = join(top, 'host');
    const COUNT = 20000;
    mkdirSync(join(tree, 'd'), { recursive: true });
    mkdirSync(host);
    for (let i = 0; i < COUNT; i++) {
      const name = `f${String(i).padStart(5, '0')}`;
      writeFileSync(join(tree, 'd', name), '');
      writeFileSync(join(host, name), '');
    }
    const swap = [
      'import os, sys',
      'd = os.path.join(sys.argv[1], "d")',
      'print("ready", flush=True)',
      `while len(os.listdir(d)) > ${COUNT - 10}: pass`,
      'os.rename(d, d + ".real"); os.symlink(sys.argv[2], d)',
      'print("swapped", flush=True)',
    ].join('\n');
    const swapper = spawn('python3', ['-c', swap, tree, host], { stdio: ['ignore', 'pipe', 'inherit'] });
    let said = '';
    swapper.stdout.on('data', (chunk: Buffer) => {
      said += chunk.toString();
    });
    const exited = new Promise((resolve) => swapper.once('exit', resolve));
    try {
      while (!said.includes('ready')) await new Promise((resolve) => setTimeout(resolve, 10));
      let error: unknown;
      try {
        removeTree(tree, { changing: true });
      } catch (e) {
        error = e;
      }
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 2000))]);
      // The swap came while the removal was in `d` (else this test shows nothing).
      expect(said).toContain('swapped');
      expect(readdirSync(host)).toHaveLength(COUNT);
      expect(error).toBeUndefined();
      expect(existsSync(tree)).toBe(false);
    } finally {
      swapper.kill('SIGKILL');
      rmSync(tree, { recursive: true, force: true });
      rmSync(`${tree}/d.real`, { recursive: true, force: true });
    }
  }, 60_000);
});
