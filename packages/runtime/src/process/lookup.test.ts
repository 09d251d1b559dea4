import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { lsetxattr, mknod } from '@box/sys';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CommandNotExecutableError, CommandNotFoundError } from '../errors.js';
import type { Mount } from '../spec.js';
import { lookupCommand } from './lookup.js';

const S_IFCHR = 0o020000;

let top: string;
let upper: string;
let lower: string;

function file(root: string, path: string, mode: number): void {
  mkdirSync(dirname(join(root, path)), { recursive: true });
  writeFileSync(join(root, path), '#!/bin/sh\n');
  chmodSync(join(root, path), mode);
}

beforeAll(() => {
  top = mkdtempSync(join(tmpdir(), 'box-lookup-'));
  lower = join(top, 'lower');
  upper = join(top, 'upper');
  file(lower, 'bin/sh', 0o755);
  file(lower, 'bin/plain', 0o644);
  file(lower, 'bin/only-owner-x', 0o744);
  mkdirSync(join(lower, 'bin/adir'));
  file(lower, 'usr/bin/tool', 0o755);
  file(lower, 'bin/tool', 0o755);
  file(lower, 'usr/local/bin/denied', 0o600);
  file(lower, 'bin/denied', 0o755);
  file(lower, 'app/run.sh', 0o755);
  symlinkSync('sh', join(lower, 'bin/relative-link'));
  symlinkSync('/bin/sh', join(lower, 'bin/absolute-link'));
  symlinkSync('/usr/bin/env', join(lower, 'bin/host-only')); // exists on the host, not in the rootfs
  symlinkSync('/bin/adir', join(lower, 'bin/dir-link'));
  mkdirSync(join(upper, 'bin'), { recursive: true });
  file(upper, 'bin/upper-only', 0o755);
  file(upper, 'bin/shadowed', 0o644);
  file(lower, 'bin/shadowed', 0o755);
});

afterAll(() => rmSync(top, { recursive: true, force: true }));

const PATH = ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'];

function error(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected an error');
}

describe('lookupCommand: found', () => {
  it('takes a path with a slash as is', () => {
    expect(lookupCommand(lower, '/bin/sh', PATH, '/')).toBe('/bin/sh');
  });

  it('resolves a relative path against cwd', () => {
    expect(lookupCommand(lower, './run.sh', PATH, '/app')).toBe('/app/run.sh');
    expect(lookupCommand(lower, 'bin/sh', PATH, '/')).toBe('/bin/sh');
    // ".." is left for the kernel: /app may be a symlink.
    expect(lookupCommand(lower, '../bin/sh', PATH, '/app')).toBe('/app/../bin/sh');
  });

  it('searches PATH in order and returns the first executable', () => {
    expect(lookupCommand(lower, 'tool', PATH, '/')).toBe('/usr/bin/tool');
    expect(lookupCommand(lower, 'tool', ['PATH=/bin:/usr/bin'], '/')).toBe('/bin/tool');
  });

  it('uses the last PATH entry of env, and the default PATH without one', () => {
    expect(lookupCommand(lower, 'tool', ['PATH=/usr/bin', 'PATH=/bin'], '/')).toBe('/bin/tool');
    expect(lookupCommand(lower, 'tool', [], '/')).toBe('/usr/bin/tool');
  });

  it('skips a non-executable match and goes on, as execvp does', () => {
    expect(lookupCommand(lower, 'denied', PATH, '/')).toBe('/bin/denied');
  });

  it('searches cwd for an empty PATH entry', () => {
    expect(lookupCommand(lower, 'run.sh', ['PATH=/bin:'], '/app')).toBe('/app/run.sh');
  });

  it('follows symlinks inside the rootfs', () => {
    expect(lookupCommand(lower, 'relative-link', PATH, '/')).toBe('/bin/relative-link');
    expect(lookupCommand(lower, 'absolute-link', PATH, '/')).toBe('/bin/absolute-link');
  });

  it('accepts a file with any execute bit', () => {
    expect(lookupCommand(lower, 'only-owner-x', PATH, '/')).toBe('/bin/only-owner-x');
  });

  it('looks through the layers of an overlay, top first', () => {
    expect(lookupCommand([upper, lower], 'upper-only', PATH, '/')).toBe('/bin/upper-only');
    expect(lookupCommand([upper, lower], 'sh', PATH, '/')).toBe('/bin/sh');
  });
});

