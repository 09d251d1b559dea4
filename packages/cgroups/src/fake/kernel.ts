import * as fsp from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { errnoOf } from '../errors.js';
import { type CgroupFs, nodeCgroupFs } from '../fs.js';
import { parseCpuList } from '../size.js';
import { parsePids } from '../values.js';
import { filesFor, v2ControllerFiles } from './files.js';
import {
  allDirs,
  childDirs,
  type FakeHierarchy,
  type FakeMachine,
  hierarchyOf,
  populate,
  readText,
  setText,
  sysError,
  words,
} from './tree.js';

type Special = (machine: FakeMachine, h: FakeHierarchy, path: string, value: string) => Promise<void>;

/** A task moves: it leaves every other cgroup of the hierarchy. */
const writeProcs: Special = async (_, h, path, value) => {
  const dir = dirname(path);
  if (!/^\d+$/.test(value)) throw sysError('EINVAL', 'write', path);
  if (h.version === 1 && h.controllers.includes('cpuset')) {
    const cpus = await readText(join(dir, 'cpuset.cpus'));
    const mems = await readText(join(dir, 'cpuset.mems'));
    if (cpus === '' || mems === '') throw sysError('ENOSPC', 'write', path);
  }
  if (h.version === 2 && dir !== h.root && (await readText(join(dir, 'cgroup.subtree_control'))) !== '') {
    throw sysError('EBUSY', 'write', path); // v2: no processes in a cgroup that hands out controllers
  }
  const pid = Number(value);
  for (const other of await allDirs(h.root)) {
    const file = join(other, 'cgroup.procs');
    const pids = parsePids(await readText(file)).filter((p) => p !== pid);
    if (other === dir) pids.push(pid);
    await setText(file, pids.join('\n'));
  }
};

/** `+ctrl -ctrl`: only offered controllers; children gain the files of newly enabled ones. */
const writeSubtreeControl: Special = async (machine, h, path, value) => {
  const dir = dirname(path);
  // No internal processes: a non-root cgroup with processes hands no new controller down.
  const adds = words(value).some((token) => token.startsWith('+'));
  if (adds && dir !== h.root && parsePids(await readText(join(dir, 'cgroup.procs'))).length > 0)
    throw sysError('EBUSY', 'write', path);
  const offered = words(await readText(join(dir, 'cgroup.controllers')));
  const enabled = new Set(words(await readText(path)));
  for (const token of words(value)) {
    const controller = token.slice(1);
    if (!/^[+-]/.test(token) || !offered.includes(controller)) throw sysError('ENOENT', 'write', path);
    if (token.startsWith('+')) enabled.add(controller);
    else enabled.delete(controller);
  }
  const list = offered.filter((controller) => enabled.has(controller));
  await setText(path, list.join(' '));
  for (const child of await childDirs(dir)) {
    await setText(join(child, 'cgroup.controllers'), list.join(' '));
    await populate(child, await v2ControllerFiles(machine, list, dir), true);
    // The kernel gives files it adds to whoever wrote the control file.
    if (machine.uid !== undefined) await chownFiles(child, machine.uid);
  }
};

const writeFreeze: Special = async (_, __, path, value) => {
  if (value !== '0' && value !== '1') throw sysError('EINVAL', 'write', path);
  await setText(path, value);
  const events = join(dirname(path), 'cgroup.events');
  await setText(events, (await readText(events)).replace(/^frozen \d$/m, `frozen ${value}`));
};

/** Empties the cgroup and its children. No real process is signalled: tests use made-up PIDs. */
const writeKill: Special = async (_, __, path, value) => {
  if (value !== '1') throw sysError('EINVAL', 'write', path);
  for (const dir of await allDirs(dirname(path))) await setText(join(dir, 'cgroup.procs'), '');
};

/** devices.allow/deny change devices.list; `a` allows or denies everything. */
const writeDevices: Special = async (_, __, path, value) => {
  const listPath = join(dirname(path), 'devices.list');
  const allow = basename(path) === 'devices.allow';
  const list = (await readText(listPath)).split('\n').filter(Boolean);
  let next: string[];
  if (value === 'a') next = allow ? ['a *:* rwm'] : [];
  else next = allow ? [...new Set([...list, value])] : list.filter((entry) => entry !== value);
  await setText(listPath, next.join('\n'));
};

