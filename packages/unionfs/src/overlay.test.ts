import { execFileSync, spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isUnionfsError } from './errors.js';
import { mountOverlay, overlaySupported, probeOverlay, unmountOverlay, withOverlay } from './overlay.js';
import { cleanupTemp, mountsUnder, tempDir } from './test-utils.js';

afterAll(cleanupTemp);

function layout() {
  const root = tempDir();
  const dirs = Object.fromEntries(
    ['lower1', 'lower2', 'upper', 'work', 'merged'].map((d) => {
      mkdirSync(join(root, d));
      return [d, join(root, d)];
    }),
  ) as Record<'lower1' | 'lower2' | 'upper' | 'work' | 'merged', string>;
  writeFileSync(join(dirs.lower1, 'top'), 'top');
  writeFileSync(join(dirs.lower2, 'bottom'), 'bottom');
  return { root, ...dirs };
}

describe('overlaySupported', () => {
  it('finds overlayfs on this kernel (cached), also with userxattr', async () => {
    expect(await overlaySupported()).toBe(true);
    expect(await probeOverlay()).toEqual({ supported: true });
    expect(await probeOverlay({ userxattr: true })).toEqual({ supported: true });
    expect(mountsUnder('/tmp').filter((p) => p.includes('box-overlay-probe'))).toEqual([]);
  });

  it('mounts in a user namespace with userxattr (unshare)', () => {
    const l = layout();
    // The child maps root to our uid in a new user and mount namespace, mounts there and lists.
    const data = `lowerdir=${l.lower1}:${l.lower2},upperdir=${l.upper},workdir=${l.work},userxattr`;
    const out = execFileSync(
      'unshare',
      [
        '--user',
        '--map-root-user',
        '--mount',
        'sh',
        '-c',
        `mount -t overlay overlay -o ${data} ${l.merged} && ls ${l.merged} && rm ${l.merged}/bottom`,
      ],
      { encoding: 'utf8' },
    );
    expect(out.split('\n').filter(Boolean).sort()).toEqual(['bottom', 'top']);
    expect(mountsUnder(l.root)).toEqual([]); // it lived in the child's namespace only
    expect(existsSync(join(l.upper, 'bottom'))).toBe(true); // the whiteout
  });
});

