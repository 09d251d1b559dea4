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
import tty from 'node:tty';
import { dupCloexec, pipe, receiveFd, setWindowSize, socketPair } from '@box/sys';
import { removeCgroupAt } from '../cgroup.js';
import { EngineError } from '../errors.js';
import { JsonFileLogger } from '../logs.js';
import { openProcess } from '../process/handle.js';
import type { ContainerExit, ContainerProcess } from '../run.js';
import { type Attacher, type Attachment, ContainerStreams } from './attachments.js';
import type { EngineContext, Supervision } from './context.js';
import { HealthMonitor } from './health.js';
import { clearHealth, readHealth } from './health-state.js';
import { launch, recordExit } from './launch.js';
import { releaseNetwork } from './network-attach.js';
import { removeContainer } from './remove.js';
import { exitCodeOf } from './status.js';
import { TerminalWriter } from './terminal-writer.js';
import type { ContainerRecord } from './types.js';

interface Watched {
  lock: number;
  proc?: ContainerProcess;
  /** Its health checks, while it runs (a container with a health check). */
  health?: HealthMonitor;
  /** Its live output and input, for attachers; absent for an adopted orphan (its pipes died). */
  streams?: ContainerStreams;
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
    return (await this.launchWatched(id)).pid;
  }

  /**
   * Starts a created or exited container with `attacher` attached from its first byte of output
   * (a foreground `box run -it`, which must not miss the shell's first prompt).
   */
  async startAttached(id: string, attacher: Attacher): Promise<Attachment> {
    const { attachment } = await this.launchWatched(id, attacher);
    return attachment!;
  }

  /** Joins a running container this supervisor started: its output from now on, its input. */
  attach(id: string, attacher: Attacher): Attachment {
    const streams = this.watched.get(id)?.streams;
    if (!streams) {
      const why = this.watched.has(id)
        ? 'it is restarting, or was started by an earlier box service (its output went with it)'
        : 'it is not running under the box service';
      throw new EngineError('ESTATE', `cannot attach to container ${id}: ${why}`);
    }
    return streams.join(attacher);
  }

  private async launchWatched(
    id: string,
    attacher?: Attacher,
  ): Promise<{ pid: number; attachment?: Attachment }> {
    if (this.watched.has(id)) throw new EngineError('ESTATE', `container ${id} is already running`);
    const lock = await this.ctx.store.lockWait(id);
    if (lock === null) throw new EngineError('ESTATE', `container ${id} is already running`);
    const entry: Watched = { lock };
    this.watched.set(id, entry);
    try {
      return await this.run(id, entry, attacher);
    } catch (error) {
      this.release(id);
      throw error;
    }
  }

  private async run(
    id: string,
    entry: Watched,
    attacher?: Attacher,
  ): Promise<{ pid: number; attachment?: Attachment }> {
    const record = this.ctx.store.read(id);
    const terminal = this.ctx.store.readSpec(id).process?.terminal === true;
    const logger = new JsonFileLogger(join(this.ctx.store.dir(id), 'json.log'), record.logOptions);
    // Made before the process, so that an attacher that starts it sees everything it writes.
    const streams = new ContainerStreams(id, terminal, record.openStdin === true);
    entry.streams = streams;
    const attachment = attacher ? streams.join(attacher) : undefined;
    let io: { proc: ContainerProcess; drained: Promise<unknown> };
    try {
      io = terminal
        ? await this.onTerminal(record, streams, logger)
        : await this.onPipes(record, streams, logger);
    } catch (error) {
      // It did not start: whoever joined meanwhile is told (125, docker's code for a start that
      // failed) instead of waiting for an end that never comes; the starter gets the error.
      attachment?.close();
      if (entry.streams === streams) entry.streams = undefined;
      streams.ended({ exitCode: 125, oomKilled: false });
      throw error;
    }
    const { proc, drained } = io;
    streams.pid = proc.pid;
    entry.proc = proc;
    this.watchHealth(id, entry);
    // A failure on the way (a removal that could not finish) is reported, never left to end
    // the service, which watches every other container too; recovery finishes the rest.
    proc.exited
      .then(async (exit) => {
        try {
          await drained;
          logger.close();
          await this.finished(id, exit);
        } finally {
          // Attachers learn of the end once it is recorded (or the container removed); one that
          // comes while it waits to restart is told it is restarting.
          if (entry.streams === streams) entry.streams = undefined;
          streams.ended({ exitCode: exitCodeOf(exit), oomKilled: exit.oomKilled });
        }
      })
      .catch((error: Error) => process.stderr.write(`box service: container ${id}: ${error.message}\n`));
    return { pid: proc.pid, attachment };
  }

  /** Pipes for its stdio, copied into its log and to attachers; stdin a pipe with -i. */
  private async onPipes(
    record: ContainerRecord,
    streams: ContainerStreams,
    logger: JsonFileLogger,
  ): Promise<{ proc: ContainerProcess; drained: Promise<unknown> }> {
    const [outRead, outWrite] = pipe();
    const [errRead, errWrite] = pipe();
    const [inRead, inWrite] = record.openStdin ? pipe() : [openSync('/dev/null', 'r'), undefined];
    let proc: ContainerProcess;
    try {
      proc = await launch(this.ctx, record, {
        stdio: [inRead, outWrite, errWrite],
        detached: !this.options.inProcess,
        dieWithParent: this.options.inProcess,
      });
    } catch (error) {
      for (const fd of [outRead, errRead, inWrite]) if (fd !== undefined) closeSync(fd);
      logger.close();
      throw error;
    } finally {
      for (const fd of [inRead, outWrite, errWrite]) closeSync(fd);
    }
    if (inWrite !== undefined) {
      // docker's -i without a terminal: its stdin stays open while it runs, whoever attaches.
      const writer = new Socket({ fd: inWrite, readable: false, writable: true });
      writer.on('error', () => undefined); // it closed its stdin: input is dropped
      streams.input.write = (chunk) => writer.destroyed || writer.write(chunk);
      streams.input.drain = (callback) => {
        if (writer.destroyed || !writer.writableNeedDrain) return callback();
        let called = false;
        const once = () => {
          if (called) return;
          called = true;
          writer.off('drain', once).off('close', once);
          callback();
        };
        writer.once('drain', once).once('close', once);
      };
      proc.exited.finally(() => writer.destroy()).catch(() => undefined);
    }
    const drained = Promise.all([
      copyToLog(outRead, 'stdout', logger, streams),
      copyToLog(errRead, 'stderr', logger, streams),
    ]);
    return { proc, drained };
  }

  /**
   * A terminal (-t): the container's pty is made in its own devpts and its master sent here, where
   * it is held for as long as the container runs: what it writes goes to its log (as stdout, as
   * docker's) and to attachers, attachers' input (with -i) and window sizes go to it.
   */
  private async onTerminal(
    record: ContainerRecord,
    streams: ContainerStreams,
    logger: JsonFileLogger,
  ): Promise<{ proc: ContainerProcess; drained: Promise<unknown> }> {
    const [mine, theirs] = socketPair();
    let proc: ContainerProcess;
    try {
      proc = await launch(this.ctx, record, {
        consoleSocket: theirs,
        detached: !this.options.inProcess,
        dieWithParent: this.options.inProcess,
      });
    } catch (error) {
      closeSync(mine);
      logger.close();
      throw error;
    } finally {
      closeSync(theirs);
    }
    const master = receiveFd(mine);
    closeSync(mine);
    if (master === null) {
      // Cannot happen once the container runs (it sends the master before it starts); if it did,
      // a container nobody can reach is not left running.
      proc.kill('SIGKILL');
      return { proc, drained: Promise.resolve() };
    }
    const reader = new tty.ReadStream(master);
    // Never tty.WriteStream: it makes the master blocking (see terminal-writer.ts).
    const writerFd = dupCloexec(master);
    const writer = new TerminalWriter(writerFd);
    reader.on('data', (chunk: Buffer) => {
      logger.write('stdout', chunk);
      streams.output('stdout', chunk);
    });
    if (record.openStdin) {
      streams.input.write = (chunk) => writer.write(chunk);
      streams.input.drain = (callback) => writer.onDrain(callback);
    }
    streams.input.resize = (size) => {
      try {
        setWindowSize(master, size);
      } catch {
        // the terminal is gone: the container is ending
      }
    };
    // Once the last process holding its side has gone, reading the master fails (EIO): the end.
    const drained = new Promise<void>((resolve) => {
      reader.on('error', () => resolve());
      reader.on('end', resolve);
      reader.on('close', resolve);
    }).finally(() => {
      streams.input.write = undefined;
      streams.input.drain = undefined;
      streams.input.resize = undefined;
      reader.destroy();
      writer.close();
      closeSync(writerFd);
    });
    return { proc, drained };
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

function copyToLog(
  fd: number,
  stream: 'stdout' | 'stderr',
  logger: JsonFileLogger,
  streams: ContainerStreams,
): Promise<void> {
  return new Promise((resolve) => {
    const socket = new Socket({ fd, readable: true, writable: false });
    socket.on('data', (chunk: Buffer) => {
      logger.write(stream, chunk);
      streams.output(stream, chunk);
    });
    socket.on('error', () => resolve());
    socket.on('close', () => resolve());
  });
}
