/**
 * The container engine: the container lifecycle docker users know, as a library. One engine per
 * state root; several processes may use the same root at once (records are made and changed
 * atomically, ownership is an flock, see store.ts).
 *
 *   const engine = createEngine({ root: '/var/lib/box', images });
 *   const c = await engine.run({ image: 'busybox', command: ['sh', '-c', 'date; sleep 60'] });
 *   for await (const entry of engine.logs(c.id)) …
 *
 * Each operation first recovers what dead processes left (once per engine, see recovery.ts).
 * Containers are referred to by name, full ID or unique ID prefix.
 */

import { closeSync, existsSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { WindowSize } from '@box/sys';
import { EngineError } from '../errors.js';
import { parseLogTime } from '../log-time.js';
import { type LogEntry, readLogs } from '../logs.js';
import type { LinuxResources } from '../spec.js';
import type { ContainerAttachIO, ContainerAttachment } from './attach-client.js';
import type { AttachRequest } from './attach-protocol.js';
import type { EngineContext, Supervision } from './context.js';
import { EventLog, type EventQuery, eventFilter } from './events.js';
import type { CommitOptions } from './filesystem.js';
import { isPaused } from './freezer.js';
import { readHealth } from './health-state.js';
import type { ContainerInspect } from './inspect.js';
import { containerDir, type Layout, layoutOf } from './layout.js';
import type { CreateNetworkOptions, NetworkInfo } from './networks.js';
import type { PipedIO } from './pipes.js';
import { reconcile } from './recovery.js';
import { isRootless, namespacePids, noBridgeNetworks } from './rootless.js';
import { hasCgroup, noCgroup } from './rootless-cgroups.js';
import type { ServeOptions } from './service.js';
import type { ServiceCommand } from './service-client.js';
import { secureStateDir } from './state-dir.js';
import { processAlive } from './status.js';
import { ContainerStore } from './store.js';
import type {
  AttachStdio,
  Container,
  ContainerProcessInfo,
  ContainerRecord,
  ContainerStats,
  CreateOptions,
  EngineEvent,
  ExecOptions,
  ExitStatus,
  HealthState,
  ImageProvider,
} from './types.js';
import type { VolumeInfo } from './volumes.js';

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

export interface EngineOptions {
  /** The state root (box uses /var/lib/box). Made, and closed to other users, on first use. */
  root: string;
  /** Where the service's socket and lock go (a rootless box's $XDG_RUNTIME_DIR/box); the root by default. */
  runtimeDir?: string;
  images: ImageProvider;
  /**
   * How to start the service that owns detached containers, so they outlive the process that
   * started them. Without it, this process owns them: they run while it runs and are killed
   * when it exits.
   */
  service?: ServiceCommand;
}

/** A container (or exec process) running attached to the caller's fds. */
export interface AttachedProcess {
  readonly id: string;
  readonly pid: number;
  /** Settles once the process ended and the container's record says so (or it was removed). */
  readonly exited: Promise<ExitStatus>;
  kill(signal?: NodeJS.Signals | number): void;
}

/**
 * A container's writable layer in bytes. A running container may change it under the walk (a
 * directory gone while it is listed): the walk is tried again; a removed container counts 0.
 */
function layerSizeOf(treeSize: (dir: string) => number, record: ContainerRecord): number {
  for (let attempt = 0; ; attempt++) {
    try {
      return treeSize(record.overlay.upperdir);
    } catch (error) {
      if (!existsSync(record.overlay.upperdir)) return 0;
      if (attempt >= 2) throw error;
    }
  }
}

/** A volume with what `system df` says of it. */
export interface VolumeUsage extends VolumeInfo {
  /** Bytes of its files (a hard-linked one once). */
  size: number;
  /** Containers, in any state, that mount it. */
  refCount: number;
}

export function createEngine(options: EngineOptions): Engine {
  return new Engine(options);
}

export class Engine {
  readonly layout: Layout;
  private readonly ctx: EngineContext;
  private recovered: Promise<void> | undefined;
  private local: import('./supervisor.js').Supervisor | undefined;
  private readonly serviced: boolean;
  private readonly owner: () => Promise<Supervision>;

  constructor(options: EngineOptions) {
    if (!options.root.startsWith('/'))
      throw new EngineError('EINVAL', `the state root must be an absolute path: "${options.root}"`);
    this.layout = layoutOf(options.root, options.runtimeDir);
    this.serviced = options.service !== undefined;
    // Loaded when a container is first started or adopted: commands that only read do not pay.
    const { service } = options;
    let client: Promise<Supervision> | undefined;
    const owner = (): Promise<Supervision> => {
      if (!service) return this.localSupervisor();
      client ??= import('./service-client.js').then(
        ({ ServiceClient }) => new ServiceClient(this.layout, service),
      );
      return client;
    };
    this.owner = owner;
    const supervision: Supervision = {
      start: async (id) => (await owner()).start(id),
      adoptOrphans: async () => (await owner()).adoptOrphans(),
    };
    this.ctx = {
      layout: this.layout,
      store: new ContainerStore(this.layout),
      images: options.images,
      events: new EventLog(this.layout.events),
      supervision,
    };
  }

  get root(): string {
    return this.layout.root;
  }

  private async localSupervisor() {
    if (!this.local) {
      const { Supervisor } = await import('./supervisor.js');
      this.local = new Supervisor(this.ctx, { inProcess: true });
    }
    return this.local;
  }

  /** Recovers what dead processes left; run once by the first operation of this engine. */
  async reconcile(): Promise<void> {
    secureStateDir(this.layout);
    await reconcile(this.ctx);
  }

  private ready(): Promise<void> {
    this.recovered ??= this.reconcile();
    return this.recovered;
  }

  private async find(reference: string): Promise<ContainerRecord> {
    await this.ready();
    return this.ctx.store.find(reference);
  }

  private async view(record: ContainerRecord): Promise<Container> {
    let spec: Container['spec'];
    try {
      spec = this.ctx.store.readSpec(record.id);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      throw new EngineError('ENOCONTAINER', `No such container: ${record.id}`); // removed meanwhile
    }
    const running = processAlive(record);
    return {
      ...record,
      running,
      paused: running && (await isPaused(record.cgroupsPath)),
      spec,
      logPath: join(containerDir(this.layout, record.id), 'json.log'),
      ...withHealth(record.healthcheck ? readHealth(this.ctx, record.id) : undefined),
    };
  }

  private async running(reference: string): Promise<ContainerRecord> {
    const record = await this.find(reference);
    if (!processAlive(record)) throw new EngineError('ESTATE', `container ${reference} is not running`);
    return record;
  }

  // ---- create, start, run ----

  /** Makes a container from an image; it does not run yet. */
  async create(options: CreateOptions): Promise<Container> {
    await this.ready();
    const { createContainer } = await import('./create.js');
    const { container, record } = await createContainer(this.ctx, options);
    closeSync(container.lock);
    return this.view(record);
  }

  /** Starts a created or stopped container detached (owned by the supervisor). */
  async start(reference: string): Promise<Container> {
    const record = await this.find(reference);
    if (processAlive(record)) throw new EngineError('ESTATE', `container ${reference} is already running`);
    if (record.status === 'restarting')
      throw new EngineError('ESTATE', `container ${reference} is restarting`);
    await this.ctx.supervision.start(record.id);
    return this.view(this.ctx.store.read(record.id));
  }

  /** create + start: a detached container. */
  async run(options: CreateOptions): Promise<Container> {
    const created = await this.create(options);
    try {
      return await this.start(created.id);
    } catch (error) {
      await this.remove(created.id, { force: true }).catch(() => undefined);
      throw error;
    }
  }

  /**
   * create + start attached: the container's stdio are the caller's fds (or a terminal sent
   * over `consoleSocket`), it is owned by this process and killed if this process dies. Its end
   * is recorded (or, with autoRemove, the container removed) before `exited` settles. A start
   * that fails removes the container.
   */
  async runAttached(options: CreateOptions, stdio: AttachStdio = {}): Promise<AttachedProcess> {
    await this.ready();
    const { attachedRun } = await import('./attached.js');
    const { createContainer } = await import('./create.js');
    const { container, record } = await createContainer(this.ctx, options, true);
    return attachedRun(this.ctx, container, record, stdio);
  }

  /**
   * create + start attached, with pipes for its stdio copied to and from `io` (no terminal:
   * the container never gets the caller's own fds). When the service runs, it runs the
   * container and streams its stdio over its socket (it is warm: the caller loads no spawn
   * code); otherwise this process does. Either way the container is the caller's: it is
   * killed if the caller goes away. `exited` settles once its output has all been copied.
   */
  async runPiped(options: CreateOptions, io: PipedIO): Promise<AttachedProcess> {
    await this.ready();
    // The caller's choice of overlay goes with it: the service's environment is not the caller's.
    const { fuseOverlayChoice } = await import('./rootless-overlay.js');
    const fuseOverlay = options.fuseOverlay ?? fuseOverlayChoice();
    if (fuseOverlay !== undefined) options = { ...options, fuseOverlay };
    const remote = await this.remote({ op: 'run', options, stdin: io.stdin !== undefined }, io);
    if (remote) return remote;
    const { runPipedHere } = await import('./piped.js');
    return runPipedHere(this.ctx, options, io);
  }

  /**
   * Attaches to a running container the box service runs, or without a service this engine's own
   * supervisor (docker's attach): its output from now
   * on, to every attacher alike; the caller's input when it was made with -i, through the detach
   * keys (docker's `ctrl-p,ctrl-q` unless given; EINVAL for a spec docker refuses). With `start`,
   * starts the created container first, attached from its first byte (a foreground `run -it`,
   * which the caller can then leave running). `ended` settles with its exit status, or detached.
   */
  async attach(
    reference: string,
    io: ContainerAttachIO,
    options: { detachKeys?: string; start?: boolean; size?: WindowSize } = {},
  ): Promise<ContainerAttachment> {
    const { DEFAULT_DETACH_KEYS, parseDetachKeys } = await import('./detach-keys.js');
    const keys = parseDetachKeys(options.detachKeys ?? DEFAULT_DETACH_KEYS);
    const record = await this.find(reference);
    const { attachContainer, connectService } = await import('./attach-client.js');
    let socket: import('node:net').Socket | undefined;
    if (this.serviced) {
      if (options.start) await (await this.owner()).adoptOrphans(); // starts the service
      socket = await connectService(this.layout.serviceSocket);
      if (!socket)
        throw new EngineError(
          'ESTATE',
          `cannot attach to container ${reference}: it is not running under the box service`,
        );
    } else {
      // This process's own supervisor runs its detached containers: attached here.
      const { attachInProcess } = await import('./attach-server.js');
      socket = attachInProcess(this.ctx, await this.localSupervisor());
    }
    return attachContainer(
      socket,
      {
        op: 'attach',
        reference: record.id,
        stdin: io.stdin !== undefined,
        start: options.start,
        size: options.size,
      },
      io,
      keys,
    );
  }

  /** exec with pipes for its stdio, as runPiped; `exited` also settles once the pipes are quiet for 0.5 s. */
  async execPiped(reference: string, options: ExecOptions, io: PipedIO): Promise<AttachedProcess> {
    await this.running(reference);
    const remote = await this.remote({ op: 'exec', reference, options, stdin: io.stdin !== undefined }, io);
    if (remote) return remote;
    const { execPipedHere } = await import('./piped.js');
    return execPipedHere(this.ctx, reference, options, io);
  }

  /** Served by the service, when there is one and it runs (never started for this). */
  private async remote(
    request: DistributiveOmit<AttachRequest, 'mountNamespace'>,
    io: PipedIO,
  ): Promise<AttachedProcess | undefined> {
    if (!this.serviced) return undefined;
    const { attachRemote } = await import('./attach-client.js');
    return attachRemote(
      this.layout.serviceSocket,
      { ...request, mountNamespace: readlinkSync('/proc/self/ns/mnt') },
      io,
    );
  }

  // ---- what there is ----

  /**
   * Containers, newest first; only running ones unless `all`. With `size`, each with the bytes
   * of its writable layer (`sizeRw`), which takes a walk of it.
   */
  async list(options: { all?: boolean; size?: boolean } = {}): Promise<Container[]> {
    await this.ready();
    const records = this.ctx.store.list().reverse();
    const views: Container[] = [];
    const treeSize = options.size ? (await import('@box/unionfs')).treeSize : undefined;
    for (const record of records) {
      let view: Container;
      try {
        view = await this.view(record);
      } catch {
        continue; // removed meanwhile
      }
      if (!options.all && !view.running) continue;
      if (treeSize) view.sizeRw = layerSizeOf(treeSize, record);
      views.push(view);
    }
    return views;
  }

  async inspect(reference: string): Promise<Container> {
    return this.view(await this.find(reference));
  }

  /** The container as docker's `inspect` shows it (docker's ContainerJSON, for what box has). */
  async inspectContainer(reference: string): Promise<ContainerInspect> {
    const container = await this.inspect(reference);
    const [{ containerInspect }, { Networks }, { volumePath }] = await Promise.all([
      import('./inspect.js'),
      import('./networks.js'),
      import('./volumes.js'),
    ]);
    // The image is held while the container exists, but `rmi -f` may have taken it.
    const imageConfig =
      container.imageId && this.ctx.images.config
        ? await this.ctx.images.config(container.imageId).catch(() => undefined)
        : undefined;
    const networks = new Networks(this.layout);
    return containerInspect(container, {
      volumePath: (name) => volumePath(this.layout, name),
      imageConfig,
      networkId: (name) => {
        try {
          return networks.get(name).id;
        } catch {
          return '';
        }
      },
    });
  }

  // ---- stop, kill, restart, remove, wait ----

  /**
   * Its stop signal (SIGTERM unless --stop-signal or the image's StopSignal), then SIGKILL after
   * `timeout` seconds (default: its --stop-timeout, else 10); a stopped container is left as it is.
   */
  async stop(reference: string, options: { timeout?: number } = {}): Promise<void> {
    const { stopContainer } = await import('./lifecycle.js');
    await stopContainer(this.ctx, await this.find(reference), options.timeout);
  }

  /** Sends a signal (default SIGKILL) to the container's process; its restart policy no longer applies. */
  async kill(reference: string, signal: number = 9): Promise<void> {
    const { signalContainer } = await import('./lifecycle.js');
    const record = await this.find(reference);
    if (!processAlive(record))
      throw new EngineError('ESTATE', `cannot kill container ${reference}: container is not running`);
    this.ctx.store.update(record.id, { error: 'stopped' });
    await signalContainer(record, signal);
  }

  async restart(reference: string, options: { timeout?: number } = {}): Promise<void> {
    await this.stop(reference, options);
    const record = await this.find(reference);
    this.ctx.store.update(record.id, { error: undefined });
    await this.ctx.supervision.start(record.id);
  }

  /**
   * Removes a container. A running one is refused unless `force` (SIGKILL to everything in it);
   * `volumes` removes its anonymous volumes too.
   */
  async remove(reference: string, options: { force?: boolean; volumes?: boolean } = {}): Promise<void> {
    const record = await this.find(reference);
    const { store } = this.ctx;
    const refused = () =>
      new EngineError(
        'ESTATE',
        `cannot remove container "${reference}": container is running: stop the container before removing or force remove`,
      );
    // Owned and marked: being started, an exited container as well as a created one. (An exited
    // one is also owned for a moment after its end is recorded, unmarked: that one may go.)
    const busy =
      processAlive(record) ||
      record.status === 'restarting' ||
      ((record.status === 'created' || store.isStarting(record.id)) && store.isOwned(record.id));
    if (busy && !options.force) throw refused();
    if (options.force) return this.forceRemove(record, reference, options.volumes);
    // Removed under the container's lock. A start takes it before it makes anything and keeps it
    // while the container runs, so a start that began after the look above is waited for a moment
    // and then refused, rather than losing its cgroup, address and record while its process
    // starts. The owner that recorded a container's end lets go of the lock right after.
    const lock = await store.lockWait(record.id);
    const idle = (current: ContainerRecord) => !processAlive(current) && current.status !== 'restarting';
    let outcome: 'removed' | 'refused' | 'gone';
    if (lock !== null) outcome = await this.removeHeld(record.id, lock, idle, options.volumes);
    else outcome = existsSync(store.dir(record.id)) ? 'refused' : 'gone';
    if (outcome === 'refused') throw refused();
    // Removed meanwhile (its --rm owner, another rm): as docker, no such container.
    if (outcome === 'gone') throw new EngineError('ENOCONTAINER', `No such container: ${reference}`);
  }

  /**
   * rm -f: kills everything of the container, then removes it under its lock as rm does. A start
   * that takes the lock between the kill and the removal (`box start` racing `rm -f`) is killed in
   * turn and waited for, rather than losing its cgroup, address and record while its process
   * starts; one that keeps coming back is refused rather than removed under. An owner
   * that does not let go within forceStop's bounded wait (stuck) does not stop the removal: it
   * goes on without the lock, as the one way out of a wedged container.
   */
  private async forceRemove(record: ContainerRecord, reference: string, volumes?: boolean): Promise<void> {
    const { store } = this.ctx;
    const { forceStop } = await import('./lifecycle.js');
    // forceStop clears autoRemove (its owner must not remove it too): an --rm container's
    // anonymous volumes go with it all the same, as they would have at its end.
    volumes ||= record.autoRemove === true;
    const unlocked = async () => {
      let current: ContainerRecord;
      try {
        current = store.read(record.id);
      } catch {
        return this.removedMeanwhile(record, volumes);
      }
      const { removeContainer } = await import('./remove.js');
      return removeContainer(this.ctx, current, { volumes });
    };
    for (let round = 1; round <= 3; round++) {
      const stop = await forceStop(this.ctx, record.id);
      if (stop === 'stuck') return unlocked();
      // A record without its lock file (damaged by hand) can be locked by nobody: rm -f is the way
      // out of it.
      const lockless = stop === 'stopped' && !existsSync(join(store.dir(record.id), 'lock'));
      if (lockless && existsSync(store.dir(record.id))) return unlocked();
      // Waited for a moment: another command may be looking at it under the lock.
      const lock = stop === 'gone' ? null : await store.lockWait(record.id);
      if (lock !== null && (await this.removeHeld(record.id, lock, () => true, volumes)) === 'removed')
        return;
      if (!existsSync(store.dir(record.id))) return this.removedMeanwhile(record, volumes);
    }
    throw new EngineError(
      'ESTATE',
      `cannot remove container "${reference}": it was started again each time it was killed for removal`,
    );
  }

  /**
   * A container removed by another command while this one removed it (its --rm owner, another
   * rm): what `volumes` asked for is still done.
   */
  private async removedMeanwhile(record: ContainerRecord, volumes?: boolean): Promise<void> {
    if (!volumes) return;
    const { removeAnonymousVolumes } = await import('./remove.js');
    removeAnonymousVolumes(this.ctx, record);
  }

  /**
   * Removes a container whose lock the caller took (closed here), if its record, read again under
   * the lock, is `removable`. 'gone' when it was removed meanwhile.
   */
  private async removeHeld(
    id: string,
    lock: number,
    removable: (record: ContainerRecord) => boolean,
    volumes?: boolean,
  ): Promise<'removed' | 'refused' | 'gone'> {
    try {
      let record: ContainerRecord;
      try {
        record = this.ctx.store.read(id);
      } catch {
        return 'gone';
      }
      if (!removable(record)) return 'refused';
      const { removeContainer } = await import('./remove.js');
      await removeContainer(this.ctx, record, { volumes });
      return 'removed';
    } finally {
      closeSync(lock);
    }
  }

  /** Kills every container of `references` at once (before removing them one by one). */
  async killForRemoval(references: readonly string[]): Promise<void> {
    await this.ready();
    const { killEverything } = await import('./lifecycle.js');
    await Promise.all(
      references.map(async (reference) => {
        try {
          const record = this.ctx.store.find(reference);
          if (record.status === 'exited') return;
          this.ctx.store.update(record.id, { error: 'stopped', autoRemove: false });
          await killEverything(record);
        } catch {
          // reported by the removal itself
        }
      }),
    );
  }

  /** Resolves with the exit code once the container has stopped. */
  async wait(reference: string): Promise<number> {
    const { waitExited } = await import('./lifecycle.js');
    const record = await waitExited(this.ctx, (await this.find(reference)).id);
    return record.exitCode ?? 0;
  }

  /** Removes every stopped container; resolves with their IDs. */
  async prune(): Promise<string[]> {
    await this.ready();
    const removed: string[] = [];
    const { store } = this.ctx;
    for (const listed of store.list()) {
      if (listed.status !== 'exited' && listed.status !== 'created') continue;
      // Under its lock, as rm: one a start holds (created or exited) is left as it is. Only an
      // exited one that no start has marked is waited for (its owner lets go of it right after
      // recording the end); a start is not, so that many `run -d` do not hold prune up.
      const waits = listed.status === 'exited' && !store.isStarting(listed.id);
      const lock = waits ? await store.lockWait(listed.id) : store.lock(listed.id);
      if (lock === null) continue;
      const stopped = (record: ContainerRecord) => record.status === 'exited' || record.status === 'created';
      if ((await this.removeHeld(listed.id, lock, stopped)) === 'removed') removed.push(listed.id);
    }
    return removed;
  }

  async rename(reference: string, name: string): Promise<void> {
    const record = await this.find(reference);
    this.ctx.store.rename(record, name);
    this.ctx.events.emit('rename', { ...record, name }, undefined, record.name);
  }

  // ---- inside a running container ----

  /**
   * Runs another process in a running container, in all its namespaces and its cgroup, attached
   * to the caller's fds (none: /dev/null). Resolves once it runs.
   */
  async exec(reference: string, options: ExecOptions, stdio: AttachStdio = {}): Promise<AttachedProcess> {
    const record = await this.running(reference);
    const { execIn } = await import('./exec.js');
    return execIn(this.ctx, record, options, stdio);
  }

  /** The processes of a running container. */
  async top(reference: string): Promise<ContainerProcessInfo[]> {
    const record = await this.running(reference);
    const { topOf } = await import('./observe.js');
    return topOf(record);
  }

  /**
   * The host's `ps` with `psArgs` (docker's single string, `-ef` when empty) over the processes
   * of a running container, as `docker top CONTAINER [ps OPTIONS]`.
   */
  async psTop(reference: string, psArgs = ''): Promise<import('./ps-top.js').ProcessTable> {
    const { psTable, validatePsArgs } = await import('./ps-top.js');
    validatePsArgs(psArgs);
    const record = await this.running(reference);
    if (!hasCgroup(record)) return psTable(namespacePids(record.pid), psArgs);
    const { createCgroupManager } = await import('@box/cgroups');
    const pids = await (await createCgroupManager({ path: record.cgroupsPath })).pids();
    return psTable(pids, psArgs);
  }

  /** Resource usage of running containers (all running ones without references), measured over `intervalMs`. */
  async stats(
    references: readonly string[] = [],
    options: { intervalMs?: number } = {},
  ): Promise<ContainerStats[]> {
    await this.ready();
    const { store } = this.ctx;
    const records =
      references.length > 0
        ? references.map((reference) => {
            const record = store.find(reference);
            if (!store.isOwned(record.id))
              throw new EngineError('ESTATE', `container ${reference} is not running`);
            return record;
          })
        : // All running ones: those without a cgroup (rootless) have nothing to show.
          store.list().filter((r) => r.status !== 'exited' && store.isOwned(r.id) && hasCgroup(r));
    if (records.some((record) => !hasCgroup(record))) throw await noCgroup('stats');
    const { statsOf } = await import('./observe.js');
    return statsOf(records, options.intervalMs);
  }

  async pause(reference: string): Promise<void> {
    const record = await this.running(reference);
    if (!hasCgroup(record)) throw await noCgroup('pause');
    const { freeze } = await import('./freezer.js');
    await freeze(record.cgroupsPath);
    this.ctx.events.emit('pause', record);
  }

  async unpause(reference: string): Promise<void> {
    const record = await this.running(reference);
    if (!(await isPaused(record.cgroupsPath)))
      throw new EngineError('ESTATE', `container ${reference} is not paused`);
    const { thaw } = await import('./freezer.js');
    await thaw(record.cgroupsPath);
    this.ctx.events.emit('unpause', record);
  }

  /** New resource limits for a running container, kept in its config for inspect and restarts. */
  async update(reference: string, resources: LinuxResources): Promise<void> {
    const record = await this.running(reference);
    if (!hasCgroup(record)) throw await noCgroup('update');
    const { createCgroupManager } = await import('@box/cgroups');
    const { toResources } = await import('../cgroup.js');
    await (await createCgroupManager({ path: record.cgroupsPath })).update(toResources(resources));
    const spec = this.ctx.store.readSpec(record.id);
    const current = spec.linux?.resources ?? {};
    spec.linux = {
      ...spec.linux,
      resources: {
        ...current,
        memory: { ...current.memory, ...resources.memory },
        cpu: { ...current.cpu, ...resources.cpu },
        ...(resources.pids ? { pids: resources.pids } : {}),
      },
    };
    this.ctx.store.writeSpec(this.ctx.store.dir(record.id), spec);
  }

  // ---- output and events ----

  /**
   * The container's output (json-file log), the last `tail` entries; with `follow`, then what it
   * writes until it stops (or `signal` aborts).
   */
  async *logs(
    reference: string,
    options: {
      follow?: boolean;
      tail?: number;
      signal?: AbortSignal;
      /** docker's forms: `10m` (before now), RFC 3339 (`2024-01-02T13:23:37Z`), Unix seconds. */
      since?: string;
      until?: string;
    } = {},
  ): AsyncGenerator<LogEntry> {
    const now = new Date();
    const window = (name: 'since' | 'until'): bigint | undefined => {
      const value = options[name];
      if (value === undefined || value === '') return undefined;
      try {
        return parseLogTime(value, now);
      } catch (error) {
        throw new EngineError('EINVAL', `invalid value for "${name}": ${(error as Error).message}`);
      }
    };
    const since = window('since');
    const until = window('until');
    const record = await this.find(reference);
    let ended: Promise<unknown> | undefined;
    if (options.follow) {
      const { waitExited } = await import('./lifecycle.js');
      ended = waitExited(this.ctx, record.id).catch(() => undefined);
      if (options.signal) {
        const aborted = new Promise((resolve) =>
          options.signal!.addEventListener('abort', resolve, { once: true }),
        );
        ended = Promise.race([ended, aborted]);
      }
    }
    const path = join(containerDir(this.layout, record.id), 'json.log');
    yield* readLogs(path, {
      tail: options.tail,
      follow: options.follow,
      until: ended,
      sinceNs: since,
      untilNs: until,
    });
  }

  /**
   * create/start/die/oom/destroy/… events in the query's time window that pass its filters
   * (docker's); with `follow`, new ones until `signal` aborts or `until` has come. A filter key
   * docker does not know is refused (EINVAL) before anything is read.
   */
  async *events(query: EventQuery = {}): AsyncGenerator<EngineEvent> {
    secureStateDir(this.layout);
    eventFilter(query.filters);
    yield* this.ctx.events.read(query);
  }

  // ---- files and images ----

  /**
   * Copies `source` in the container to `target` on the host (see ../rootfs/copy.ts), owned as
   * in the container or, with `owner`, by that host user (docker's cp gives the user running it).
   */
  async copyFrom(
    reference: string,
    source: string,
    target: string,
    options: { owner?: { uid: number; gid: number } } = {},
  ): Promise<void> {
    const record = await this.find(reference);
    const { withRoot } = await import('./filesystem.js');
    const { copyFromRoot } = await import('../rootfs/copy.js');
    await withRoot(record, (root) => copyFromRoot(root, source, target, { owner: options.owner }));
  }

  /**
   * Copies `source` on the host to `target` in the container, with the owners it has on the
   * host; with `archive` (docker's cp -a) owned by the container's user when it has one.
   */
  async copyTo(
    reference: string,
    source: string,
    target: string,
    options: { archive?: boolean } = {},
  ): Promise<void> {
    const record = await this.find(reference);
    const { withRoot, containerUserOwner } = await import('./filesystem.js');
    const { copyIntoRoot } = await import('../rootfs/copy.js');
    const owner = options.archive ? containerUserOwner(this.ctx, record) : undefined;
    await withRoot(record, (root) => copyIntoRoot(root, source, target, { owner }));
  }

  /** The container's changes against its image (A added, C changed, D deleted), as docker's `diff`. */
  async diff(reference: string): Promise<import('@box/unionfs').Change[]> {
    const record = await this.find(reference);
    const { changesOf } = await import('./filesystem.js');
    return changesOf(this.ctx, record);
  }

  /** The container's filesystem as a tar stream into `out`. */
  async export(reference: string, out: NodeJS.WritableStream): Promise<void> {
    const record = await this.find(reference);
    const { exportTo } = await import('./filesystem.js');
    await exportTo(record, out);
  }

  /** The container's changes as a new image (through the image provider); resolves with its ID. */
  async commit(reference: string, options: CommitOptions = {}): Promise<string> {
    const record = await this.find(reference);
    const { commitContainer } = await import('./filesystem.js');
    return commitContainer(this.ctx, record, options);
  }

  // ---- volumes ----

  async createVolume(name?: string, options: { labels?: Record<string, string> } = {}): Promise<VolumeInfo> {
    const { createVolume } = await import('./volumes.js');
    const random = Buffer.from(globalThis.crypto.getRandomValues(new Uint8Array(32))).toString('hex');
    return createVolume(this.layout, name ?? random, options);
  }

  async listVolumes(): Promise<VolumeInfo[]> {
    const { listVolumes } = await import('./volumes.js');
    return listVolumes(this.layout);
  }

  async inspectVolume(name: string): Promise<VolumeInfo> {
    const { readVolume } = await import('./volumes.js');
    const info = readVolume(this.layout, name);
    if (!info) throw new EngineError('ENOVOLUME', `no such volume: ${name}`);
    return info;
  }

  /**
   * What containers and volumes hold on disk, as docker's `system df` counts it: every container
   * with its writable layer's bytes (`sizeRw`), every volume with its bytes and how many
   * containers (any state) mount it. Images are the image provider's.
   */
  async diskUsage(): Promise<{ containers: Container[]; volumes: VolumeUsage[] }> {
    const containers = await this.list({ all: true, size: true });
    const { treeSize } = await import('@box/unionfs');
    const records = this.ctx.store.list();
    const volumes = (await this.listVolumes()).map((volume) => ({
      ...volume,
      size: treeSize(volume.Mountpoint),
      refCount: records.filter(
        (c) => (c.volumes ?? []).includes(volume.Name) || (c.anonymousVolumes ?? []).includes(volume.Name),
      ).length,
    }));
    return { containers, volumes };
  }

  /** Names of the containers (any state) that mount a volume. */
  async volumeUsers(name: string): Promise<string[]> {
    await this.ready();
    return this.ctx.store
      .list()
      .filter((c) => (c.volumes ?? []).includes(name) || (c.anonymousVolumes ?? []).includes(name))
      .map((c) => c.name);
  }

  /** Removes a volume; refused while a container uses it. */
  async removeVolume(name: string): Promise<void> {
    await this.inspectVolume(name);
    const users = await this.volumeUsers(name);
    if (users.length > 0)
      throw new EngineError(
        'EVOLUMEINUSE',
        `remove ${name}: volume is in use by container(s) ${users.join(', ')}`,
      );
    const { removeVolume } = await import('./volumes.js');
    removeVolume(this.layout, name);
  }

  /** Removes unused anonymous volumes (all unused ones with `all`); resolves with their names. */
  async pruneVolumes(options: { all?: boolean } = {}): Promise<string[]> {
    const removed: string[] = [];
    for (const volume of await this.listVolumes()) {
      if ((volume.Anonymous || options.all) && (await this.volumeUsers(volume.Name)).length === 0) {
        const { removeVolume } = await import('./volumes.js');
        removeVolume(this.layout, volume.Name);
        removed.push(volume.Name);
      }
    }
    return removed;
  }

  // ---- networks ----

  /** docker's network create: a bridge network with its own subnet (chosen when not given). */
  async createNetwork(name: string, options: CreateNetworkOptions = {}): Promise<NetworkInfo> {
    await this.ready();
    if (isRootless()) throw noBridgeNetworks('network create');
    return (await import('./network-commands.js')).createNetwork(this.ctx, name, options);
  }

  async listNetworks(): Promise<NetworkInfo[]> {
    await this.ready();
    // Rootless: none of box's (only the modes none and host).
    if (isRootless()) return [];
    return (await import('./network-commands.js')).listNetworks(this.ctx);
  }

  async inspectNetwork(reference: string): Promise<NetworkInfo> {
    await this.ready();
    return (await import('./network-commands.js')).inspectNetwork(this.ctx, reference);
  }

  /** docker's network connect: at once for a running container (eth1, …), else from its next start. */
  async connectNetwork(network: string, container: string, options: { ip?: string } = {}): Promise<void> {
    if (isRootless()) throw noBridgeNetworks('network connect');
    const { id } = await this.find(container);
    const { connectNetwork } = await import('./network-attach.js');
    await this.ctx.store.withNetworkLock(id, (record) => connectNetwork(this.ctx, record, network, options));
  }

  /** docker's network disconnect. */
  async disconnectNetwork(network: string, container: string): Promise<void> {
    const { id } = await this.find(container);
    const { disconnectNetwork } = await import('./network-attach.js');
    await this.ctx.store.withNetworkLock(id, (record) => disconnectNetwork(this.ctx, record, network));
  }

  /** Refused (ENETWORKINUSE) while a running container is on it. */
  async removeNetwork(reference: string): Promise<void> {
    await this.ready();
    await (await import('./network-commands.js')).removeNetwork(this.ctx, reference);
  }

  /**
   * Removes every network of this state root, the default one included, with their bridges and
   * firewall rules: for an embedder done with a root (a test's temporary one, say).
   */
  async removeAllNetworks(): Promise<void> {
    await this.ready();
    if (isRootless()) return;
    await (await import('./network-commands.js')).removeAllNetworks(this.ctx);
  }

  async pruneNetworks(): Promise<string[]> {
    await this.ready();
    if (isRootless()) return [];
    return (await import('./network-commands.js')).pruneNetworks(this.ctx);
  }

  // ---- the service ----

  /** Serves as the box service (the owner of detached containers) until idle; see service.ts. */
  async serve(options: ServeOptions = {}): Promise<void> {
    const { serve } = await import('./service.js');
    await serve(this.ctx, options);
  }

  /** Resolves once this process's own supervisor (no service) watches no container. */
  async idle(): Promise<void> {
    await this.local?.whenIdle();
  }
}

function withHealth(health: HealthState | undefined): { health?: HealthState } {
  return health ? { health } : {};
}