describe('lookupCommand: not found (exit 127)', () => {
  it('fails for a name on no PATH entry', () => {
    const e = error(() => lookupCommand(lower, 'missing', PATH, '/'));
    expect(e).toBeInstanceOf(CommandNotFoundError);
    expect(e).toMatchObject({ code: 'ENOCMD', command: 'missing' });
    expect(e.message).toBe('exec: "missing": executable file not found in $PATH');
  });

  it('fails for a missing path', () => {
    const e = error(() => lookupCommand(lower, '/bin/missing', PATH, '/'));
    expect(e).toBeInstanceOf(CommandNotFoundError);
    expect(e.message).toBe('exec: "/bin/missing": no such file or directory');
  });

  it('fails for an empty command', () => {
    expect(error(() => lookupCommand(lower, '', PATH, '/'))).toBeInstanceOf(CommandNotFoundError);
  });

  it('does not find host files through an absolute symlink in the rootfs', () => {
    expect(error(() => lookupCommand(lower, 'host-only', PATH, '/'))).toBeInstanceOf(CommandNotFoundError);
    expect(error(() => lookupCommand(lower, '/usr/bin/env', PATH, '/'))).toBeInstanceOf(CommandNotFoundError);
  });

  it('does not find a program that is only in a PATH directory not listed', () => {
    expect(error(() => lookupCommand(lower, 'tool', ['PATH=/sbin'], '/'))).toBeInstanceOf(
      CommandNotFoundError,
    );
  });

  it('fails when no layer has it', () => {
    expect(error(() => lookupCommand([upper, lower], 'nowhere', PATH, '/'))).toBeInstanceOf(
      CommandNotFoundError,
    );
  });
});

describe('lookupCommand: not executable (exit 126)', () => {
  it('fails for a file without execute bits', () => {
    const e = error(() => lookupCommand(lower, '/bin/plain', PATH, '/'));
    expect(e).toBeInstanceOf(CommandNotExecutableError);
    expect(e).toMatchObject({ code: 'ENOEXECCMD', command: '/bin/plain' });
    expect(e.message).toBe('exec: "/bin/plain": permission denied');
  });

  it('fails for a directory', () => {
    const e = error(() => lookupCommand(lower, '/bin/adir', PATH, '/'));
    expect(e).toBeInstanceOf(CommandNotExecutableError);
    expect(e.message).toBe('exec: "/bin/adir": is a directory');
    expect(error(() => lookupCommand(lower, '/bin/dir-link', PATH, '/')).message).toContain('is a directory');
  });

  it('reports a PATH search that found only non-executable files as 126', () => {
    const e = error(() => lookupCommand(lower, 'plain', PATH, '/'));
    expect(e).toBeInstanceOf(CommandNotExecutableError);
    expect(e.message).toBe('exec: "plain": permission denied');
    expect(error(() => lookupCommand(lower, 'adir', PATH, '/'))).toBeInstanceOf(CommandNotExecutableError);
  });

  it('lets an upper layer shadow an executable in a lower one', () => {
    expect(error(() => lookupCommand([upper, lower], '/bin/shadowed', PATH, '/'))).toBeInstanceOf(
      CommandNotExecutableError,
    );
    expect(lookupCommand(lower, '/bin/shadowed', PATH, '/')).toBe('/bin/shadowed');
  });
});

