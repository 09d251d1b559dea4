/**
 * Starting a container from its record, and recording how it ended: the steps an attached start
 * (the caller owns the container) and the supervisor (detached) share.
 */
import { ChildSetupError } from '@box/sys';
import { RuntimeError } from '../errors.js';
import type { ContainerExit, ContainerProcess } from '../run.js';
import { startContainer } from '../run.js';
import type { EngineContext } from './context.js';
import { ContainerNetwork } from './network-attach.js';
import { processStartTime } from './process-info.js';
import { checkCgroupReach } from './rootless-cgroups.js';
import { fuseFallbackFor, noteKernelRefused, overlayProgramFor } from './rootless-overlay.js';
import { exitCodeOf } from './status.js';
import type { AttachStdio, ContainerRecord } from './types.js';

export interface LaunchOptions extends AttachStdio {
  /** Owned by the supervisor rather than by an attached caller. */
  detached: boolean;
  /** Kill the container when this process dies. */
  dieWithParent: boolean;
  /** Records only a crash-free process needs are written without fsync (--rm, attached). */
  durable?: boolean;
}

/**
 * Starts the container of `record`; the caller holds its lock. The record says "running" from
 * the moment the process waits at its sync point, so a caller killed from then on leaves a
 * record that recovery can finish. A start that fails leaves the record as it was, with the
 * reason in `error` (as docker keeps a failed start).
 */
export async function launch(
  ctx: EngineContext,
  record: ContainerRecord,
  options: LaunchOptions,
): Promise<ContainerProcess> {
  // A rootless start whose kernel refused the overlay: undone whole, made again on FUSE, and
  // on FUSE from now on (its upper directory gets fuse-overlayfs's marks).
  let fuse: string | undefined;
  const retriedOnFuse = record.fuseOverlay
    ? undefined
    : (error: unknown) => {
        fuse = fuseFallbackFor(error);
        return fuse !== undefined;
      };
  try {
    return await launchWith(
      ctx,
      record,
      options,
      overlayProgramFor(record),
      record.fuseOverlay,
      retriedOnFuse,
    );
  } catch (error) {
    if (fuse === undefined) throw error;
    // The record says FUSE from the retry's sync point on (launchWith writes it), and not if
    // the retry fails (its catch writes the record's own again).
    const started = await launchWith(
      ctx,
      { ...record, fuseOverlay: true },
      options,
      fuse,
      record.fuseOverlay,
    );
    noteKernelRefused();
    return started;
  }
}

async function launchWith(
  ctx: EngineContext,
  record: ContainerRecord,
  options: LaunchOptions,
  fuseOverlay: string | undefined,
  // What the record says of FUSE again when this start fails. No default from `record`: the
  // retry's record says FUSE already, and a default would not apply to an explicit undefined.
  fuseBefore: boolean | undefined,
  retriedOnFuse?: (error: unknown) => boolean,
): Promise<ContainerProcess> {
  const { store } = ctx;
  await checkCgroupReach(record);
  const spec = store.readSpec(record.id);
  // Before anything is made: a start cut short here or later is finished by recovery. Cleared
  // once the process runs its command; a failed start leaves it for recovery to check once more.
  store.markStarting(record.id);
  // Its address, ports and /etc files before the process exists (see network-attach.ts).
  let network: ContainerNetwork | undefined;
  try {
    // Under the record's network lock until the process is attached: a `network connect` or
    // `disconnect` of this container waits, rather than change what it is attaching.
    const proc = await store.withNetworkLock(record.id, async (current) => {
      network = await ContainerNetwork.prepare(ctx, current, spec);
      return startContainer({
        spec,
        overlay: record.overlay,
        fuseOverlay,
        stdio: options.stdio,
        consoleSocket: options.consoleSocket,
        dieWithParent: options.dieWithParent,
        init: record.init,
        async onSync(pid) {
          await network?.connect(pid, options.dieWithParent);
          store.update(
            record.id,
            {
              status: 'running',
              runPending: undefined,
              fuseOverlay: record.fuseOverlay,
              detached: options.detached,
              pid,
              pidStartTime: processStartTime(pid),
              started: new Date().toISOString(),
              exitCode: undefined,
              finished: undefined,
              oomKilled: undefined,
              error: undefined,
              networkSettings: network?.settings(),
            },
            options.durable,
          );
        },
      });
    });
    // Only now: the process can still fail after its sync point (its set-up, its execve), and
    // that failure's clean-up may leave its cgroup for recovery. A marker left on a running
    // record is harmless (recovery clears it once the container is finished).
    try {
      store.clearStarting(record.id);
    } catch {
      // left for recovery
    }
    ctx.events.emit('start', record);
    const held = network;
    // Given back once the process and its cgroup are gone, before the end is recorded.
    const exited = proc.exited.finally(() => held?.release().catch(() => undefined));
    return { pid: proc.pid, cgroup: proc.cgroup, exited, kill: (signal) => proc.kill(signal) };
  } catch (error) {
    await network?.release().catch(() => undefined);
    // A start by another process than its run's (box start after that run died) makes it an
    // ordinary created container: recovery keeps it. Not before a retry on FUSE, though: a
    // `run --rm` killed during the retry left a created record that nobody removed.
    const retried = retriedOnFuse?.(error) === true;
    store.update(record.id, {
      status: record.status === 'exited' ? 'exited' : 'created',
      runPending: retried ? record.runPending : undefined,
      fuseOverlay: fuseBefore,
      pid: undefined,
      pidStartTime: undefined,
      error: (error as Error).message,
    });
    throw normalizeStartError(error);
  }
}

/** Records the end of a container's process: its exit code, OOM, time; emits die (and oom). */
export function recordExit(
  ctx: EngineContext,
  id: string,
  exit: ContainerExit,
  change: Partial<ContainerRecord> = {},
  durable = true,
): ContainerRecord | undefined {
  const exitCode = exitCodeOf(exit);
  const state = ctx.store.update(
    id,
    {
      status: 'exited',
      exitCode,
      oomKilled: exit.oomKilled,
      finished: new Date().toISOString(),
      networkSettings: undefined,
      ...change,
    },
    durable,
  );
  if (state) {
    if (exit.oomKilled) ctx.events.emit('oom', state);
    ctx.events.emit('die', state, exitCode);
  }
  return state;
}

/**
 * Start-up failures as codes the caller can map to docker's exit statuses, also after crossing
 * the service's socket: ENOCMD (127) and ENOEXECCMD (126) for a command that cannot run, ESTART
 * for any other failed step of the container's set-up.
 */
export function normalizeStartError(error: unknown): unknown {
  if (error instanceof ChildSetupError) {
    const message = `failed to start the container: ${error.message}`;
    if (error.syscall === 'execve')
      return new RuntimeError(error.code === 'ENOENT' ? 'ENOCMD' : 'ENOEXECCMD', message, { cause: error });
    return new RuntimeError('ESTART', message, { cause: error });
  }
  return error;
}
