/**
 * A container or exec run here with pipes for its stdio, copied to and from the caller's
 * streams (pipes.ts): what a foreground `box run` / `box exec` without a terminal does, in the
 * caller's process or, for it, in the box service (attach-server.ts).
 */
import { EngineError } from '../errors.js';
import { attachedRun } from './attached.js';
import type { EngineContext } from './context.js';
import { createContainer } from './create.js';
import type { AttachedProcess } from './engine.js';
import { execIn } from './exec.js';
import { type PipedIO, pipeStreams } from './pipes.js';
import { processAlive } from './status.js';
import type { CreateOptions, ExecOptions } from './types.js';

/** Starts `proc` on the pipes; `exited` settles once its output is all copied (or, with `idleMs`, quiet). */
async function onPipes(
  io: PipedIO,
  start: (stdio: readonly [number, number, number]) => Promise<AttachedProcess>,
  idleMs?: number,
): Promise<AttachedProcess> {
  const pipes = pipeStreams(io);
  let proc: AttachedProcess;
  try {
    proc = await start(pipes.stdio);
  } catch (error) {
    pipes.close();
    throw error;
  }
  pipes.started();
  const exited = proc.exited.then(async (status) => {
    // Its processes are all gone: the pipes end once everything they held has been copied. A
    // process an exec left in the container may hold them open: then stop once they are quiet.
    await pipes.drained(idleMs);
    pipes.close();
    return status;
  });
  return { id: proc.id, pid: proc.pid, exited, kill: (signal) => proc.kill(signal) };
}

export async function runPipedHere(
  ctx: EngineContext,
  options: CreateOptions,
  io: PipedIO,
): Promise<AttachedProcess> {
  const { container, record } = await createContainer(ctx, { ...options, tty: false }, true);
  return onPipes(io, (stdio) => attachedRun(ctx, container, record, { stdio }));
}

export async function execPipedHere(
  ctx: EngineContext,
  reference: string,
  options: ExecOptions,
  io: PipedIO,
): Promise<AttachedProcess> {
  const record = ctx.store.find(reference);
  if (!processAlive(record)) throw new EngineError('ESTATE', `container ${reference} is not running`);
  return onPipes(io, (stdio) => execIn(ctx, record, { ...options, tty: false }, { stdio }), 500);
}
