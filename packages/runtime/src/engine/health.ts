/**
 * Health checks (docker's HEALTHCHECK, `--health-cmd` and friends): while a detached container
 * runs, its supervisor execs the test in it every interval, with a timeout, and keeps the
 * outcome in the container's `health.json` (Status starting → healthy / unhealthy, the failing
 * streak, the last five results with their output), which `ps` and `inspect` show. A status
 * change is an event (`health_status: healthy`).
 *
 * As docker: the first check runs one interval after the start (StartInterval while in the
 * start period), failures inside the start period do not count towards Retries unless the
 * container has been healthy once, and a check that outlives its timeout is killed and counts
 * as a failure (exit code -1).
 */
import { closeSync, openSync } from 'node:fs';
import { Socket } from 'node:net';
import { pipe, writeFileAtomic } from '@box/sys';
import type { EngineContext } from './context.js';
import { execIn } from './exec.js';
import { healthFile } from './health-state.js';
import type { ContainerRecord, Healthcheck, HealthState } from './types.js';

const SECOND = 1_000_000_000; // docker keeps the durations in nanoseconds
export const HEALTH_DEFAULTS = {
  Interval: 30 * SECOND,
  Timeout: 30 * SECOND,
  StartPeriod: 0,
  StartInterval: 5 * SECOND,
  Retries: 3,
};
const KEEP_RESULTS = 5;
const MAX_OUTPUT = 4096;

/** The command a test runs, or undefined when there is none (`NONE`, empty). */
export function healthCommand(test: readonly string[] | undefined): string[] | undefined {
  if (!test || test.length === 0) return undefined;
  const [kind, ...rest] = test;
  if (kind === 'NONE') return undefined;
  if (kind === 'CMD') return rest.length > 0 ? rest : undefined;
  if (kind === 'CMD-SHELL') return rest.length > 0 ? ['/bin/sh', '-c', rest.join(' ')] : undefined;
  return undefined;
}

function nanos(value: number | undefined, fallback: number): number {
  return value === undefined || value <= 0 ? fallback : value;
}

/** Runs one container's checks until `stop`. */
export class HealthMonitor {
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #running: { kill(signal: NodeJS.Signals): void } | undefined;
  readonly #started: number;
  #state: HealthState;
  #everHealthy: boolean;

  constructor(
    private readonly ctx: EngineContext,
    private readonly id: string,
    private readonly check: Healthcheck,
    private readonly command: string[],
    resume?: { started: number; state: HealthState },
  ) {
    this.#started = resume?.started ?? Date.now();
    this.#state = resume?.state ?? { Status: 'starting', FailingStreak: 0, Log: [] };
    this.#everHealthy = this.#state.Status === 'healthy';
  }

  /**
   * The monitor for a record, when its container has a health check; `resume` for a container
   * that was running before (a service taking it over), from the state its checks left.
   */
  static for(ctx: EngineContext, record: ContainerRecord, resume?: HealthState): HealthMonitor | undefined {
    const command = healthCommand(record.healthcheck?.Test);
    if (!command || !record.healthcheck) return undefined;
    const started = record.started ? Date.parse(record.started) : Date.now();
    return new HealthMonitor(
      ctx,
      record.id,
      record.healthcheck,
      command,
      resume && { started, state: resume },
    );
  }

  start(): void {
    this.#write();
    this.#schedule();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#running?.kill('SIGKILL');
  }

