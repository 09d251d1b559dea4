import { execFileSync } from 'node:child_process';
import { mkdirSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { layerChanges } from './changes.js';
import { cleanupTemp, tempDir } from './test-utils.js';
import { markOpaque, toOverlayWhiteout } from './whiteout.js';

afterEach(cleanupTemp);

const lines = (upper: string, lowers: string[], skip?: (p: string) => boolean) =>
  layerChanges(upper, lowers, { skip }).map((c) => `${c.kind} ${c.path}`);

/** A directory tree: keys ending in / are directories. */
function tree(root: string, entries: string[]): string {
  for (const entry of entries) {
    if (entry.endsWith('/')) mkdirSync(join(root, entry), { recursive: true });
    else writeFileSync(join(root, entry), entry);
  }
  return root;
}

describe('layerChanges', () => {
  it("lists A/C/D in walk order, parents of additions and deletions as C, as docker's diff", () => {
    const lower = tree(tempDir(), ['etc/', 'etc/passwd', 'etc/group', 'bin/', 'bin/sh', 'var/', 'var/log/']);
    const upper = tree(tempDir(), ['etc/', 'etc/passwd', 'etc/new', 'tmp/', 'tmp/made', 'var/', 'var/log/']);
    toOverlayWhiteout(join(upper, 'etc'), 'group');
    toOverlayWhiteout(upper, 'bin');
    // Copied up with the lower's times: no change of its own.
    utimesSync(join(upper, 'var'), new Date(0), new Date(0));
    utimesSync(join(lower, 'var'), new Date(0), new Date(0));
    utimesSync(join(upper, 'var/log'), new Date(0), new Date(0));
    utimesSync(join(lower, 'var/log'), new Date(0), new Date(0));
    expect(lines(upper, [lower])).toEqual([
      'D /bin',
      'C /etc',
      'D /etc/group',
      'A /etc/new',
      'C /etc/passwd',
      'A /tmp',
      'A /tmp/made',
    ]);
  });

  it('a parent unchanged itself is still listed before an addition in it', () => {
    const lower = tree(tempDir(), ['srv/']);
    const upper = tree(tempDir(), ['srv/', 'srv/data']);
    utimesSync(join(upper, 'srv'), new Date(0), new Date(0));
    utimesSync(join(lower, 'srv'), new Date(0), new Date(0));
    expect(lines(upper, [lower])).toEqual(['C /srv', 'A /srv/data']);
  });

  it('fuse-overlayfs’s opaque marks (fuseOverlay): the directory is D, its two mark entries are no change', () => {
    const base = tree(tempDir(), ['opt/', 'opt/old']);
    const upper = tree(tempDir(), ['opt/', 'opt/fresh', 'opt/.wh..wh..opq']);
    writeFileSync(join(upper, 'opt/.wh..wh..opq'), '');
    execFileSync('setfattr', ['-n', 'user.fuseoverlayfs.opaque', '-v', 'y', join(upper, 'opt')]);
    execFileSync('mknod', [join(upper, 'opt/.wh..opq'), 'c', '0', '0']);
    const changes = (fuseOverlay: boolean) =>
      layerChanges(upper, [base], { userxattr: true, fuseOverlay }).map((c) => `${c.kind} ${c.path}`);
    expect(changes(true)).toEqual(['D /opt', 'A /opt/fresh']);
    // The kernel's overlay reads none of it: a container's own files.
    expect(changes(false)).toEqual(['C /opt', 'D /opt/.wh..opq', 'A /opt/.wh..wh..opq', 'A /opt/fresh']);
  });

  it('an opaque directory is D, what is in it A or C; a whiteout in the image hides what is below', () => {
    const base = tree(tempDir(), ['opt/', 'opt/old', 'gone']);
    const top = tree(tempDir(), []);
    toOverlayWhiteout(top, 'gone');
    const upper = tree(tempDir(), ['opt/', 'opt/fresh', 'gone']);
    markOpaque(join(upper, 'opt'));
    expect(lines(upper, [top, base])).toEqual(['A /gone', 'D /opt', 'A /opt/fresh']);
  });

  it("never looks below a layer's symlink: the path is new", () => {
    const outside = tree(tempDir(), ['secret/', 'secret/key']);
    const lower = tempDir();
    symlinkSync(join(outside, 'secret'), join(lower, 'data'));
    const upper = tree(tempDir(), ['data/', 'data/key']);
    markOpaque(join(upper, 'data'));
    expect(lines(upper, [lower])).toEqual(['D /data', 'A /data/key']);
    const plain = tree(tempDir(), ['data/', 'data/key']);
    expect(lines(plain, [lower])).toEqual(['C /data', 'A /data/key']);
  });

  it('leaves out skipped paths and directories that hold nothing else', () => {
    const lower = tree(tempDir(), ['etc/', 'etc/passwd']);
    const upper = tree(tempDir(), ['etc/', 'etc/hosts', 'etc/hostname', 'run/', 'run/app/']);
    const skip = (p: string) => p === '/etc/hosts' || p === '/etc/hostname';
    expect(lines(upper, [lower], skip)).toEqual(['A /run', 'A /run/app']);
    writeFileSync(join(upper, 'etc/mine'), '');
    expect(lines(upper, [lower], skip)).toEqual(['C /etc', 'A /etc/mine', 'A /run', 'A /run/app']);
  });
});
