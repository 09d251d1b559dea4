/**
 * The caller's side of a piped container or exec served by the box service (attach-protocol.ts).
 * Used only when the service already runs: it has the engine loaded and warm, so the caller
 * needs neither koffi nor the spawn code, and a foreground run or exec starts sooner.
 */
import { connect, type Socket } from 'node:net';
import { EngineError, RuntimeError } from '../errors.js';
import { type AttachRequest, Frame, frame, readFrames } from './attach-protocol.js';
import type { AttachedProcess } from './engine.js';
import type { PipedIO } from './pipes.js';
import type { ExitStatus } from './types.js';

/** Connects to the service; undefined when none listens (the caller then runs it itself). */
function connectService(path: string): Promise<Socket | undefined> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    socket.once('connect', () => resolve(socket));
    socket.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT' || error.code === 'ECONNREFUSED') resolve(undefined);
      else reject(error);
    });
  });
}

function failure(payload: Buffer): RuntimeError {
  const { message, code } = JSON.parse(payload.toString()) as { message: string; code?: string };
  return code?.startsWith('E') ? new RuntimeError(code, message) : new EngineError('ESERVICE', message);
}

export async function attachRemote(
  socketPath: string,
  request: AttachRequest,
  io: PipedIO,
): Promise<AttachedProcess | undefined> {
  const socket = await connectService(socketPath);
  if (!socket) return undefined;
  socket.write(`${JSON.stringify(request)}\n`);
  let started: (value: { id: string; pid: number }) => void;
  let failedToStart: (error: unknown) => void;
  const running = new Promise<{ id: string; pid: number }>((resolve, reject) => {
    started = resolve;
    failedToStart = reject;
  });
  let ended: (status: ExitStatus) => void;
  let failed: (error: unknown) => void;
  const exited = new Promise<ExitStatus>((resolve, reject) => {
    ended = resolve;
    failed = reject;
  });
  exited.catch(() => undefined);
  let isRunning = false;
  let finished = false;
  // A service that does not know this request (an older box) answers with a JSON line, one in
  // another mount namespace says ELSEWHERE: either way the caller runs it itself.
  let local: (() => void) | undefined;
  const runHere = new Promise<undefined>((resolve) => {
    local = () => resolve(undefined);
  });
  let first = true;
  const closed = new Set<NodeJS.WritableStream>();
  const output = (target: NodeJS.WritableStream, payload: Buffer) => {
    if (closed.has(target)) return;
    // The caller's output is slow: stop reading until it has taken this, or failed (a paused
    // socket keeps nothing running: waiting for a 'drain' that never comes would end the
    // process with nothing said).
    if (!target.write(payload)) {
      socket.pause();
      const go = () => {
        target.off('drain', go);
        target.off('error', go);
        socket.resume();
      };
      target.on('drain', go);
      target.on('error', go);
    }
  };
  for (const [target, stream] of [
    [io.stdout, '1'],
    [io.stderr, '2'],
  ] as const) {
    target.on('error', () => {
      // EPIPE (`box run … | head -1`): the process's own writes fail from now on, as without box.
      if (closed.has(target)) return;
      closed.add(target);
      if (!socket.destroyed) socket.write(frame(Frame.OUTPUT_CLOSED, stream));
    });
  }
  socket.once('data', (chunk: Buffer) => {
    if (first && chunk[0] === 0x7b) {
      finished = true;
      socket.destroy();
      local?.();
    }
    first = false;
  });
  readFrames(socket, Buffer.alloc(0), (type, payload) => {
    if (type === Frame.ACCEPTED) return sendInput();
    if (type === Frame.ELSEWHERE) {
      finished = true;
      local?.();
    } else if (type === Frame.STDOUT) output(io.stdout, payload);
    else if (type === Frame.STDERR) output(io.stderr, payload);
    else if (type === Frame.STARTED) {
      isRunning = true;
      started(JSON.parse(payload.toString()) as { id: string; pid: number });
    } else if (type === Frame.EXIT) {
      finished = true;
      ended(JSON.parse(payload.toString()) as ExitStatus);
    } else if (type === Frame.ERROR) {
      finished = true;
      if (isRunning) failed(failure(payload));
      else failedToStart(failure(payload));
    }
  });
  const lost = () => {
    if (finished) return;
    finished = true;
    // Closed before a single byte: a service that was leaving (idle) as the request came, which
    // took nothing of it (ACCEPTED is its first word). The caller runs it itself.
    if (first) {
      local?.();
      return;
    }
    const error = new EngineError('ESERVICE', 'the box service ended while it ran the container');
    if (isRunning) failed(error);
    else failedToStart(error);
  };
  socket.on('close', lost);
  socket.on('error', lost);
  const stdin = io.stdin;
  // Read only once the service has taken the request: input read before would be lost if the
  // caller then runs it itself.
  const sendInput = () => {
    if (!stdin) return;
    stdin.on('data', (chunk: Buffer) => {
      if (!socket.write(frame(Frame.STDIN, chunk))) {
        stdin.pause();
        socket.once('drain', () => stdin.resume());
      }
    });
    stdin.on('end', () => socket.write(frame(Frame.STDIN_END)));
    stdin.on('error', () => socket.write(frame(Frame.STDIN_END)));
  };
  const stopInput = () => {
    stdin?.pause();
    stdin?.removeAllListeners('data');
  };
  let process: { id: string; pid: number } | undefined;
  try {
    process = await Promise.race([running, runHere]);
  } catch (error) {
    stopInput();
    socket.destroy();
    throw error;
  }
  if (!process) {
    stopInput();
    socket.destroy();
    return undefined;
  }
  return {
    id: process.id,
    pid: process.pid,
    exited: exited.finally(() => {
      stopInput();
      socket.destroy();
    }),
    kill(signal = 'SIGKILL') {
      if (!finished) socket.write(frame(Frame.SIGNAL, String(signal)));
    },
  };
}
