import {
  chmodSync,
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  symlinkSync,
} from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkRootlessSetup, identityIdMappings, isRootless, rootlessDirs } from './rootless.js';

const dir = mkdtempSync(join(tmpdir(), 'box-rootless-unit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('isRootless and identityIdMappings', () => {
  it('root of the initial user namespace is not rootless, and maps every id as it is', () => {
    expect(isRootless()).toBe(false);
    expect(identityIdMappings('uid')).toEqual([{ containerID: 0, hostID: 0, size: 4294967295 }]);
    expect(identityIdMappings('gid')).toEqual([{ containerID: 0, hostID: 0, size: 4294967295 }]);
  });
});

describe('rootlessDirs', () => {
  it('puts the state root under XDG_DATA_HOME (or ~/.local/share) and runtime files under XDG_RUNTIME_DIR', () => {
    const home = join(dir, 'home');
    const run = join(dir, 'run');
    mkdirSync(run, { mode: 0o700 });
    expect(rootlessDirs({ HOME: home, XDG_RUNTIME_DIR: run })).toEqual({
      root: join(home, '.local/share/box'),
      runtimeDir: join(run, 'box'),
    });
    const made = lstatSync(join(run, 'box'));
    expect(made.isDirectory()).toBe(true);
    expect(made.mode & 0o777).toBe(0o700);
    expect(rootlessDirs({ HOME: home, XDG_RUNTIME_DIR: run, XDG_DATA_HOME: '/data' }).root).toBe('/data/box');
    // A relative XDG_DATA_HOME is not one (the XDG spec): the default is used.
    expect(rootlessDirs({ HOME: home, XDG_RUNTIME_DIR: run, XDG_DATA_HOME: 'rel' }).root).toBe(
      join(home, '.local/share/box'),
    );
    expect(rootlessDirs({ HOME: home, XDG_RUNTIME_DIR: run, BOX_ROOT: '/x/y' }).root).toBe('/x/y');
  });

  it('refuses an XDG_RUNTIME_DIR of another user, and a runtime directory that is a symlink or open', () => {
    const theirs = join(dir, 'theirs');
    mkdirSync(theirs, { mode: 0o700 });
    chownSync(theirs, 65534, 65534);
    expect(() => rootlessDirs({ HOME: dir, XDG_RUNTIME_DIR: theirs })).toThrow(
      `XDG_RUNTIME_DIR ${theirs} is not a directory of uid 0`,
    );
    const run = join(dir, 'run2');
    mkdirSync(run, { mode: 0o700 });
    symlinkSync(dir, join(run, 'box'));
    expect(() => rootlessDirs({ HOME: dir, XDG_RUNTIME_DIR: run })).toThrow(
      /is not a private directory of uid 0/,
    );
    const open = join(dir, 'run3');
    mkdirSync(join(open, 'box'), { recursive: true, mode: 0o755 });
    expect(() => rootlessDirs({ HOME: dir, XDG_RUNTIME_DIR: open })).toThrow(
      /is not a private directory of uid 0/,
    );
    // Writable by others without the sticky bit: they could swap box's directory after the checks.
    const shared = join(dir, 'run4');
    mkdirSync(shared);
    chmodSync(shared, 0o777);
    expect(() => rootlessDirs({ HOME: dir, XDG_RUNTIME_DIR: shared })).toThrow(
      `XDG_RUNTIME_DIR ${shared} may be written by other users (mode 777): refusing to use it`,
    );
    expect(existsSync(join(shared, 'box'))).toBe(false);
    chmodSync(shared, 0o1777);
    expect(rootlessDirs({ HOME: dir, XDG_RUNTIME_DIR: shared }).runtimeDir).toBe(join(shared, 'box'));
  });
});

describe('checkRootlessSetup', () => {
  const user = userInfo().username;
  const ranges = { start: 100000, count: 65536 };
  const helpers = { newuidmap: '/usr/bin/newuidmap', newgidmap: '/usr/bin/newgidmap' };

  it('names the line to add when the user has no sub-id range', () => {
    const ns = {
      subordinateRange: (file: string) => (file === '/etc/subuid' ? ranges : undefined),
      idMapHelpers: () => helpers,
    };
    expect(() => checkRootlessSetup(ns)).toThrow(
      `no subgid range for user ${user} in /etc/subgid: add a line such as '${user}:100000:65536'`,
    );
  });

  it('passes on the missing helper in one line, and returns the ranges otherwise', () => {
    const missing = {
      subordinateRange: () => ranges,
      idMapHelpers: (): typeof helpers => {
        throw new Error('newuidmap not found in /usr/bin, /bin, /usr/sbin, /sbin');
      },
    };
    expect(() => checkRootlessSetup(missing)).toThrow(/^newuidmap not found/);
    const ok = checkRootlessSetup({ subordinateRange: () => ranges, idMapHelpers: () => helpers });
    expect(ok).toMatchObject({ user, uid: 0, gid: 0, subuid: ranges, subgid: ranges });
  });
});