describe('mountOverlay / unmountOverlay / withOverlay', () => {
  it('mounts read-only and writable overlays', async () => {
    const l = layout();
    mountOverlay({ lowerdirs: [l.lower1, l.lower2], readonly: true, target: l.merged });
    try {
      expect(readFileSync(join(l.merged, 'bottom'), 'utf8')).toBe('bottom');
      expect(() => writeFileSync(join(l.merged, 'x'), 'x')).toThrow(/EROFS/);
    } finally {
      expect(unmountOverlay(l.merged)).toBe('unmounted');
    }
    const seen = await withOverlay(
      { lowerdirs: [l.lower1, l.lower2], upperdir: l.upper, workdir: l.work },
      (m) => {
        writeFileSync(join(m, 'new'), 'new');
        return mountsUnder(m);
      },
    );
    expect(seen).toHaveLength(1);
    expect(mountsUnder('/tmp').filter((p) => p.includes('box-overlay-'))).toEqual([]);
    expect(readFileSync(join(l.upper, 'new'), 'utf8')).toBe('new');
  });

  it('mounts a host-side view nosuid and nodev, where no other user can reach it', async () => {
    const l = layout();
    // A setuid-root program of the container's: on the host it must never run as root.
    copyFileSync('/bin/true', join(l.lower1, 'suid'));
    chmodSync(join(l.lower1, 'suid'), 0o4755);
    chmodSync(l.lower1, 0o755);
    let made = '';
    await withOverlay({ lowerdirs: [l.lower1, l.lower2], upperdir: l.upper, workdir: l.work }, (m) => {
      made = dirname(m);
      const line = readFileSync('/proc/self/mountinfo', 'utf8')
        .split('\n')
        .find((mount) => mount.split(' ')[4] === m);
      expect(line?.split(' ')[5]?.split(',')).toEqual(expect.arrayContaining(['nosuid', 'nodev']));
      // The merged root has the lower root's mode (0755); its parent keeps everyone else out.
      expect(statSync(m).mode & 0o777).toBe(0o755);
      expect(statSync(made).mode & 0o777).toBe(0o700);
      const other = spawnSync(
        'setpriv',
        ['--reuid=65534', '--regid=65534', '--clear-groups', 'cat', join(m, 'top')],
        { encoding: 'utf8' },
      );
      expect(other.stderr).toMatch(/Permission denied/);
      expect(other.status).not.toBe(0);
    });
    expect(existsSync(made)).toBe(false);
  });

  it("removes the views a killed process left mounted, never a live process's", async () => {
    const dead = spawnSync('true').pid!;
    const view = (pid: number) => {
      const dir = join(tmpdir(), `box-overlay-${pid}-AbC123`);
      mkdirSync(join(dir, 'merged'), { recursive: true, mode: 0o700 });
      execFileSync('mount', ['-t', 'tmpfs', 'tmpfs', join(dir, 'merged')]);
      return dir;
    };
    const abandoned = view(dead);
    const live = view(process.pid);
    // Another user's directory of the same name (it could swap it for a symlink): never touched.
    const foreign = join(tmpdir(), `box-overlay-${dead}-XyZ789`);
    mkdirSync(join(foreign, 'merged'), { recursive: true, mode: 0o700 });
    chownSync(foreign, 65534, 65534);
    execFileSync('mount', ['-t', 'tmpfs', 'tmpfs', join(foreign, 'merged')]);
    try {
      // The next view's mount point sweeps first.
      const l = layout();
      await withOverlay({ lowerdirs: [l.lower1, l.lower2], readonly: true }, () => undefined);
      expect(existsSync(abandoned)).toBe(false);
      expect(
        mountsUnder(tmpdir())
          .filter((p) => p.includes('box-overlay-'))
          .sort(),
      ).toEqual([join(foreign, 'merged'), join(live, 'merged')].sort());
    } finally {
      for (const dir of [abandoned, live, foreign]) {
        if (existsSync(dir)) {
          execFileSync('umount', [join(dir, 'merged')]);
          rmSync(dir, { recursive: true });
        }
      }
    }
  });

  it('mounts a view that follows no symlink when asked (noSymlinks)', async () => {
    const l = layout();
    symlinkSync(l.lower2, join(l.lower1, 'out'));
    await withOverlay({ lowerdirs: [l.lower1, l.lower2], readonly: true, noSymlinks: true }, (m) => {
      const line = readFileSync('/proc/self/mountinfo', 'utf8')
        .split('\n')
        .find((mount) => mount.split(' ')[4] === m);
      expect(line?.split(' ')[5]?.split(',')).toContain('nosymfollow');
      expect(readlinkSync(join(m, 'out'))).toBe(l.lower2);
      expect(() => readdirSync(join(m, 'out'))).toThrow(/ELOOP/);
      expect(readFileSync(join(m, 'top'), 'utf8')).toBe('top');
    });
  });

  it('leaves no mount behind when fn throws, nor when the mount is busy', async () => {
    const l = layout();
    const opts = { lowerdirs: [l.lower1, l.lower2], upperdir: l.upper, workdir: l.work, target: l.merged };
    await expect(
      withOverlay(opts, () => {
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(mountsUnder(l.root)).toEqual([]);
    let fd = -1;
    const how = await withOverlay(opts, (m) => {
      fd = openSync(join(m, 'top'), 'r'); // keeps it busy
      return 'ok';
    });
    expect(how).toBe('ok');
    expect(mountsUnder(l.root)).toEqual([]); // detached
    closeSync(fd);
  });

  it('reports mount failures with the errno and a hint', () => {
    const l = layout();
    try {
      mountOverlay({
        lowerdirs: [join(l.root, 'missing')],
        upperdir: l.upper,
        workdir: l.work,
        target: l.merged,
      });
      throw new Error('mounted');
    } catch (error) {
      expect(isUnionfsError(error, 'EUNIONFSMOUNT')).toBe(true);
      expect((error as { errno?: string }).errno).toBe('ENOENT');
    }
    expect(() =>
      mountOverlay({
        lowerdirs: [l.lower1],
        upperdir: l.upper,
        workdir: l.work,
        target: join(l.root, 'nope'),
      }),
    ).toThrow(/does not exist/);
    expect(() => unmountOverlay(l.merged)).toThrow(/cannot unmount/);
    expect(mountsUnder(l.root)).toEqual([]);
  });
});
