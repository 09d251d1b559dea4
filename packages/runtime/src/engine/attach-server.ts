/**
 * The service's side of a piped container or exec (see attach-protocol.ts): the process runs
 * here, with pipes this process copies into frames; the caller's input arrives as frames.
 */
import { readlinkSync } from 'node:fs';
import { Socket } from 'node:net';
import { constants } from 'node:os';
import { PassThrough, Writable } from 'node:stream';
import { socketPair } from '@box/sys';
import {
  type AttachRequest,
  type ContainerAttachRequest,
  Frame,
  frame,
  MAX_FRAME,
  readFrames,
  readRequestLine,
} from './attach-protocol.js';
import type { Attachment } from './attachments.js';
import type { EngineContext } from './context.js';
import type { AttachedProcess } from './engine.js';
import { signalContainer } from './lifecycle.js';
import { execPipedHere, runPipedHere } from './piped.js';
import type { Supervisor } from './supervisor.js';

/**
 * A writable that sends what is written as frames of `type`, with the socket's backpressure.
 * Once the caller is gone, output is dropped: a writer waiting for a 'drain' that never comes
 * would hold the process's pipes open for ever.
 */
function frameWriter(socket: Socket, type: number): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      if (socket.destroyed || !socket.writable) return callback();
      let ok = true;
      for (let at = 0; at < chunk.length; at += MAX_FRAME)
        ok = socket.write(frame(type, chunk.subarray(at, at + MAX_FRAME)));
      if (ok) return callback();
      const go = () => {
        socket.off('drain', go);
        socket.off('close', go);
        callback();
      };
      socket.on('drain', go);
      socket.on('close', go);
    },
  });
}

/** A signal as a frame names it: a name node knows or a number 1-64; undefined otherwise. */
function parseSignal(text: string): NodeJS.Signals | number | undefined {
  if (/^\d{1,2}$/.test(text)) {
    const n = Number(text);
    return n >= 1 && n <= 64 ? n : undefined;
  }
  return text in constants.signals ? (text as NodeJS.Signals) : undefined;
}

export async function serveAttach(
  ctx: EngineContext,
  socket: Socket,
  request: AttachRequest,
  rest: Buffer,
): Promise<void> {
  socket.on('error', () => undefined);
  if (request.mountNamespace !== readlinkSync('/proc/self/ns/mnt')) {
    socket.end(frame(Frame.ELSEWHERE));
    return;
  }
  socket.write(frame(Frame.ACCEPTED));
  const stdin = request.stdin ? new PassThrough() : undefined;
  stdin?.on('error', () => undefined);
  let stdinOpen = stdin !== undefined;
  const io = { stdin, stdout: frameWriter(socket, Frame.STDOUT), stderr: frameWriter(socket, Frame.STDERR) };
  let proc: AttachedProcess | undefined;
  let done = false;
  const pendingSignals: (NodeJS.Signals | number)[] = [];
  const signal = (value: NodeJS.Signals | number) => {
    if (!proc) return void pendingSignals.push(value);
    try {
      proc.kill(value);
    } catch {
      // ended meanwhile
    }
  };
  readFrames(socket, rest, (type, payload) => {
    if (type === Frame.STDIN && stdin && stdinOpen) {
      // The process reads slowly: stop reading the caller until it has taken this.
      if (!stdin.write(payload)) {
        socket.pause();
        stdin.once('drain', () => socket.resume());
      }
    } else if (type === Frame.STDIN_END && stdin && stdinOpen) {
      stdinOpen = false;
      stdin.end();
    } else if (type === Frame.SIGNAL) {
      const value = parseSignal(payload.toString());
      if (value !== undefined) signal(value);
    } else if (type === Frame.OUTPUT_CLOSED) {
      // As EPIPE on the caller's side: the process's next write to that pipe fails.
      (payload.toString() === '2' ? io.stderr : io.stdout).destroy(new Error('the caller closed its output'));
    }
  });
  socket.on('close', () => {
    if (stdin && stdinOpen) {
      stdinOpen = false;
      stdin.end();
    }
    // A container run for the caller goes with it (a foreground box killed); an exec stays.
    if (!done && request.op === 'run') signal('SIGKILL');
  });
  try {
    proc =
      request.op === 'run'
        ? await runPipedHere(ctx, request.options, io)
        : await execPipedHere(ctx, request.reference, request.options, io);
    for (const value of pendingSignals.splice(0)) signal(value);
    socket.write(frame(Frame.STARTED, JSON.stringify({ id: proc.id, pid: proc.pid })));
    const status = await proc.exited;
    done = true;
    socket.end(frame(Frame.EXIT, JSON.stringify(status)));
  } catch (error) {
    done = true;
    const e = error as Error & { code?: unknown };
    socket.end(
      frame(
        Frame.ERROR,
        JSON.stringify({ message: e.message, code: typeof e.code === 'string' ? e.code : undefined }),
      ),
    );
  }
}