describe('lookupCommand: bind mounts (-v, volumes)', () => {
  let tools: string;
  let volume: string;
  let single: string;
  let mounts: Mount[];

  beforeAll(() => {
    tools = join(top, 'host-tools');
    file(tools, 'prog', 0o755);
    file(tools, 'plain', 0o644);
    file(tools, 'sub/deep', 0o755);
    symlinkSync('prog', join(tools, 'relative-link'));
    symlinkSync('/bin/sh', join(tools, 'into-image')); // the container's /bin/sh, not the host's
    symlinkSync('/usr/bin/env', join(tools, 'host-only')); // on the host, not in the container
    symlinkSync('../../../../../../usr/bin/env', join(tools, 'climbing'));
    volume = join(top, 'volume-data');
    file(volume, 'run.sh', 0o755);
    single = join(top, 'single-file');
    writeFileSync(single, '#!/bin/sh\n');
    chmodSync(single, 0o755);
    file(lower, 'srv/.keep', 0o644);
    symlinkSync('/srv', join(lower, 'linked')); // a mount through it lands on /srv
    mounts = [
      { destination: '/opt/tools', type: 'bind', source: tools, options: ['rbind', 'rw'] },
      { destination: '/linked/vol', type: 'bind', source: volume, options: ['rbind', 'ro'] },
      { destination: '/usr/local/bin/single', type: 'bind', source: single, options: ['bind'] },
      { destination: '/noexec', type: 'bind', source: tools, options: ['rbind', 'noexec'] },
      { destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid'] },
    ];
  });

  it('finds a program on a mounted directory, by path and through PATH', () => {
    expect(lookupCommand([upper, lower], '/opt/tools/prog', PATH, '/', mounts)).toBe('/opt/tools/prog');
    expect(lookupCommand([upper, lower], 'prog', ['PATH=/bin:/opt/tools'], '/', mounts)).toBe(
      '/opt/tools/prog',
    );
    expect(lookupCommand([upper, lower], './deep', PATH, '/opt/tools/sub', mounts)).toBe(
      '/opt/tools/sub/deep',
    );
    expect(lookupCommand(lower, '/opt/tools/prog', PATH, '/', mounts)).toBe('/opt/tools/prog');
    // Without the mounts, only the image's files.
    expect(error(() => lookupCommand([upper, lower], '/opt/tools/prog', PATH, '/'))).toBeInstanceOf(
      CommandNotFoundError,
    );
  });

  it('mounts where the image sends the destination, as the set-up does', () => {
    // /linked is a symlink to /srv in the image: the volume is mounted on /srv/vol.
    expect(lookupCommand([upper, lower], '/srv/vol/run.sh', PATH, '/', mounts)).toBe('/srv/vol/run.sh');
    expect(lookupCommand([upper, lower], '/linked/vol/run.sh', PATH, '/', mounts)).toBe('/linked/vol/run.sh');
  });

  it('finds a file mounted on its own', () => {
    expect(lookupCommand([upper, lower], 'single', PATH, '/', mounts)).toBe('/usr/local/bin/single');
    expect(
      error(() => lookupCommand([upper, lower], '/usr/local/bin/single/x', PATH, '/', mounts)),
    ).toBeInstanceOf(CommandNotFoundError);
  });

  it('follows symlinks on a mount inside the container, never on the host', () => {
    expect(lookupCommand([upper, lower], '/opt/tools/relative-link', PATH, '/', mounts)).toBe(
      '/opt/tools/relative-link',
    );
    expect(lookupCommand([upper, lower], '/opt/tools/into-image', PATH, '/', mounts)).toBe(
      '/opt/tools/into-image',
    );
    for (const name of ['/opt/tools/host-only', '/opt/tools/climbing']) {
      expect(error(() => lookupCommand([upper, lower], name, PATH, '/', mounts))).toBeInstanceOf(
        CommandNotFoundError,
      );
    }
  });

  it('reports what a mount cannot execute as 126', () => {
    expect(error(() => lookupCommand([upper, lower], '/opt/tools/plain', PATH, '/', mounts)).message).toBe(
      'exec: "/opt/tools/plain": permission denied',
    );
    expect(error(() => lookupCommand([upper, lower], '/opt/tools/sub', PATH, '/', mounts)).message).toBe(
      'exec: "/opt/tools/sub": is a directory',
    );
    expect(error(() => lookupCommand([upper, lower], '/noexec/prog', PATH, '/', mounts))).toBeInstanceOf(
      CommandNotExecutableError,
    );
  });

  it('lets a later mount on a directory above cover an earlier one', () => {
    const covered: Mount[] = [
      { destination: '/opt/tools', type: 'bind', source: tools, options: ['rbind'] },
      { destination: '/opt', type: 'bind', source: volume, options: ['rbind'] },
    ];
    expect(error(() => lookupCommand([upper, lower], '/opt/tools/prog', PATH, '/', covered))).toBeInstanceOf(
      CommandNotFoundError,
    );
    expect(lookupCommand([upper, lower], '/opt/run.sh', PATH, '/', covered)).toBe('/opt/run.sh');
    // In the other order the deeper one is on top.
    expect(lookupCommand([upper, lower], '/opt/tools/prog', PATH, '/', [covered[1]!, covered[0]!])).toBe(
      '/opt/tools/prog',
    );
  });
});

describe('lookupCommand: the union of layers, as overlayfs merges them', () => {
  let layers: string[];
  let top3: string;
  let mid3: string;
  let low3: string;

  const whiteout = (root: string, path: string) => {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    mknod(join(root, path), S_IFCHR, 0, 0);
  };
  const opaque = (root: string, path: string, xattr = 'trusted.overlay.opaque') => {
    mkdirSync(join(root, path), { recursive: true });
    lsetxattr(join(root, path), xattr, 'y');
  };
  const find = (command: string, more: { cwd?: string; userxattr?: boolean } = {}) =>
    lookupCommand(layers, command, ['PATH=/bin:/usr/bin'], more.cwd ?? '/', [], {
      userxattr: more.userxattr,
    });
  const notFound = (command: string, more: { userxattr?: boolean } = {}) =>
    expect(error(() => find(command, more))).toBeInstanceOf(CommandNotFoundError);

  beforeAll(() => {
    const dir = join(top, 'union');
    [top3, mid3, low3] = ['top', 'mid', 'low'].map((name) => join(dir, name)) as [string, string, string];
    layers = [top3, mid3, low3];
    for (const layer of layers) mkdirSync(join(layer, 'bin'), { recursive: true });
    file(low3, 'bin/busybox', 0o755);
    // A symlink in an upper layer to a file only a lower one has.
    symlinkSync('busybox', join(top3, 'bin/sh'));
    symlinkSync('/bin/busybox', join(top3, 'bin/ash'));
    mkdirSync(join(mid3, 'usr/bin'), { recursive: true });
    symlinkSync('../../bin/busybox', join(mid3, 'usr/bin/env'));
    // Whiteouts: of a file, of a directory, in a middle layer, and in the lowest one.
    file(low3, 'bin/gone', 0o755);
    whiteout(top3, 'bin/gone');
    file(low3, 'opt/tools/tool', 0o755);
    whiteout(top3, 'opt');
    file(low3, 'srv/old', 0o755);
    whiteout(mid3, 'srv');
    file(top3, 'srv/new', 0o755);
    whiteout(low3, 'bin/never');
    // Opaque directories, marked for an overlay with and without userxattr.
    file(low3, 'app/lower-only', 0o755);
    opaque(top3, 'app');
    file(top3, 'app/upper-own', 0o755);
    file(low3, 'uapp/lower-only', 0o755);
    opaque(top3, 'uapp', 'user.overlay.opaque');
    // A file in an upper layer where a lower one has a directory.
    file(low3, 'data/tool', 0o755);
    writeFileSync(join(top3, 'data'), 'not a directory\n');
    // A symlink of a lower layer that an upper directory hides: never followed (on the host
    // it would lead to /usr/bin/env).
    symlinkSync('/usr/bin', join(low3, 'hidden'));
    mkdirSync(join(top3, 'hidden'));
    // A merged-/usr image: /bin -> usr/bin in the lowest layer, a command added above.
    const merged = join(dir, 'merged');
    mkdirSync(join(merged, 'low/usr/bin'), { recursive: true });
    symlinkSync('usr/bin', join(merged, 'low/bin'));
    file(join(merged, 'low'), 'usr/bin/busybox', 0o755);
    mkdirSync(join(merged, 'top/usr/bin'), { recursive: true });
    symlinkSync('busybox', join(merged, 'top/usr/bin/sh'));
  });

  it('follows a symlink of an upper layer to a file only a lower layer has', () => {
    expect(find('sh')).toBe('/bin/sh');
    expect(find('ash')).toBe('/bin/ash');
    expect(find('/usr/bin/env')).toBe('/usr/bin/env');
    expect(find('./sh', { cwd: '/bin' })).toBe('/bin/sh');
  });

  it('follows symlinks through the layers of a merged-/usr image', () => {
    const merged = join(top, 'union/merged');
    const both = [join(merged, 'top'), join(merged, 'low')];
    expect(lookupCommand(both, 'sh', ['PATH=/bin'], '/')).toBe('/bin/sh');
    expect(lookupCommand(both, '/bin/busybox', [], '/')).toBe('/bin/busybox');
  });

  it('hides what an upper whiteout deletes: a file, a whole directory, in any layer above', () => {
    notFound('gone');
    notFound('/bin/gone');
    notFound('/opt/tools/tool');
    notFound('/srv/old');
    expect(find('/srv/new')).toBe('/srv/new');
    notFound('/bin/never'); // a whiteout in the lowest layer is no file either
    // Without the layer that deletes it, the file is there.
    expect(lookupCommand([mid3, low3], '/bin/gone', [], '/')).toBe('/bin/gone');
    expect(lookupCommand([low3], '/opt/tools/tool', [], '/')).toBe('/opt/tools/tool');
  });

  it('hides a lower directory’s files under an opaque directory, not the opaque one’s own', () => {
    notFound('/app/lower-only');
    expect(find('/app/upper-own')).toBe('/app/upper-own');
  });

  it('reads opaque directories from the xattrs the overlay is mounted with', () => {
    expect(find('/uapp/lower-only')).toBe('/uapp/lower-only');
    notFound('/uapp/lower-only', { userxattr: true });
    expect(find('/app/lower-only', { userxattr: true })).toBe('/app/lower-only');
  });

  it('hides a lower directory under an upper file', () => {
    notFound('/data/tool');
  });

  it('never follows a lower symlink that an upper directory hides', () => {
    notFound('/hidden/env');
  });

  it('takes a 0/0 character device in a plain rootfs as a device, not a whiteout', () => {
    const plain = join(top, 'union/plain');
    whiteout(plain, 'bin/device');
    expect(error(() => lookupCommand(plain, '/bin/device', [], '/'))).toBeInstanceOf(
      CommandNotExecutableError,
    );
  });
});
