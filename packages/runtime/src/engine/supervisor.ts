/**
 * The owner of detached containers: starts them as its children, copies their output into
 * json-file logs (the log pump), records how they end, applies restart policies and
 * auto-removal. One supervisor watches every detached container, so an idle container costs the
 * host a few kilobytes here, not a process of its own.
 *
 * It runs in the box service (a long-running process that outlives the commands that start
 * containers), or in the process of a program that embeds the engine without a service; there
 * its containers die with that process (`inProcess`).
 */
import { closeSync, openSync } from 'node:fs';
import { Socket } from 'node:net';
import { join } from 'node:path';
import { pipe } from '@box/sys';
import { removeCgroupAt } from '../cgroup.js';
import { EngineError } from '../errors.js';
import { JsonFileLogger } from '../logs.js';
import { openProcess } from '../process/handle.js';
import type { ContainerExit, ContainerProcess } from '../run.js';
import type { EngineContext, Supervision } from './context.js';
import { HealthMonitor } from './health.js';
import { clearHealth, readHealth } from './health-state.js';
import { launch, recordExit } from './launch.js';
import { releaseNetwork } from './network-attach.js';
import { removeContainer } from './remove.js';
import { exitCodeOf } from './status.js';
import type { ContainerRecord } from './types.js';

interface Watched {
  lock: number;
  proc?: ContainerProcess;
  /** Its health checks, while it runs (a container with a health check). */
  health?: HealthMonitor;
}

export class Supervisor implements Supervision {
  private readonly watched = new Map<string, Watched>();
  private readonly idle = new Set<() => void>();

  constructor(
    private readonly ctx: EngineContext,
    private readonly options: { inProcess: boolean },
  ) {}

  /** Containers this supervisor currently watches. */
  get size(): number {
    return this.watched.size;
  }

  /** Starts a created or exited container. Rejects if another process owns it. */
  async start(id: string): Promise<number> {
    if (this.watched.has(id)) throw new EngineError('ESTATE', `container ${id} is already running`);
    const lock = await this.ctx.store.lockWait(id);
    if (lock === null) throw new EngineError('ESTATE', `container ${id} is already running`);
    const entry: Watched = { lock };
    this.watched.set(id, entry);
    try {
      return await this.run(id, entry);
    } catch (error) {
      this.release(id);
      throw error;
    }
  }

  private async run(id: string, entry: Watched): Promise<number> {
    const record = this.ctx.store.read(id);
    const logger = new JsonFileLogger(join(this.ctx.store.dir(id), 'json.log'), record.logOptions);
    const [outRead, outWrite] = pipe();
    const [errRead, errWrite] = pipe();
    const devNull = openSync('/dev/null', 'r');
    let proc: ContainerProcess;
    try {
      proc = await launch(this.ctx, record, {
        stdio: [devNull, outWrite, errWrite],
        detached: !this.options.inProcess,
        dieWithParent: this.options.inProcess,
      });
    } catch (error) {
      for (const fd of [outRead, errRead]) closeSync(fd);
      logger.close();
      throw error;
    } finally {
      for (const fd of [devNull, outWrite, errWrite]) closeSync(fd);
    }
    entry.proc = proc;
    this.watchHealth(id, entry);
    const drained = Promise.all([copyToLog(outRead, 'stdout', logger), copyToLog(errRead, 'stderr', logger)]);
    // A failure on the way (a removal that could not finish) is reported, never left to end
    // the service, which watches every other container too; recovery finishes the rest.
    proc.exited
      .then(async (exit) => {
        await drained;
        logger.close();
        await this.finished(id, exit);
      })
      .catch((error: Error) => process.stderr.write(`box service: container ${id}: ${error.message}\n`));
    return proc.pid;
  }

  /** Starts the health checks of a container that has them (from "starting" again). */
  private watchHealth(id: string, entry: Watched): void {
    entry.health?.stop();
    entry.health = undefined;
    clearHealth(this.ctx, id);
    let record: ContainerRecord;
    try {
      record = this.ctx.store.read(id);
    } catch {
      return;
    }
    entry.health = HealthMonitor.for(this.ctx, record);
    entry.health?.start();
  }

