/**
 * Runs the built `box` CLI against a private state directory (BOX_ROOT) that
 * holds the busybox image, and checks that nothing is left behind.
 */
import { type SpawnOptions, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import { heldAddresses, orphanContainerChains, removeRootNetworks, slirpProcesses } from './network.js';

export const repoRoot = resolve(import.meta.dirname, '../../..');
export const boxBin = join(repoRoot, 'apps/cli/dist/box.js');

export interface BoxEnv {
  root: string;
  cleanup(): void;
}

/** A fresh BOX_ROOT with the busybox image. */
export function makeBoxRoot(): BoxEnv {
  const root = mkdtempSync(join(tmpdir(), 'box-e2e-'));
  const setup = spawnSync('bash', [join(repoRoot, 'scripts/busybox-image.sh')], {
    env: { ...process.env, BOX_ROOT: root },
    encoding: 'utf8',
  });
  if (setup.status !== 0) throw new Error(`busybox image set-up failed: ${setup.stderr}`);
  return {
    root,
    cleanup: () => {
      removeRootNetworks(root);
      rmSync(root, { recursive: true, force: true });
    },
  };
}

export interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function box(
  root: string,
  args: string[],
  options: { input?: string; env?: NodeJS.ProcessEnv } = {},
): Result {
  const r = spawnSync(process.execPath, [boxBin, ...args], {
    env: { ...process.env, ...options.env, BOX_ROOT: root },
    input: options.input ?? '',
    encoding: 'utf8',
    timeout: 20_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Starts box in the background; resolves with its result when it ends. */
export function boxAsync(root: string, args: string[], options: SpawnOptions = {}) {
  const child = spawn(process.execPath, [boxBin, ...args], {
    ...options,
    env: { ...process.env, BOX_ROOT: root },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d) => {
    stdout += d;
  });
  child.stderr?.on('data', (d) => {
    stderr += d;
  });
  const done = new Promise<Result>((resolveDone) => {
    child.on('close', (code, signal) => resolveDone({ code: code ?? (signal ? -1 : null), stdout, stderr }));
  });
  return { child, done, output: () => stdout };
}

/** Pids of processes in a PID namespace other than ours. */
export function foreignPidNamespaceProcesses(): Set<number> {
  const own = readlinkSync('/proc/self/ns/pid');
  const pids = new Set<number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readlinkSync(`/proc/${entry}/ns/pid`) !== own) pids.add(Number(entry));
    } catch {
      // gone
    }
  }
  return pids;
}

/** The host's v1 hierarchies, and the ones without controllers that containers join too. */
const CGROUP_HIERARCHIES = [
  'memory',
  'cpu',
  'cpuacct',
  'cpuset',
  'pids',
  'blkio',
  'devices',
  'freezer',
  'systemd',
  'unified',
];

/** Containers' cgroups (box/<64 hex>) on the host's hierarchies. */
export function boxCgroups(): string[] {
  return CGROUP_HIERARCHIES.flatMap((h) => {
    try {
      return readdirSync(join('/sys/fs/cgroup', h, 'box'))
        .filter((d) => /^[0-9a-f]{64}$/.test(d))
        .map((d) => `${h}/box/${d}`);
    } catch {
      return [];
    }
  });
}

/**
 * Containers' cgroups there before this test file ran: another file's leak is that file's failure,
 * not one of every file after it.
 */
const cgroupsAtStart = new Set(boxCgroups());

/**
 * What box may have left: mounts under root, container records, cgroups, processes in new PID
 * namespaces, slirp4netns processes of its containers.
 */
export function leftovers(root: string, before: Set<number>): string[] {
  const found: string[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    if (line.includes(root)) found.push(`mount: ${line}`);
  }
  for (const cgroup of boxCgroups()) if (!cgroupsAtStart.has(cgroup)) found.push(`cgroup: ${cgroup}`);
  found.push(...heldAddresses(root));
  for (const slirp of slirpProcesses(root)) found.push(`slirp4netns ${slirp}`);
  let live = new Set<string>();
  try {
    live = new Set(readdirSync(join(root, 'containers')));
  } catch {
    // none made
  }
  found.push(...orphanContainerChains(live));
  for (const dir of ['containers', 'names']) {
    try {
      for (const entry of readdirSync(join(root, dir))) found.push(`${dir}/${entry}`);
    } catch {
      // none made
    }
  }
  for (const pid of foreignPidNamespaceProcesses()) {
    if (before.has(pid)) continue;
    try {
      // An ended container whose box was killed is reaped by the host's init, in its own time.
      const state = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '')[0];
      if (state === 'Z') continue;
      found.push(`process ${pid}: ${readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ')}`);
    } catch {
      // gone
    }
  }
  return found;
}

/** Waits until `check` is true or the time is up. */
export async function waitFor(check: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}

export interface TestBoxRoot {
  /** The BOX_ROOT of this test file. */
  readonly root: string;
  /** Processes in foreign PID namespaces before the file's tests ran (not theirs). */
  readonly before: Set<number>;
}

/**
 * One BOX_ROOT with the busybox image for a test file, and after every test the check that
 * nothing is left: no mount, record, cgroup or container process. With `removeContainers`,
 * containers a test left (on purpose) are first removed through box itself, with their
 * anonymous volumes.
 */
export function useBoxRoot(options: { removeContainers?: boolean } = {}): TestBoxRoot {
  let env: BoxEnv | undefined;
  let before = new Set<number>();
  beforeAll(() => {
    env = makeBoxRoot();
    before = foreignPidNamespaceProcesses();
  });
  afterEach(async () => {
    const root = env!.root;
    if (options.removeContainers) {
      const ids = box(root, ['ps', '-a', '-q', '--no-trunc']).stdout.trim().split('\n').filter(Boolean);
      if (ids.length > 0) box(root, ['rm', '-f', '-v', ...ids]);
      // Their owners finish asynchronously.
      await waitFor(() => leftovers(root, before).length === 0, 5000).catch(() => undefined);
    }
    expect(leftovers(root, before)).toEqual([]);
  });
  afterAll(() => env?.cleanup());
  return {
    get root() {
      return env!.root;
    },
    get before() {
      return before;
    },
  };
}

/** Runs box and returns its trimmed stdout; any other exit than 0 fails the test with stderr. */
export function boxOk(root: string, args: string[]): string {
  const r = box(root, args);
  if (r.code !== 0) throw new Error(`box ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout.trim();
}
