/**
 * The service's side of a piped container or exec (see attach-protocol.ts): the process runs
 * here, with pipes this process copies into frames; the caller's input arrives as frames.
 */
import type { Socket } from 'node:net';
import { PassThrough, Writable } from 'node:stream';
import { type AttachRequest, Frame, frame, MAX_FRAME, readFrames } from './attach-protocol.js';
import type { EngineContext } from './context.js';
import { execPipedHere, runPipedHere } from './piped.js';

/** A writable that sends what is written as frames of `type`, with the socket's backpressure. */
function frameWriter(socket: Socket, type: number): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      let ok = true;
      for (let at = 0; at < chunk.length; at += MAX_FRAME)
        ok = socket.write(frame(type, chunk.subarray(at, at + MAX_FRAME)));
      if (ok) callback();
      else socket.once('drain', () => callback());
    },
  });
}

export async function serveAttach(
  ctx: EngineContext,
  socket: Socket,
  request: AttachRequest,
  rest: Buffer,
): Promise<void> {
  const stdin = request.stdin ? new PassThrough() : undefined;
  let kill: ((signal: NodeJS.Signals | number) => void) | undefined;
  let done = false;
  const pendingSignals: (NodeJS.Signals | number)[] = [];
  readFrames(socket, rest, (type, payload) => {
    if (type === Frame.STDIN) stdin?.write(payload);
    else if (type === Frame.STDIN_END) stdin?.end();
    else if (type === Frame.SIGNAL) {
      const text = payload.toString();
      const signal = /^\d+$/.test(text) ? Number(text) : (text as NodeJS.Signals);
      if (kill) kill(signal);
      else pendingSignals.push(signal);
    }
  });
  // The caller went away before the end: what runs for it goes too (a foreground box killed).
  socket.on('close', () => {
    stdin?.end();
    if (!done) {
      if (kill) kill('SIGKILL');
      else pendingSignals.push('SIGKILL');
    }
  });
  socket.on('error', () => undefined);
  const io = { stdin, stdout: frameWriter(socket, Frame.STDOUT), stderr: frameWriter(socket, Frame.STDERR) };
  try {
    const proc =
      request.op === 'run'
        ? await runPipedHere(ctx, request.options, io)
        : await execPipedHere(ctx, request.reference, request.options, io);
    kill = (signal) => proc.kill(signal);
    for (const signal of pendingSignals.splice(0)) proc.kill(signal);
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