/** A v1 child's cpuset must lie within its parent's. */
const writeCpuset: Special = async (_, h, path, value) => {
  const dir = dirname(path);
  if (h.version === 1 && value !== '' && dir !== h.root) {
    let wanted: number[];
    try {
      wanted = parseCpuList(value);
    } catch {
      throw sysError('EINVAL', 'write', path);
    }
    const parent = new Set(parseCpuList(await readText(join(dirname(dir), basename(path)))));
    if (wanted.some((n) => !parent.has(n))) throw sysError('EINVAL', 'write', path);
  }
  await setText(path, value);
};

const writeFreezerState: Special = async (_, __, path, value) => {
  if (value !== 'FROZEN' && value !== 'THAWED') throw sysError('EINVAL', 'write', path);
  await setText(path, value);
};

const SPECIAL: Record<string, Special> = {
  'cgroup.procs': writeProcs,
  'cgroup.subtree_control': writeSubtreeControl,
  'cgroup.freeze': writeFreeze,
  'cgroup.kill': writeKill,
  'devices.allow': writeDevices,
  'devices.deny': writeDevices,
  'cpuset.cpus': writeCpuset,
  'cpuset.mems': writeCpuset,
  'freezer.state': writeFreezerState,
};

async function chownFiles(dir: string, uid: number): Promise<void> {
  for (const entry of await fsp.readdir(dir, { withFileTypes: true }))
    if (entry.isFile()) await fsp.chown(join(dir, entry.name), uid, uid);
}

/**
 * As an ordinary user (`machine.uid`), the kernel's permission checks: a directory is made or
 * removed in a parent the user owns, a file written only when the user owns it. (The tests run
 * as root, which the real checks would let through.)
 */
async function checkOwner(machine: FakeMachine, path: string, syscall: string): Promise<void> {
  if (machine.uid === undefined) return;
  const stat = await fsp.stat(path).catch(() => undefined);
  if (stat && stat.uid !== machine.uid) throw sysError('EACCES', syscall, path);
}

/** A CgroupFs over the fake tree that answers as the kernel's cgroupfs would. */
export function createKernelFs(machine: FakeMachine): CgroupFs {
  return {
    async mkdir(path) {
      const h = hierarchyOf(machine, path);
      // As mkdir(2): an existing name is EEXIST before the parent's permission is looked at.
      if (await nodeCgroupFs.exists(path)) throw sysError('EEXIST', 'mkdir', path);
      await checkOwner(machine, dirname(path), 'mkdir');
      await fsp.mkdir(path);
      await populate(path, await filesFor(machine, h, dirname(path)));
      // The kernel gives a new cgroup's directory and files to its maker.
      if (machine.uid !== undefined) {
        await fsp.chown(path, machine.uid, machine.uid);
        await chownFiles(path, machine.uid);
      }
    },
    async rmdir(path) {
      const h = hierarchyOf(machine, path);
      await checkOwner(machine, dirname(path), 'rmdir');
      if (path === h.root) throw sysError('EBUSY', 'rmdir', path);
      const entries = await fsp.readdir(path, { withFileTypes: true }).catch((error: unknown) => {
        throw errnoOf(error) === 'ENOENT' ? sysError('ENOENT', 'rmdir', path) : error;
      });
      if (entries.some((entry) => entry.isDirectory())) throw sysError('ENOTEMPTY', 'rmdir', path);
      if (parsePids(await readText(join(path, 'cgroup.procs'))).length > 0)
        throw sysError('EBUSY', 'rmdir', path);
      for (const entry of entries) await fsp.unlink(join(path, entry.name));
      await fsp.rmdir(path);
    },
    readFile: (path) => nodeCgroupFs.readFile(path),
    async writeFile(path, data) {
      if (!(await nodeCgroupFs.exists(path))) throw sysError('ENOENT', 'open', path);
      await checkOwner(machine, path, 'open');
      const special = SPECIAL[basename(path)];
      if (special) await special(machine, hierarchyOf(machine, path), path, data.trim());
      else await nodeCgroupFs.writeFile(path, data);
    },
    exists: (path) => nodeCgroupFs.exists(path),
    listDirs: (path) => nodeCgroupFs.listDirs(path),
    // The kernel keeps attached programs out of sight; the fake shows them in a file of its own.
    async attachDeviceProgram(dir, program) {
      await fsp.appendFile(join(dir, 'fake.device-programs'), `${program.toString('hex')}\n`);
    },
  };
}