  #inStartPeriod(): boolean {
    return Date.now() - this.#started < nanos(this.check.StartPeriod, HEALTH_DEFAULTS.StartPeriod) / 1e6;
  }

  #schedule(): void {
    if (this.#stopped) return;
    const every =
      this.#inStartPeriod() && !this.#everHealthy
        ? nanos(this.check.StartInterval, HEALTH_DEFAULTS.StartInterval)
        : nanos(this.check.Interval, HEALTH_DEFAULTS.Interval);
    this.#timer = setTimeout(() => {
      this.#probe()
        .catch((error: Error) =>
          process.stderr.write(`box service: container ${this.id}: health check: ${error.message}\n`),
        )
        .finally(() => this.#schedule());
    }, every / 1e6);
    this.#timer.unref();
  }

  async #probe(): Promise<void> {
    let record: ContainerRecord;
    try {
      record = this.ctx.store.read(this.id);
    } catch {
      this.stop(); // removed
      return;
    }
    if (record.pid === undefined || record.status !== 'running') return;
    const start = new Date();
    const timeoutMs = nanos(this.check.Timeout, HEALTH_DEFAULTS.Timeout) / 1e6;
    const [read, write] = pipe();
    const devNull = openSync('/dev/null', 'r');
    let exitCode: number;
    let output: string;
    try {
      const child = await execIn(
        this.ctx,
        record,
        { command: this.command },
        { stdio: [devNull, write, write] },
      );
      closeSync(write);
      this.#running = child;
      const reader = collect(read);
      let timedOut = false;
      let ended = false;
      // Over the output too: a process the check left holding the pipe (`sleep 1d >&1 &`, or one
      // of the container's that took the fd from /proc) would keep the read, and so every later
      // check, waiting for ever; the status would stay what it was. Its reading ends at the timeout.
      const timer = setTimeout(() => {
        reader.stop();
        if (ended) return;
        timedOut = true;
        // The check leads a session of its own (exec's setsid): its whole group goes, so a
        // shell's children (`sh -c 'sleep 10'`) are not left running in the container.
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {}
        child.kill('SIGKILL');
      }, timeoutMs);
      const exit = await child.exited.finally(() => {
        ended = true;
      });
      output = await reader.output;
      clearTimeout(timer);
      exitCode = timedOut ? -1 : exit.exitCode;
      if (timedOut) output = `Health check exceeded timeout (${formatSeconds(timeoutMs)})`;
    } catch (error) {
      try {
        closeSync(write);
      } catch {}
      closeSync(read);
      exitCode = -1;
      output = (error as Error).message;
    } finally {
      closeSync(devNull);
      this.#running = undefined;
    }
    if (this.#stopped) return;
    this.#record({
      Start: start.toISOString(),
      End: new Date().toISOString(),
      ExitCode: exitCode,
      Output: output,
    });
  }

  #record(result: HealthState['Log'][number]): void {
    const before = this.#state.Status;
    const log = [...this.#state.Log, result].slice(-KEEP_RESULTS);
    if (result.ExitCode === 0) {
      this.#everHealthy = true;
      this.#state = { Status: 'healthy', FailingStreak: 0, Log: log };
    } else if (this.#inStartPeriod() && !this.#everHealthy) {
      this.#state = { ...this.#state, Log: log }; // failures in the start period do not count
    } else {
      const streak = this.#state.FailingStreak + 1;
      const retries = nanos(this.check.Retries, HEALTH_DEFAULTS.Retries);
      this.#state = {
        Status: streak >= retries ? 'unhealthy' : this.#state.Status,
        FailingStreak: streak,
        Log: log,
      };
    }
    this.#write();
    if (this.#state.Status !== before) {
      try {
        this.ctx.events.emit(`health_status: ${this.#state.Status}`, this.ctx.store.read(this.id));
      } catch {}
    }
  }

  #write(): void {
    try {
      writeFileAtomic(healthFile(this.ctx, this.id), `${JSON.stringify(this.#state)}\n`, { fsync: false });
    } catch {
      // the container was removed meanwhile
    }
  }
}

/** A duration as Go prints one (docker's messages): 500ms, 1.5s, 1m30s, 1h0m0s. */
function formatSeconds(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  const hours = Math.floor(ms / 3_600_000);
  const minutes = Math.floor((ms % 3_600_000) / 60_000);
  const seconds = `${(ms % 60_000) / 1000}s`;
  if (hours > 0) return `${hours}h${minutes}m${seconds}`;
  return minutes > 0 ? `${minutes}m${seconds}` : seconds;
}

/** What a check printed (stdout and stderr together), at most MAX_OUTPUT bytes. */
function collect(fd: number): { output: Promise<string>; stop(): void } {
  const socket = new Socket({ fd, readable: true, writable: false });
  const output = new Promise<string>((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    socket.on('data', (chunk: Buffer) => {
      if (size < MAX_OUTPUT) chunks.push(chunk.subarray(0, MAX_OUTPUT - size));
      size += chunk.length;
    });
    const done = () => resolve(Buffer.concat(chunks).toString('utf8'));
    socket.on('error', done);
    socket.on('close', done);
  });
  return { output, stop: () => socket.destroy() };
}
