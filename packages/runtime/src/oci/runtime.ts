/**
 * A runc-compatible container runtime as a library: what the `box-runtime` binary (runc's
 * command line, for podman, containerd and Kubernetes) calls. Containers come from OCI bundles
 * (a directory with config.json), live in a state root of their own (see state.ts), and start on
 * the same path as `box run` (startContainer): only the create/start split is this module's.
 *
 *   create  validate config.json → claim the id → exec FIFO → startContainer with an exec gate:
 *           the container is set up completely and waits right before its command (hooks
 *           createRuntime/prestart in the runtime's namespaces while it waits at its sync
 *           point, createContainer in the container's once its mounts are done, before
 *           pivot_root) → state.json, --pid-file
 *   start   startContainer hooks → open the FIFO: the command runs → poststart hooks
 *   delete  kill what is left, remove the cgroup and the state → poststop hooks
 *
 * Each step is its own process (podman and containerd run `create`, exit, then `start`); the
 * container's process is reparented to their subreaper (conmon, the shim) when `create` exits.
 */
import { chmodSync, closeSync, openSync, readFileSync, readSync, unlinkSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { NamespaceType } from '@box/ns';
import { writeFileAtomic } from '@box/sys';
import { freeze, thaw } from '../engine/freezer.js';
import { processStartTime, sameProcessAlive } from '../engine/process-info.js';
import { RuntimeError, SpecError } from '../errors.js';
import type { ExecProcess } from '../exec.js';
import { mergeEnv } from '../process/env.js';
import type { ContainerProcess } from '../run.js';
import type { Hook, LinuxCapabilities, LinuxResources, Process, Spec } from '../spec.js';
import type { HookKind, HookPlace } from './hooks.js';
import { checkId, type OciState, OciStateDir, type StoredState } from './state.js';

const S_IFIFO = 0o010000;
const O_PATH = 0o10000000;
const O_NONBLOCK = 0o4000;

export interface OciCreateOptions {
  /** The bundle directory (config.json, and the rootfs when root.path is relative). */
  bundle: string;
  /** Where to write the container process's pid. */
  pidFile?: string;
  /** A unix socket that receives the terminal's master side (process.terminal). */
  consoleSocket?: string;
  /** Pass this many fds from 3 up to the container (runc's --preserve-fds). */
  preserveFds?: number;
  /** Fds for the container's 0-2 (default: this process's). */
  stdio?: readonly [number, number, number];
}

export interface OciExecOptions {
  /** The process: the container's own with these fields replaced (args at least). */
  process: Partial<Process> & { args: string[] };
  /** Added to the process's environment, later entries winning (runc exec --env). */
  env?: readonly string[];
  /** Added to each of the process's capability sets but the ambient one (runc exec --cap). */
  capabilities?: readonly string[];
  /** Pass this many fds from 3 up to the process (runc exec --preserve-fds). */
  preserveFds?: number;
  consoleSocket?: string;
  pidFile?: string;
  /** Return once it runs (runc exec -d); otherwise the returned process is waited by the caller. */
  detach?: boolean;
  stdio?: readonly [number, number, number];
}

type OciSpec = Spec;

function readConfig(bundle: string): OciSpec {
  let text: string;
  try {
    text = readFileSync(join(bundle, 'config.json'), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT')
      throw new RuntimeError('ENOENT', `JSON specification file config.json not found in bundle ${bundle}`);
    throw error;
  }
  try {
    return JSON.parse(text) as OciSpec;
  } catch (error) {
    throw new SpecError(`config.json: ${(error as Error).message}`);
  }
}

const defaultCgroupsPath = (id: string) => `box-runtime/${id}`;

/** The config's cgroup: runc's "slice:prefix:name" systemd form is not box's. */
function cgroupsPathOf(spec: Spec, id: string): string {
  const path = spec.linux?.cgroupsPath;
  if (path === undefined || path === '') return defaultCgroupsPath(id);
  if (path.includes(':'))
    throw new SpecError(
      `linux.cgroupsPath "${path}" is a systemd path: box-runtime manages cgroupfs paths only`,
    );
  return path;
}

/**
 * A cgroup of the config's is removed without its parents, as runc removes it: those are the
 * caller's (kubelet's pod and QoS cgroups, whose limits it keeps writing; podman's
 * libpod_parent). box-runtime's own default, `box-runtime/ID`, takes its empty parent with it.
 */
function cgroupRemoval(path: string, id: string): { keepParents: boolean } {
  return { keepParents: path !== defaultCgroupsPath(id) };
}

function fdsFrom3(count = 0): number[] {
  if (!Number.isInteger(count) || count < 0)
    throw new RuntimeError('EINVAL', `invalid --preserve-fds ${count}`);
  return Array.from({ length: count }, (_, i) => 3 + i);
}

function addCapabilities(caps: LinuxCapabilities | undefined, extra: readonly string[]): LinuxCapabilities {
  const add = (set: string[] | undefined) => [...new Set([...(set ?? []), ...extra])];
  return {
    ...caps,
    bounding: add(caps?.bounding),
    effective: add(caps?.effective),
    permitted: add(caps?.permitted),
    inheritable: add(caps?.inheritable),
  };
}

function writePidFile(path: string | undefined, pid: number): void {
  // As runc's: atomic, not fsynced (see OciStateDir.write).
  if (path) writeFileAtomic(resolve(path), String(pid), { fsync: false });
}

export class OciRuntime {
  readonly states: OciStateDir;

  constructor(readonly root: string) {
    this.states = new OciStateDir(root);
  }

  async create(id: string, options: OciCreateOptions): Promise<OciState> {
    // Detached: `create` returns and its caller's subreaper (the shim, conmon) reaps the container.
    return (await this.createProcess(id, options, true)).state;
  }

  /** create, also giving the container's process (its `exited` settles only in this process). */
  private async createProcess(
    id: string,
    options: OciCreateOptions,
    detach = false,
  ): Promise<{ state: OciState; container: ContainerProcess }> {
    checkId(id);
    const bundle = resolve(options.bundle);
    const spec = readConfig(bundle);
    // The spec's JSON Schema first (errors name the field), then box's own checks. Loaded here
    // only, as the start-up path below: the generated validator is large, and the other commands
    // (start, state, delete...) need neither.
    const { validateConfigSchema } = await import('./schema.js');
    await validateConfigSchema(spec);
    // (An assertion function is called through a name with a declared type.)
    const checks = await import('../spec.js');
    const validateSpec: typeof checks.validateSpec = checks.validateSpec;
    validateSpec(spec);
    await checks.validateSpecSeccomp(spec);
    const { startContainer } = await import('../run.js');
    if (!isAbsolute(spec.root.path)) spec.root.path = join(bundle, spec.root.path);
    spec.linux = { ...spec.linux, cgroupsPath: cgroupsPathOf(spec, id) };
    // As runc: after the config's device rules, the devices every container has (/dev/null,
    // the terminal, mknod of any node) are allowed; podman's config denies all and counts on it.
    const { DEFAULT_DEVICE_RULES } = await import('@box/cgroups');
    spec.linux.resources = {
      ...spec.linux.resources,
      devices: [
        ...(spec.linux.resources?.devices ?? []),
        ...DEFAULT_DEVICE_RULES.map((rule) => ({ ...rule })),
      ],
    };
    if (spec.process.terminal && !options.consoleSocket)
      throw new RuntimeError(
        'EINVAL',
        'cannot allocate tty if runc will detach without setting console socket',
      );
    if (!spec.process.terminal && options.consoleSocket)
      throw new RuntimeError('EINVAL', 'cannot use console socket if runc will not detach or allocate tty');
    const preserveFds = fdsFrom3(options.preserveFds);

    this.states.claim(id);
    const stored: StoredState = {
      id,
      bundle,
      rootfs: spec.root.path,
      created: new Date().toISOString(),
      pid: 0,
      creatorPid: process.pid,
      creatorStartTime: processStartTime(process.pid),
      cgroupsPath: spec.linux.cgroupsPath,
      ...(spec.annotations ? { annotations: spec.annotations } : {}),
    };
    let gate: number | undefined;
    let consoleFd: number | undefined;
    let container: ContainerProcess | undefined;
    try {
      this.states.write(stored, spec);
      const fifo = this.states.fifo(id);
      const { connectUnix, mknod } = await import('@box/sys');
      mknod(fifo, S_IFIFO | 0o600);
      // Writable by all, as runc's: the container's process opens it (through its O_PATH fd)
      // after it has become the config's user without CAP_DAC_OVERRIDE, and a 0600 FIFO of
      // root's would refuse a uid 1000 (EACCES) after create had already said "created". No
      // one else reaches it: its directory is root's and 0700. chmod, not the mode given to
      // mknod: the umask would take the bits back off.
      chmodSync(fifo, 0o622);
      gate = openSync(fifo, O_PATH);
      if (options.consoleSocket) consoleFd = connectUnix(options.consoleSocket);
      const namespaces = (spec.linux.namespaces ?? []).map((n) => n.type as NamespaceType);
      container = await startContainer({
        spec,
        cgroupRemoval: cgroupRemoval(spec.linux.cgroupsPath!, id),
        stdio: options.stdio,
        consoleSocket: consoleFd,
        execGate: gate,
        detach,
        preserveFds,
        onSync: async (pid) => {
          stored.pid = pid;
          stored.pidStartTime = processStartTime(pid);
          this.states.write(stored);
          const state = { ...(await this.states.state(id)), status: 'creating' as const };
          await runHooks('createRuntime', spec.hooks?.createRuntime, state);
          await runHooks('prestart', spec.hooks?.prestart, state);
        },
        // In the container's namespaces once its mounts are done, before pivot_root (the spec).
        beforePivot: spec.hooks?.createContainer?.length
          ? async (pid) => {
              const state = { ...(await this.states.state(id)), status: 'creating' as const };
              await runHooks('createContainer', spec.hooks?.createContainer, state, {
                container: { pid, startTime: stored.pidStartTime, namespaces },
              });
            }
          : undefined,
      });
      writePidFile(options.pidFile, container.pid);
      return { state: await this.states.state(id), container };
    } catch (error) {
      if (container) {
        container.kill('SIGKILL');
        if (detach) {
          const { removeCgroupAt } = await import('../cgroup.js');
          await removeCgroupAt(spec.linux.cgroupsPath!, cgroupRemoval(spec.linux.cgroupsPath!, id));
        } else await container.exited.catch(() => undefined);
      }
      this.states.remove(id);
      throw error;
    } finally {
      if (gate !== undefined) closeSync(gate);
      if (consoleFd !== undefined) closeSync(consoleFd);
    }
  }

  async start(id: string): Promise<void> {
    const stored = this.states.read(id);
    const status = await this.states.status(stored);
    if (status === 'stopped') throw new RuntimeError('ESTATE', 'cannot start a container that has stopped');
    if (status !== 'created') throw new RuntimeError('ESTATE', `cannot start an already ${status} container`);
    const spec = this.states.spec(id) as OciSpec;
    const state = this.states.describe(stored, status);
    const namespaces = (spec.linux?.namespaces ?? []).map((n) => n.type as NamespaceType);
    await runHooks('startContainer', spec.hooks?.startContainer, state, {
      container: { pid: stored.pid, startTime: stored.pidStartTime, namespaces },
    });
    await this.openGate(stored);
    if (!spec.hooks?.poststart?.length) return;
    const running = await this.states.state(id);
    await runHooks('poststart', spec.hooks.poststart, running).catch((error) => {
      // The spec: a failing poststart hook is a warning; the container runs on.
      process.emitWarning((error as Error).message);
    });
  }

  /** Opens the exec FIFO for reading: the container's command runs once it has written its byte. */
  private async openGate(stored: StoredState): Promise<void> {
    const fifo = this.states.fifo(stored.id);
    // Non-blocking: a container that died before its gate would leave a blocking open hanging.
    const fd = openSync(fifo, O_NONBLOCK);
    try {
      const byte = Buffer.alloc(1);
      const read = (): number => {
        try {
          return readSync(fd, byte);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw error;
          return -1;
        }
      };
      // The container's blocked open of the FIFO returns once this one is made, and it writes
      // its byte a moment later (well under a millisecond on an idle machine). So the first
      // milliseconds are looked at on every turn of the event loop; a timer's sleep (1 ms at the
      // least, 5 before there is a writer) was most of what `start` took.
      // (hrtime: monotonic, and no perf_hooks to load.)
      const eager = process.hrtime.bigint() + 5_000_000n;
      for (;;) {
        const n = read();
        if (n === 1) break;
        if (process.hrtime.bigint() < eager) {
          await new Promise<void>((resolve) => setImmediate(resolve));
          continue;
        }
        if (!sameProcessAlive(stored.pid, stored.pidStartTime)) {
          // Between the read and this check it may have written its byte, run its command and
          // ended (`true`): then it did start.
          if (read() === 1) break;
          throw new RuntimeError('ESTATE', 'cannot start a container that has stopped');
        }
        await sleep(n === 0 ? 5 : 1);
      }
    } finally {
      closeSync(fd);
    }
    // unlink, not rmSync: `force` makes Node load and compile its rimraf, which nothing else of
    // `start` needs.
    try {
      unlinkSync(fifo);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }

  /**
   * create + start (runc run). `exited` settles with the exit code (128 + the signal when
   * killed) when this process is still the container's parent, as a foreground run is.
   */
  async run(
    id: string,
    options: OciCreateOptions & { detach?: boolean },
  ): Promise<{ state: OciState; exited: Promise<number> }> {
    const { container } = await this.createProcess(id, options, options.detach ?? false);
    try {
      await this.start(id);
    } catch (error) {
      await this.delete(id, { force: true }).catch(() => undefined);
      throw error;
    }
    const exited = container.exited.then((exit) => exit.exitCode ?? 128 + (exit.signal ?? 0));
    return { state: await this.states.state(id), exited };
  }

  async state(id: string): Promise<OciState> {
    return this.states.state(id);
  }

  async list(): Promise<OciState[]> {
    const out: OciState[] = [];
    for (const id of this.states.ids()) {
      try {
        out.push(await this.states.state(id));
      } catch {
        // removed meanwhile
      }
    }
    return out;
  }

  async kill(id: string, signal: number, options: { all?: boolean } = {}): Promise<void> {
    const stored = this.states.read(id);
    const status = await this.states.status(stored);
    if (status === 'stopped') throw new RuntimeError('ESTATE', 'container not running');
    if (options.all && stored.cgroupsPath) {
      const { createCgroupManager } = await import('@box/cgroups');
      const cgroup = await createCgroupManager({ path: stored.cgroupsPath });
      await cgroup.killAll(signal);
      return;
    }
    const { openProcess } = await import('../process/handle.js');
    const proc = openProcess(stored.pid, stored.pidStartTime);
    if (!proc) throw new RuntimeError('ESTATE', 'container not running');
    try {
      proc.signal(signal);
    } finally {
      proc.close();
    }
  }

  async delete(id: string, options: { force?: boolean } = {}): Promise<void> {
    let stored: StoredState;
    try {
      stored = this.states.read(id);
    } catch (error) {
      // A create killed between making the container's directory and writing its state left the
      // directory alone, which holds the id: --force removes it (nothing else was made yet).
      if (options.force && (error as RuntimeError).code === 'ENOTFOUND' && this.states.halfMade(id)) {
        this.states.remove(id);
        return;
      }
      throw error;
    }
    const status = await this.states.status(stored);
    const spec = this.states.spec(id) as OciSpec;
    if (status !== 'stopped' && status !== 'created' && !options.force)
      throw new RuntimeError('ESTATE', `cannot delete container ${id} that is not stopped: ${status}`);
    const state = this.states.describe(stored, status);
    // A forced delete of a container still being created (no process yet): its create finds its
    // directory gone at its next write and undoes what it made.
    if (status !== 'stopped' && stored.pid) {
      const { openProcess } = await import('../process/handle.js');
      const proc = openProcess(stored.pid, stored.pidStartTime);
      if (proc) {
        try {
          if (status === 'paused' && stored.cgroupsPath) await thaw(stored.cgroupsPath);
          proc.signal(9);
          await proc.exited;
        } finally {
          proc.close();
        }
      }
    }
    // Whatever is left in the cgroup (the command's children, an exec) goes with it.
    if (stored.cgroupsPath) {
      const { removeCgroupAt } = await import('../cgroup.js');
      await removeCgroupAt(stored.cgroupsPath, cgroupRemoval(stored.cgroupsPath, id));
    }
    this.states.remove(id);
    await runHooks('poststop', spec.hooks?.poststop, { ...state, status: 'stopped' }).catch((error) => {
      process.emitWarning((error as Error).message);
    });
  }

  async pause(id: string): Promise<void> {
    const stored = this.states.read(id);
    const status = await this.states.status(stored);
    if (status !== 'running') throw new RuntimeError('ESTATE', `container not running`);
    await freeze(stored.cgroupsPath!);
  }

  async resume(id: string): Promise<void> {
    const stored = this.states.read(id);
    const status = await this.states.status(stored);
    if (status !== 'paused') throw new RuntimeError('ESTATE', 'container not paused');
    await thaw(stored.cgroupsPath!);
  }

  /** The pids of the container's processes (its cgroup). */
  async ps(id: string): Promise<number[]> {
    const stored = this.states.read(id);
    if (!stored.cgroupsPath) return stored.pid ? [stored.pid] : [];
    const { createCgroupManager } = await import('@box/cgroups');
    return (await createCgroupManager({ path: stored.cgroupsPath })).pids();
  }

  async update(id: string, resources: LinuxResources): Promise<void> {
    const stored = this.states.read(id);
    if ((await this.states.status(stored)) === 'stopped')
      throw new RuntimeError('ESTATE', 'container not running');
    const { createCgroupManager } = await import('@box/cgroups');
    const { toResources } = await import('../cgroup.js');
    const cgroup = await createCgroupManager({ path: stored.cgroupsPath! });
    await cgroup.update(toResources(resources));
  }

  async stats(id: string): Promise<unknown> {
    const stored = this.states.read(id);
    const { createCgroupManager } = await import('@box/cgroups');
    return (await createCgroupManager({ path: stored.cgroupsPath! })).stats();
  }

  /** Another process in the container (runc exec); the container's process is its base. */
  async exec(id: string, options: OciExecOptions): Promise<ExecProcess> {
    const stored = this.states.read(id);
    const status = await this.states.status(stored);
    if (status !== 'running' && status !== 'created')
      throw new RuntimeError('ESTATE', `cannot exec in a ${status} container`);
    const spec = this.states.spec(id);
    // The container's oomScoreAdj whatever the process file says, as runc's exec.
    const proc: Process = {
      ...spec.process!,
      ...options.process,
      oomScoreAdj: spec.process?.oomScoreAdj,
    } as Process;
    if (options.env?.length) proc.env = mergeEnv(proc.env ?? [], options.env);
    if (options.capabilities?.length)
      proc.capabilities = addCapabilities(proc.capabilities, options.capabilities);
    const preserveFds = fdsFrom3(options.preserveFds);
    if (proc.terminal && !options.consoleSocket)
      throw new RuntimeError(
        'EINVAL',
        'cannot allocate tty if runc will detach without setting console socket',
      );
    const { connectUnix } = await import('@box/sys');
    const consoleFd = options.consoleSocket ? connectUnix(options.consoleSocket) : undefined;
    try {
      const { execInContainer } = await import('../exec.js');
      const child = await execInContainer({
        pid: stored.pid,
        startTime: stored.pidStartTime,
        process: proc,
        cgroupsPath: stored.cgroupsPath,
        seccomp: spec.linux?.seccomp,
        stdio: options.stdio,
        consoleSocket: consoleFd,
        dieWithParent: !options.detach,
        detach: options.detach,
        preserveFds,
      });
      writePidFile(options.pidFile, child.pid);
      return child;
    } finally {
      if (consoleFd !== undefined) closeSync(consoleFd);
    }
  }
}

/**
 * The hooks of one kind, with hooks.ts (and the system calls it binds) loaded only when there
 * are some: most containers have none, and `start` and `delete` are each a process of their own.
 */
async function runHooks(
  kind: HookKind,
  hooks: Hook[] | undefined,
  state: OciState,
  place?: HookPlace,
): Promise<void> {
  // Only a missing or empty list skips the module: anything else (a malformed config's object,
  // say) goes to hooks.ts, which refuses it as before.
  if (hooks === undefined || (Array.isArray(hooks) && hooks.length === 0)) return;
  const { runHooks: run } = await import('./hooks.js');
  await run(kind, hooks, state, place);
}
