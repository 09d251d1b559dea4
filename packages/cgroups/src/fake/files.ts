import { join } from 'node:path';
import { type FakeHierarchy, type FakeMachine, readText, words } from './tree.js';

const V1_UNLIMITED = '9223372036854771712';

/** The files a v1 controller puts in a cgroup; `parent` is undefined at the hierarchy root. */
async function v1ControllerFiles(
  machine: FakeMachine,
  controller: string,
  parent: string | undefined,
): Promise<Record<string, string>> {
  switch (controller) {
    case 'cpu':
      return { 'cpu.shares': '1024', 'cpu.cfs_quota_us': '-1', 'cpu.cfs_period_us': '100000' };
    case 'cpuacct':
      return { 'cpuacct.usage': '0' };
    case 'cpuset':
      // A new cpuset starts empty (cgroup.clone_children is 0); only the root has the machine's.
      return { 'cpuset.cpus': parent ? '' : machine.cpus, 'cpuset.mems': parent ? '' : machine.mems };
    case 'memory':
      return {
        'memory.limit_in_bytes': V1_UNLIMITED,
        'memory.soft_limit_in_bytes': V1_UNLIMITED,
        'memory.usage_in_bytes': '0',
        'memory.max_usage_in_bytes': '0',
        'memory.oom_control': 'oom_kill_disable 0\nunder_oom 0\noom_kill 0',
        ...(machine.swapAccounting ? { 'memory.memsw.limit_in_bytes': V1_UNLIMITED } : {}),
      };
    case 'devices':
      // A child starts with its parent's rules.
      return {
        'devices.allow': '',
        'devices.deny': '',
        'devices.list': parent ? await readText(join(parent, 'devices.list')) : 'a *:* rwm',
      };
    case 'freezer':
      return parent ? { 'freezer.state': 'THAWED' } : {};
    case 'blkio':
      return machine.blkioWeightFile ? { [machine.blkioWeightFile]: '500' } : {};
    case 'pids':
      return parent ? { 'pids.max': 'max', 'pids.current': '0' } : { 'pids.current': '0' };
    default:
      return {};
  }
}

/** The files the kernel makes in a new v1 cgroup (or has at the hierarchy root). */
export async function v1Files(
  machine: FakeMachine,
  h: FakeHierarchy,
  parent: string | undefined,
): Promise<Record<string, string>> {
  const files: Record<string, string> = {
    'cgroup.procs': '',
    tasks: '',
    'cgroup.clone_children': '0',
    notify_on_release: '0',
  };
  for (const controller of h.controllers)
    Object.assign(files, await v1ControllerFiles(machine, controller, parent));
  return files;
}

/** The interface files of the v2 controllers enabled for a (non-root) cgroup below `parent`. */
export async function v2ControllerFiles(
  machine: FakeMachine,
  controllers: readonly string[],
  parent: string,
): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  for (const controller of controllers) {
    switch (controller) {
      case 'memory':
        Object.assign(files, {
          'memory.max': 'max',
          'memory.low': '0',
          'memory.high': 'max',
          'memory.current': '0',
          'memory.peak': '0',
          'memory.events': 'low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0',
          ...(machine.swapAccounting ? { 'memory.swap.max': 'max', 'memory.swap.current': '0' } : {}),
        });
        break;
      case 'cpu':
        Object.assign(files, { 'cpu.weight': '100', 'cpu.max': 'max 100000' });
        break;
      case 'cpuset':
        Object.assign(files, {
          'cpuset.cpus': '',
          'cpuset.mems': '',
          'cpuset.cpus.effective': await readText(join(parent, 'cpuset.cpus.effective')),
          'cpuset.mems.effective': await readText(join(parent, 'cpuset.mems.effective')),
        });
        break;
      case 'io':
        files['io.weight'] = 'default 100';
        break;
      case 'pids':
        Object.assign(files, { 'pids.max': 'max', 'pids.current': '0' });
        break;
    }
  }
  return files;
}

/** The files the kernel makes in a new v2 cgroup (or has at the hierarchy root). */
export async function v2Files(
  machine: FakeMachine,
  h: FakeHierarchy,
  parent: string | undefined,
): Promise<Record<string, string>> {
  const files: Record<string, string> = {
    'cgroup.procs': '',
    'cgroup.subtree_control': '',
    'cpu.stat': 'usage_usec 0\nuser_usec 0\nsystem_usec 0',
  };
  if (!parent) {
    files['cgroup.controllers'] = h.controllers.join(' ');
    if (h.controllers.includes('cpuset')) {
      Object.assign(files, { 'cpuset.cpus.effective': machine.cpus, 'cpuset.mems.effective': machine.mems });
    }
    return files;
  }
  const enabled = words(await readText(join(parent, 'cgroup.subtree_control')));
  Object.assign(files, {
    'cgroup.controllers': enabled.join(' '),
    'cgroup.events': 'populated 0\nfrozen 0',
    'cgroup.freeze': '0',
    'cgroup.type': 'domain',
    ...(machine.cgroupKill ? { 'cgroup.kill': '' } : {}),
  });
  return Object.assign(files, await v2ControllerFiles(machine, enabled, parent));
}

export function filesFor(
  machine: FakeMachine,
  h: FakeHierarchy,
  parent: string | undefined,
): Promise<Record<string, string>> {
  return h.version === 1 ? v1Files(machine, h, parent) : v2Files(machine, h, parent);
}