  private async finished(id: string, exit: ContainerExit): Promise<void> {
    const entry = this.watched.get(id);
    entry?.health?.stop();
    let state: ContainerRecord | undefined;
    try {
      state = this.ctx.store.read(id);
    } catch {
      state = undefined; // removed meanwhile
    }
    const restart = state !== undefined && this.shouldRestart(state, exitCodeOf(exit));
    // As docker: "Restarting" (never "exited" in between), with a growing delay between tries.
    const ended = recordExit(
      this.ctx,
      id,
      exit,
      restart ? { status: 'restarting', restartCount: (state?.restartCount ?? 0) + 1 } : {},
    );
    if (state && ended && restart) {
      const delay = Math.min(100 * 2 ** (state.restartCount ?? 0), 5000);
      setTimeout(() => {
        let current: ContainerRecord | undefined;
        try {
          current = this.ctx.store.read(id);
        } catch {
          current = undefined;
        }
        if (!entry || !current || current.error === 'stopped') {
          // Stopped or removed while waiting to restart.
          if (current) this.ctx.store.update(id, { status: 'exited' });
          this.release(id);
          return;
        }
        this.run(id, entry).catch((error: Error) => {
          this.ctx.store.update(id, { status: 'exited', error: error.message });
          this.release(id);
        });
      }, delay);
      return;
    }
    try {
      // Still holding the lock: nobody takes the container while it goes.
      if (ended?.autoRemove) await removeContainer(this.ctx, ended);
    } finally {
      this.release(id);
    }
  }

  private shouldRestart(state: ContainerRecord, exitCode: number): boolean {
    const policy = state.restartPolicy;
    if (!policy || policy.name === 'no' || state.autoRemove) return false;
    // A container stopped on purpose (stop, kill, remove -f) marks itself.
    if (state.error === 'stopped') return false;
    if (policy.name === 'always') return true;
    if (exitCode === 0) return false;
    return policy.maximumRetryCount === 0 || (state.restartCount ?? 0) < policy.maximumRetryCount;
  }

  private release(id: string): void {
    const entry = this.watched.get(id);
    if (!entry) return;
    entry.health?.stop();
    this.watched.delete(id);
    closeSync(entry.lock);
    if (this.watched.size === 0) for (const notify of this.idle) notify();
  }

  /** Resolves once nothing is watched (now, or when the last container ends). */
  whenIdle(): Promise<void> {
    if (this.watched.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const notify = () => {
        this.idle.delete(notify);
        resolve();
      };
      this.idle.add(notify);
    });
  }

  /**
   * After a supervisor was lost: take over detached containers that still run without an
   * owner. Their output pipes died with it and a non-parent cannot read their exit status, so
   * only their end is recorded (exit code 255, with the reason).
   */
  async adoptOrphans(): Promise<void> {
    for (const state of this.ctx.store.list()) {
      if (state.status !== 'running' || !state.detached || this.watched.has(state.id)) continue;
      const lock = this.ctx.store.lock(state.id);
      if (lock === null) continue;
      const entry: Watched = { lock };
      this.watched.set(state.id, entry);
      // Its checks go on where they were (the file is kept), from the next interval.
      entry.health = HealthMonitor.for(this.ctx, state, readHealth(this.ctx, state.id));
      entry.health?.start();
      this.watchOrphan(state).catch((error: Error) =>
        process.stderr.write(`box service: container ${state.id}: ${error.message}\n`),
      );
    }
  }

  private async watchOrphan(state: ContainerRecord): Promise<void> {
    // Woken when the process ends (its pidfd): no polling, and never a later process with its pid.
    const init = state.pid ? openProcess(state.pid, state.pidStartTime) : undefined;
    if (init) {
      try {
        await init.exited;
      } finally {
        init.close();
      }
    }
    const { oomKilled } = await removeCgroupAt(state.cgroupsPath);
    await releaseNetwork(this.ctx, state.id, {
      published: (state.ports?.length ?? 0) > 0,
      names: state.networks ?? [],
    }).catch(() => undefined);
    const ended = recordExit(
      this.ctx,
      state.id,
      { exitCode: 255, signal: null, oomKilled },
      { error: 'the box service was restarted while the container ran; its exit status is unknown' },
    );
    try {
      if (ended?.autoRemove) await removeContainer(this.ctx, ended);
    } finally {
      this.release(state.id);
    }
  }
}

function copyToLog(fd: number, stream: 'stdout' | 'stderr', logger: JsonFileLogger): Promise<void> {
  return new Promise((resolve) => {
    const socket = new Socket({ fd, readable: true, writable: false });
    socket.on('data', (chunk: Buffer) => logger.write(stream, chunk));
    socket.on('error', () => resolve());
    socket.on('close', () => resolve());
  });
}
