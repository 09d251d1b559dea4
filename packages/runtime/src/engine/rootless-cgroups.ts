/**
 * Cgroups of rootless containers.
 *
 * An ordinary user gets container cgroups only inside a cgroup v2 subtree delegated to it
 * (systemd's `Delegate=yes`, see @box/cgroups delegation.ts). There a container's cgroup is
 * `<subtree>/box/<id>`, with the limits of the controllers the subtree hands down. Elsewhere
 * (cgroup v1, as on this project's machines, or v2 without delegation) a rootless container runs
 * without a cgroup, as podman's do, and what needs one is refused in one line naming why.
 *
 * Device rules are never applied rootless: on cgroup v2 they are an eBPF program, which only a
 * process privileged over the host may attach. The container reaches no more devices for that:
 * its devices are the host's nodes bound in, opened with the user's own rights (as runc does
 * rootless).
 */
import type { Delegation } from '@box/cgroups';
import { EngineError } from '../errors.js';
import type { LinuxResources, Spec } from '../spec.js';
import { isRootless } from './rootless.js';

let lookup: Promise<Delegation> | undefined;

/** The user's delegated subtree, looked for once per process. */
function delegation(): Promise<Delegation> {
  lookup ??= import('@box/cgroups')
    .then(({ findDelegatedCgroup }) => findDelegatedCgroup())
    .catch((error: unknown) => {
      lookup = undefined; // looked for again next time (a long-lived service)
      throw error;
    });
  return lookup;
}

/**
 * The cgroup path of a new container: box's own for root, one in the delegated subtree for a
 * rootless box, or none (a rootless container without a cgroup).
 */
export async function containerCgroupsPath(id: string): Promise<string | undefined> {
  if (!isRootless()) return `box/${id}`;
  const found = await delegation();
  return found.delegated ? `${found.delegated.path}/box/${id}` : undefined;
}

/**
 * Whether a container has a cgroup. A rootless container without one keeps `box/<id>` in its
 * record (a path a rootless box never makes), so that every record has a path to look at.
 */
export function hasCgroup(record: { id: string; cgroupsPath?: string }): boolean {
  if (typeof record.cgroupsPath !== 'string') return false;
  return !isRootless() || record.cgroupsPath !== `box/${record.id}`;
}

/** The controller each limit needs (cgroup v2 names). */
function controllersFor(resources: LinuxResources): Map<string, string> {
  const needs = new Map<string, string>();
  const set = (value: object | undefined) => value !== undefined && Object.keys(value).length > 0;
  if (set(resources.memory)) needs.set('memory', 'memory');
  const { cpus, mems, ...cpu } = resources.cpu ?? {};
  if (set(cpu)) needs.set('cpu', 'cpu');
  if (cpus !== undefined || mems !== undefined) needs.set('cpuset', 'cpuset');
  if (set(resources.pids)) needs.set('pids', 'pids');
  if (set(resources.blockIO)) needs.set('blockIO', 'io');
  return needs;
}

/**
 * Refuses, before anything is made, the limits a rootless container cannot have here: all of
 * them without a delegated subtree, those whose controller the subtree does not hand down, and
 * device cgroup rules always.
 */
export async function checkRootlessLimits(
  resources: LinuxResources = {},
  deviceCgroupRules: readonly string[] = [],
): Promise<void> {
  const needs = controllersFor(resources);
  const found: Delegation = needs.size > 0 ? await delegation() : { reason: '' };
  checkLimitsAgainst(found, resources, deviceCgroupRules);
}

/** checkRootlessLimits with the user's delegation given. */
export function checkLimitsAgainst(
  found: Delegation,
  resources: LinuxResources = {},
  deviceCgroupRules: readonly string[] = [],
): void {
  if (deviceCgroupRules.length > 0 || (resources.devices?.length ?? 0) > 0)
    throw new EngineError(
      'EINVAL',
      'device cgroup rules (--device-cgroup-rule) need a device program, which a rootless container cannot attach',
    );
  const needs = controllersFor(resources);
  if (needs.size === 0) return;
  if (!found.delegated)
    throw new EngineError(
      'EINVAL',
      `resource limits (${[...needs.keys()].join(', ')}) need a cgroup, which a rootless container does not get on this host (${found.reason})`,
    );
  const offered = new Set(found.delegated.controllers);
  const missing = [...needs].filter(([, controller]) => !offered.has(controller));
  if (missing.length > 0)
    throw new EngineError(
      'EINVAL',
      `resource limits (${missing.map(([limit]) => limit).join(', ')}) need the cgroup controllers ${missing.map(([, c]) => c).join(', ')}, which /${found.delegated.path} does not hand down to this user`,
    );
}

/**
 * Refuses a start or exec of a rootless container whose cgroup this process cannot move processes
 * into. cgroup v2 lets a process move another only with write access to `cgroup.procs` of the
 * cgroups' common ancestor: a box run from outside the delegated subtree the container's cgroup
 * is in (another login session, say) would fail half way with EACCES.
 */
export async function checkCgroupReach(record: { id: string; cgroupsPath?: string }): Promise<void> {
  if (!isRootless() || !hasCgroup(record)) return;
  const problem = cgroupReachProblem(await delegation(), record.cgroupsPath!);
  if (problem) throw new EngineError('EINVAL', `container ${record.id.slice(0, 12)}: ${problem}`);
}

/** Why a process with this delegation cannot move processes into `cgroupsPath`, if it cannot. */
export function cgroupReachProblem(found: Delegation, cgroupsPath: string): string | undefined {
  if (found.delegated && cgroupsPath.startsWith(`${found.delegated.path}/`)) return undefined;
  const here = found.delegated ? `/${found.delegated.path}` : found.reason;
  return `its cgroup /${cgroupsPath} is outside the cgroup v2 subtree delegated to this box process (${here}); run box from the session that made it`;
}

/** A rootless container's spec: no device rules (see above). */
export function withoutDeviceRules(spec: Spec): void {
  if (spec.linux?.resources) delete spec.linux.resources.devices;
}

/** The refusal of what needs the container's cgroup (pause, stats, update) when it has none. */
export async function noCgroup(what: string): Promise<EngineError> {
  const found = await delegation();
  const why = found.delegated ? 'it was made without one' : found.reason;
  return new EngineError('EINVAL', `${what}: a rootless container has no cgroup on this host (${why})`);
}
