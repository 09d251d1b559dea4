/**
 * A user's delegated cgroup v2 subtree, on a fake cgroupfs (this project's machines are cgroup v1
 * hosts, so no real v2 delegation can be made here): systemd's layout, with user@1000.service and
 * what is below it chowned to the user, as `Delegate=yes` does.
 */
import { chown, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createCgroupManager } from './create.js';
import { findDelegatedCgroup } from './delegation.js';
import { createFakeCgroupfs, type FakeCgroupfs } from './testing.js';

const USER = 1000;
const SERVICE = 'user.slice/user-1000.slice/user@1000.service';
const TERMINAL = `${SERVICE}/app.slice/term.scope`;
const SESSION = 'user.slice/user-1000.slice/session-1.scope';

let fake: FakeCgroupfs | undefined;
afterEach(async () => {
  await fake?.cleanup();
  fake = undefined;
});

async function chownTree(dir: string, uid: number): Promise<void> {
  await chown(dir, uid, uid);
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) await chownTree(join(dir, entry.name), uid);
    else await chown(join(dir, entry.name), uid, uid);
  }
}

/** A unified host as systemd sets it up: controllers handed down to the user's service, cpuset not. */
async function systemdHost(): Promise<FakeCgroupfs> {
  const f = await createFakeCgroupfs({ layout: 'unified' });
  let dir = f.root;
  for (const segment of TERMINAL.split('/')) {
    await f.fs.writeFile(join(dir, 'cgroup.subtree_control'), '+cpu +io +memory +pids');
    dir = join(dir, segment);
    await f.fs.mkdir(dir);
  }
  await f.fs.mkdir(f.path(SESSION));
  await f.fs.mkdir(f.path(SERVICE, 'init.scope'));
  await f.write(`${SERVICE}/init.scope/cgroup.procs`, '812');
  await f.write(`${TERMINAL}/cgroup.procs`, '2040');
  await chownTree(f.path(SERVICE), USER);
  f.actAs(USER);
  return f;
}

const selfCgroup = (path: string) => `0::/${path}\n`;

/** What the user `uid` with its process in `path` is handed on the fake host. */
function delegationOf(path: string, uid = USER) {
  return findDelegatedCgroup({ uid, selfCgroup: selfCgroup(path), mountinfo: fake!.mountinfo, fs: fake!.fs });
}

describe('findDelegatedCgroup (fake cgroup v2: this host is v1)', () => {
  it('finds the highest cgroup the user was handed, and what its children can have', async () => {
    fake = await systemdHost();
    const found = await delegationOf(TERMINAL);
    expect(found).toEqual({ delegated: { path: SERVICE, controllers: ['cpu', 'io', 'memory', 'pids'] } });
  });

  it('none for a cgroup of root (a login session), for another uid, on cgroup v1', async () => {
    fake = await systemdHost();
    const session = await delegationOf(SESSION);
    expect(session).toEqual({ reason: `this process's cgroup /${SESSION} is not delegated to this user` });
    const other = await delegationOf(TERMINAL, 1001);
    expect(other.delegated).toBeUndefined();
    const outside = await delegationOf(`../../${SERVICE}`);
    expect(outside).toEqual({
      reason: `this process's cgroup /../../${SERVICE} is outside the mounted hierarchy`,
    });
    const v1 = await createFakeCgroupfs({ layout: 'hybrid' });
    try {
      expect(await findDelegatedCgroup({ uid: USER, selfCgroup: '0::/\n', mountinfo: v1.mountinfo })).toEqual(
        {
          reason: 'cgroup v1 delegates no cgroup to a user',
        },
      );
    } finally {
      await v1.cleanup();
    }
  });

  it('a delegated cgroup with processes of its own offers only what it already hands down', async () => {
    fake = await systemdHost();
    await fake.fs.writeFile(fake.path(SERVICE, 'cgroup.subtree_control'), '-cpu -io');
    await fake.write(`${SERVICE}/cgroup.procs`, '3001');
    const found = await delegationOf(TERMINAL);
    expect(found.delegated?.controllers).toEqual(['memory', 'pids']);
    // Below it: what it hands down works, the rest is named.
    const manager = await createCgroupManager({
      path: `${SERVICE}/box/c2`,
      mountinfo: fake.mountinfo,
      fs: fake.fs,
    });
    await manager.create();
    await manager.apply({ memory: { limit: 32 * 1024 * 1024 } });
    expect(await fake.read(SERVICE, 'box/c2/memory.max')).toBe('33554432');
    await expect(manager.apply({ cpu: { shares: 512 } })).rejects.toThrow(/cgroup controller "cpu"/);
    await manager.destroy();
    expect(await fake.exists(SERVICE, 'box')).toBe(false);
  });

  it('as the user: a container cgroup below it is made, limited and removed; root’s cgroups are not written', async () => {
    fake = await systemdHost();
    const rootControl = await fake.read('cgroup.subtree_control');
    const manager = await createCgroupManager({
      path: `${SERVICE}/box/c1`,
      mountinfo: fake.mountinfo,
      fs: fake.fs,
    });
    await manager.create();
    await manager.apply({ memory: { limit: 64 * 1024 * 1024 }, pids: { limit: 50 } });
    expect(await fake.read(SERVICE, 'box/c1/memory.max')).toBe('67108864');
    expect(await fake.read(SERVICE, 'box/c1/pids.max')).toBe('50');
    // cpuset: root's cgroups do not hand it down, and box may not change them.
    await expect(manager.apply({ cpu: { cpus: '0' } })).rejects.toThrow(/cgroup controller "cpuset"/);
    expect(await fake.read('cgroup.subtree_control')).toBe(rootControl);
    await manager.destroy();
    expect(await fake.exists(SERVICE, 'box')).toBe(false);
    expect(await fake.exists(SERVICE, 'init.scope')).toBe(true);
  });

  it('as the user: a cgroup outside the delegated subtree cannot be made', async () => {
    fake = await systemdHost();
    const manager = await createCgroupManager({ path: 'box/c1', mountinfo: fake.mountinfo, fs: fake.fs });
    await expect(manager.create()).rejects.toThrow(/EACCES/);
    expect(await fake.exists('box')).toBe(false);
  });
});
