/**
 * The box service's work: start detached containers as its children, copy
 * their output into json-file logs, record how they end, apply restart
 * policies and --rm. One service watches every detached container, so an idle
 * container costs the host a few kilobytes here, not a process of its own.
 */
import { closeSync, openSync } from 'node:fs';
import { Socket } from 'node:net';
import { join } from 'node:path';
import { createCgroupManager } from '@box/cgroups';
import { type ContainerExit, type ContainerProcess, JsonFileLogger, startContainer } from '@box/runtime';
import { pipe } from '@box/sys';
import {
  type ContainerState,
  containerDir,
  listContainers,
  lockContainer,
  lockContainerWait,
  processAlive,
  processStartTime,
  readState,
  removeContainer,
  updateState,
} from '../containers.js';
import { readSpec } from '../create.js';
import { CliError } from '../errors.js';

interface Watched {
  lock: number;
  proc?: ContainerProcess;
}

export class Supervisor {
  private readonly watched = new Map<string, Watched>();

  /** Containers this service currently watches. */
  get size(): number {
    return this.watched.size;
  }

  /** Starts a created or exited container. Rejects if another process owns it. */
  async start(id: string): Promise<number> {
    if (this.watched.has(id)) throw new CliError(`container ${id} is already running`);
    const lock = await lockContainerWait(id);
    if (lock === null) throw new CliError(`container ${id} is already running`, 1);
    const entry: Watched = { lock };
    this.watched.set(id, entry);
    try {
      return await this.launch(id, entry);
    } catch (error) {
      this.watched.delete(id);
      closeSync(lock);
      throw error;
    }
  }

  private async launch(id: string, entry: Watched): Promise<number> {
    const state = readState(id);
    const dir = containerDir(id);
    const spec = readSpec(dir);
    const logger = new JsonFileLogger(join(dir, 'json.log'), state.logOptions);
    const [outRead, outWrite] = pipe();
    const [errRead, errWrite] = pipe();
    const devNull = openSync('/dev/null', 'r');
    let proc: ContainerProcess;
    try {
      proc = await startContainer({
        spec,
        overlay: state.overlay,
        stdio: [devNull, outWrite, errWrite],
        onSync: (pid) => this.markRunning(id, pid),
      });
    } catch (error) {
      for (const fd of [outRead, errRead]) closeSync(fd);
      logger.close();
      // It never ran: back to created, with the reason (as docker keeps a failed start).
      updateState(id, {
        status: 'created',
        pid: undefined,
        pidStartTime: undefined,
        error: (error as Error).message,
      });
      throw error;
    } finally {
      for (const fd of [devNull, outWrite, errWrite]) closeSync(fd);
    }
    entry.proc = proc;
    const drained = Promise.all([copyToLog(outRead, 'stdout', logger), copyToLog(errRead, 'stderr', logger)]);
    void proc.exited.then(async (exit) => {
      await drained;
      logger.close();
      await this.finished(id, exit);
    });
    return proc.pid;
  }

  /** Recorded while the process waits at its sync point, before it runs. */
  private markRunning(id: string, pid: number): void {
    updateState(id, {
      status: 'running',
      detached: true,
      pid,
      pidStartTime: processStartTime(pid),
      started: new Date().toISOString(),
      exitCode: undefined,
      finished: undefined,
      oomKilled: undefined,
      error: undefined,
    });
  }

  private async finished(id: string, exit: ContainerExit): Promise<void> {
    const entry = this.watched.get(id);
    const exitCode = exit.signal !== null ? 128 + exit.signal : (exit.exitCode ?? 255);
    const ended = { exitCode, oomKilled: exit.oomKilled, finished: new Date().toISOString() };
    let state: ContainerState | undefined;
    try {
      state = readState(id);
    } catch {
      state = undefined; // removed meanwhile
    }
    if (state && this.shouldRestart(state, exitCode)) {
      // As docker: "Restarting", with a growing delay between tries.
      updateState(id, { ...ended, status: 'restarting', restartCount: (state.restartCount ?? 0) + 1 });
      const delay = Math.min(100 * 2 ** (state.restartCount ?? 0), 5000);
      setTimeout(() => {
        let current: ContainerState | undefined;
        try {
          current = readState(id);
        } catch {
          current = undefined;
        }
        if (!entry || !current || current.error === 'stopped') {
          // Stopped or removed while waiting to restart.
          if (current) updateState(id, { status: 'exited' });
          this.release(id);
          return;
        }
        this.launch(id, entry).catch((error: Error) => {
          updateState(id, { status: 'exited', error: error.message });
          this.release(id);
        });
      }, delay);
      return;
    }
    state = updateState(id, { ...ended, status: 'exited' });
    this.release(id);
    if (state?.autoRemove) await removeContainer(state);
  }

  private shouldRestart(state: ContainerState, exitCode: number): boolean {
    const policy = state.restartPolicy;
    if (!policy || policy.name === 'no' || state.autoRemove) return false;
    // A container stopped on purpose (box stop, kill, rm -f) marks itself.
    if (state.error === 'stopped') return false;
    if (policy.name === 'always') return true;
    if (exitCode === 0) return false;
    return policy.maximumRetryCount === 0 || (state.restartCount ?? 0) < policy.maximumRetryCount;
  }

  private release(id: string): void {
    const entry = this.watched.get(id);
    if (!entry) return;
    this.watched.delete(id);
    closeSync(entry.lock);
  }

  /**
   * After this service was restarted: take over detached containers whose
   * monitor is gone. Their output pipes died with it, and their exit status
   * cannot be read by a non-parent, so only their end is recorded.
   */
  adoptOrphans(): void {
    for (const state of listContainers()) {
      if (state.status !== 'running' || !state.detached || this.watched.has(state.id)) continue;
      const lock = lockContainer(state.id);
      if (lock === null) continue;
      this.watched.set(state.id, { lock });
      const poll = setInterval(async () => {
        if (processAlive(state)) return;
        clearInterval(poll);
        const cgroup = await createCgroupManager({ path: state.cgroupsPath });
        if ((await cgroup.pids()).length > 0) await cgroup.killAll('SIGKILL');
        const oomKilled = await cgroup.oomKilled().catch(() => false);
        await cgroup.destroy();
        updateState(state.id, {
          status: 'exited',
          exitCode: 255,
          oomKilled,
          finished: new Date().toISOString(),
          error: 'the box service was restarted while the container ran; its exit status is unknown',
        });
        this.release(state.id);
        if (state.autoRemove) await removeContainer(state);
      }, 500);
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