/**
 * An attacher of a container the service runs (see attach-protocol.ts). An attacher that does
 * not take what is sent to it (more than this is waiting in its socket) is let go, rather than
 * hold the container's output in memory for ever or slow the other attachers down.
 */
const MAX_BACKLOG = 8 * 1024 * 1024;

export async function serveContainerAttach(
  ctx: EngineContext,
  supervisor: Supervisor,
  socket: Socket,
  request: ContainerAttachRequest,
  rest: Buffer,
): Promise<void> {
  socket.on('error', () => undefined);
  let attachment: Attachment | undefined;
  const fail = (error: unknown) => {
    const e = error as Error & { code?: unknown };
    socket.end(
      frame(
        Frame.ERROR,
        JSON.stringify({ message: e.message, code: typeof e.code === 'string' ? e.code : undefined }),
      ),
    );
  };
  let id: string;
  try {
    id = ctx.store.find(request.reference).id;
  } catch (error) {
    return fail(error);
  }
  socket.write(frame(Frame.ACCEPTED));
  const attacher = {
    output(stream: 'stdout' | 'stderr', chunk: Buffer) {
      if (socket.destroyed || !socket.writable) return;
      if (socket.writableLength > MAX_BACKLOG) {
        // A caller that does not read is let go (the container never waits for one), told why.
        attachment?.close();
        socket.end(
          frame(
            Frame.ERROR,
            JSON.stringify({ message: 'the output was not read fast enough: detached', code: 'ESTATE' }),
          ),
        );
        return;
      }
      const type = stream === 'stderr' ? Frame.STDERR : Frame.STDOUT;
      for (let at = 0; at < chunk.length; at += MAX_FRAME)
        socket.write(frame(type, chunk.subarray(at, at + MAX_FRAME)));
    },
    ended(status: unknown) {
      socket.end(frame(Frame.EXIT, JSON.stringify(status)));
    },
  };
  // Input and window sizes that arrive while it starts are applied once attached.
  const early: [number, Buffer][] = [];
  let earlyBytes = 0;
  const apply = (type: number, payload: Buffer) => {
    if (!attachment) {
      // Held until it runs, up to a bound (a caller pasting before the start).
      earlyBytes += payload.length;
      if (earlyBytes > MAX_BACKLOG) return fail(new Error('too much input before the container started'));
      return void early.push([type, payload]);
    }
    if (type === Frame.STDIN && request.stdin) {
      // The container reads slowly: stop reading this caller until it has taken the input.
      if (!attachment.input(payload)) {
        socket.pause();
        attachment.onDrain(() => socket.resume());
      }
    } else if (type === Frame.RESIZE) {
      const size = JSON.parse(payload.toString()) as { rows?: unknown; cols?: unknown };
      if (typeof size.rows === 'number' && typeof size.cols === 'number')
        attachment.resize({ rows: size.rows & 0xffff, cols: size.cols & 0xffff });
    } else if (type === Frame.SIGNAL) {
      // --sig-proxy: to the container's process, as `box kill` sends it.
      const value = parseSignal(payload.toString());
      const number = typeof value === 'string' ? constants.signals[value] : value;
      if (number !== undefined) signalContainer(ctx.store.read(id), number).catch(() => undefined);
    }
  };
  readFrames(socket, rest, (type, payload) => {
    try {
      apply(type, payload);
    } catch {
      socket.destroy(); // a malformed frame
    }
  });
  socket.on('close', () => attachment?.close());
  try {
    attachment = request.start
      ? await supervisor.startAttached(id, attacher)
      : supervisor.attach(id, attacher);
  } catch (error) {
    return fail(error);
  }
  if (socket.destroyed) return attachment.close();
  if (request.size) attachment.resize(request.size);
  socket.write(
    frame(
      Frame.STARTED,
      JSON.stringify({ id, pid: attachment.pid, tty: attachment.tty, stdin: attachment.stdin }),
    ),
  );
  for (const [type, payload] of early.splice(0)) apply(type, payload);
}

/**
 * For an engine without a service (its own supervisor runs its containers): the same attach
 * stream over a socket pair in this process. Returns the caller's end.
 */
export function attachInProcess(ctx: EngineContext, supervisor: Supervisor): Socket {
  const [ours, theirs] = socketPair();
  const server = new Socket({ fd: ours, readable: true, writable: true });
  server.on('error', () => undefined);
  readRequestLine(server).then((opening) => {
    if (!opening) return void server.destroy();
    const request = JSON.parse(opening.line) as ContainerAttachRequest;
    return serveContainerAttach(ctx, supervisor, server, request, opening.rest);
  });
  return new Socket({ fd: theirs, readable: true, writable: true });
}
