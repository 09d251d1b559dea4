/**
 * A container run attached to the caller (a foreground `box run`): its stdio are the caller's
 * fds or a terminal, the caller's process owns it (holds its lock) and it dies with that
 * process (parent-death signal). Recovery finishes its record if the caller is killed.
 */
import { closeSync } from 'node:fs';
import type { EngineContext } from './context.js';
import type { AttachedProcess } from './engine.js';
import { launch, recordExit } from './launch.js';
import { removeContainer } from './remove.js';
import { exitCodeOf } from './status.js';
import type { NewContainer } from './store.js';
import type { AttachStdio, ContainerRecord } from './types.js';

export async function attachedRun(
  ctx: EngineContext,
  container: NewContainer,
  record: ContainerRecord,
  stdio: AttachStdio,
): Promise<AttachedProcess> {
  let proc: Awaited<ReturnType<typeof launch>>;
  try {
    proc = await launch(ctx, record, {
      ...stdio,
      detached: false,
      dieWithParent: true,
      // An auto-removed container's record serves nobody after a crash: recovery removes it either way.
      durable: !record.autoRemove,
    });
  } catch (error) {
    // As docker run: a container that could not start is not kept.
    await removeContainer(ctx, record).catch(() => undefined);
    closeSync(container.lock);
    throw error;
  }
  const exited = proc.exited.then(async (exit) => {
    try {
      let current: ContainerRecord | undefined;
      try {
        current = ctx.store.read(record.id);
      } catch {
        current = undefined; // removed meanwhile (rm -f)
      }
      if (current?.autoRemove) {
        ctx.events.emit('die', current, exitCodeOf(exit));
        await removeContainer(ctx, current);
      } else if (current) recordExit(ctx, record.id, exit);
    } finally {
      closeSync(container.lock);
    }
    return { exitCode: exitCodeOf(exit), oomKilled: exit.oomKilled };
  });
  return { id: record.id, pid: proc.pid, exited, kill: (signal) => proc.kill(signal) };
}
