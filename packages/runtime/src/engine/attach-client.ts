/**
 * The caller's side of a piped container or exec served by the box service (attach-protocol.ts).
 * Used only when the service already runs: it has the engine loaded and warm, so the caller
 * needs neither koffi nor the spawn code, and a foreground run or exec starts sooner.
 */
import { connect, type Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import type { WindowSize } from '@box/sys';
import { EngineError, RuntimeError } from '../errors.js';
import {
  type AttachRequest,
  type ContainerAttachRequest,
  Frame,
  frame,
  readFrames,
} from './attach-protocol.js';
import { DetachScanner } from './detach-keys.js';
import type { AttachedProcess } from './engine.js';
import type { PipedIO } from './pipes.js';
import { noServiceListens } from './service-client.js';
import type { ExitStatus } from './types.js';

/** Connects to the service; undefined when none listens (the caller then runs it itself). */
export function connectService(path: string): Promise<Socket | undefined> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    socket.once('connect', () => resolve(socket));
    socket.once('error', (error: NodeJS.ErrnoException) => {
      if (noServiceListens(error)) resolve(undefined);
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
    if (!target.write(payload)) pauseUntilDrained(socket, target);
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

/** Where an attached container's output goes and its input comes from. */
export interface ContainerAttachIO {
  /** The caller's input, sent when the container was made with -i (through the detach keys). */
  stdin?: Readable;
  stdout: Writable;
  stderr: Writable;
}

/** How an attachment ended: the container's end, or the caller leaving it running. */
export type AttachEnd = { detached: false; exitCode: number; oomKilled?: boolean } | { detached: true };

/** The caller's side of an attached container (Engine.attach). */
export interface ContainerAttachment {
  readonly id: string;
  readonly pid: number;
  /** The container has a terminal: its output is one stream, the caller's should be raw. */
  readonly tty: boolean;
  /** The caller's input reaches it (it was made with -i, and `stdin` was given). */
  readonly stdin: boolean;
  /** Settles once the container ended and its end is recorded, or once the caller detached. */
  readonly ended: Promise<AttachEnd>;
  resize(size: WindowSize): void;
  /** A signal for the container's process (docker's --sig-proxy). */
  signal(signal: NodeJS.Signals | number): void;
  /** Leaves the container running. */
  detach(): void;
}

interface Started {
  id: string;
  pid: number;
  tty: boolean;
  stdin: boolean;
}

/** Attaches over `socket` (to the service, or attach-server's in-process pair). */
export async function attachContainer(
  socket: Socket,
  request: ContainerAttachRequest,
  io: ContainerAttachIO,
  detachKeys: Buffer,
): Promise<ContainerAttachment> {
  socket.write(`${JSON.stringify(request)}\n`);
  let started!: (value: Started | undefined) => void;
  let failedToStart!: (error: unknown) => void;
  const running = new Promise<Started | undefined>((resolve, reject) => {
    started = resolve;
    failedToStart = reject;
  });
  let end!: (value: AttachEnd) => void;
  let failed!: (error: unknown) => void;
  const ended = new Promise<AttachEnd>((resolve, reject) => {
    end = resolve;
    failed = reject;
  });
  ended.catch(() => undefined);
  let isRunning = false;
  let finished = false;
  const stdin = io.stdin;
  const stopInput = () => {
    stdin?.removeListener('data', onInput);
    stdin?.pause();
  };
  const finish = () => {
    finished = true;
    stopInput();
  };
  const scanner = new DetachScanner(detachKeys);
  const detach = () => {
    if (finished) return;
    finish();
    socket.end();
    end({ detached: true });
  };
  function onInput(chunk: Buffer) {
    const { forward, detach: leave } = scanner.scan(chunk);
    if (forward.length > 0 && !socket.destroyed) {
      if (!socket.write(frame(Frame.STDIN, forward))) {
        stdin?.pause();
        socket.once('drain', () => {
          if (!finished) stdin?.resume();
        });
      }
    }
    if (leave) detach();
  }
  const output = (target: Writable, payload: Buffer) => {
    if (target.destroyed || !target.writable) return;
    // A slow caller: stop reading until it has taken this (the service lets go of an attacher
    // that falls too far behind).
    if (!target.write(payload)) pauseUntilDrained(socket, target);
  };
  let first = true;
  socket.once('data', (chunk: Buffer) => {
    // A service from before attach answers with a JSON line ("unknown request").
    if (first && chunk[0] === 0x7b) {
      finish();
      socket.destroy();
      failedToStart(new EngineError('ESERVICE', 'the running box service cannot attach: stop it and retry'));
    }
    first = false;
  });
  readFrames(socket, Buffer.alloc(0), (type, payload) => {
    if (finished && type !== Frame.STDOUT && type !== Frame.STDERR) return;
    if (type === Frame.STDOUT) output(io.stdout, payload);
    else if (type === Frame.STDERR) output(io.stderr, payload);
    else if (type === Frame.STARTED) {
      isRunning = true;
      const info = JSON.parse(payload.toString()) as Started;
      const sending = info.stdin && stdin !== undefined;
      started({ ...info, stdin: sending });
      if (sending) {
        stdin.on('data', onInput);
        stdin.resume();
      }
    } else if (type === Frame.EXIT) {
      finish();
      const status = JSON.parse(payload.toString()) as ExitStatus;
      if (!isRunning) started(undefined);
      end({ detached: false, exitCode: status.exitCode, oomKilled: status.oomKilled });
    } else if (type === Frame.ERROR) {
      finish();
      if (isRunning) failed(failure(payload));
      else failedToStart(failure(payload));
    }
  });
  const lost = () => {
    if (finished) return;
    finish();
    const error = new EngineError('ESERVICE', 'the box service ended while attached to the container');
    if (isRunning) failed(error);
    else failedToStart(error);
  };
  socket.on('close', lost);
  socket.on('error', lost);
  let info: Started | undefined;
  try {
    info = await running;
  } catch (error) {
    socket.destroy();
    throw error;
  }
  return {
    id: info?.id ?? request.reference,
    pid: info?.pid ?? 0,
    tty: info?.tty ?? false,
    stdin: info?.stdin ?? false,
    ended: ended.finally(() => socket.destroy()),
    resize(size) {
      if (!finished) socket.write(frame(Frame.RESIZE, JSON.stringify(size)));
    },
    signal(signal) {
      if (!finished) socket.write(frame(Frame.SIGNAL, String(signal)));
    },
    detach,
  };
}

const waitingFor = new WeakSet<NodeJS.WritableStream>();

/**
 * The caller's output is slow: the service's socket is not read until `target` has taken what it
 * has, or failed (waiting for a 'drain' that never comes would end the process with nothing said).
 * One wait per target, however many frames one read held.
 */
function pauseUntilDrained(socket: Socket, target: NodeJS.WritableStream): void {
  socket.pause();
  if (waitingFor.has(target)) return;
  waitingFor.add(target);
  const go = () => {
    waitingFor.delete(target);
    target.off('drain', go);
    target.off('error', go);
    socket.resume();
  };
  target.on('drain', go);
  target.on('error', go);
}
