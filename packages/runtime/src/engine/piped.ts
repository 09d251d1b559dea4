/**
 * A container or exec run here with pipes for its stdio, copied to and from the caller's
 * streams (pipes.ts): what a foreground `box run` / `box exec` without a terminal does, in the
 * caller's process or, for it, in the box service (attach-server.ts).
 */
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { EngineError } from '../errors.js';
import { JsonFileLogger } from '../logs.js';
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
  if (record.autoRemove) return onPipes(io, (stdio) => attachedRun(ctx, container, record, { stdio }));
  // As docker: what a foreground container writes is in its log too (`box logs` once it ended).
  const logger = new JsonFileLogger(join(ctx.store.dir(record.id), 'json.log'), record.logOptions);
  const logged: PipedIO = {
    stdin: io.stdin,
    stdout: logTo(logger, 'stdout', io.stdout),
    stderr: logTo(logger, 'stderr', io.stderr),
  };
  try {
    const proc = await onPipes(logged, (stdio) => attachedRun(ctx, container, record, { stdio }));
    proc.exited.finally(() => logger.close()).catch(() => undefined);
    return proc;
  } catch (error) {
    logger.close();
    throw error;
  }
}

/** `target`, with what is written to it also written to the container's log as `stream`. */
function logTo(logger: JsonFileLogger, stream: 'stdout' | 'stderr', target: Writable): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      if (chunk.length > 0) logger.write(stream, chunk);
      // Its callback, not write's return: the copy waits until the caller's stream took it.
      target.write(chunk, (error) => callback(error));
    },
  });
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
