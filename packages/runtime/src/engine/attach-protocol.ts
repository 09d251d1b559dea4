/**
 * A piped container or exec served by the box service, over its unix socket: after the request
 * line, both sides send frames `[type: u8][length: u32 big-endian][payload]` (docker's attach
 * stream, with the control messages in the same stream).
 *
 *   service → caller: ACCEPTED first (a service that does not know the request answers with a
 *                     JSON line instead, whose `{` no frame type has: the caller then runs it
 *                     itself), ELSEWHERE when the caller is in another mount namespace (its
 *                     paths would not mean the same: the caller runs it itself), STARTED {id,
 *                     pid} once the process runs, STDOUT, STDERR, EXIT {exitCode, oomKilled}
 *                     once it ended and its output is all sent, ERROR {message, code}
 *   caller → service: STDIN, STDIN_END, SIGNAL (a signal name or number), OUTPUT_CLOSED
 *                     (1 or 2: the caller's stdout or stderr went away, as EPIPE)
 *
 * The caller closing the connection ends a container it runs: the service kills it, as a
 * foreground `box run` killed takes its container with it. An exec outlives its caller, as
 * with docker (its output is dropped).
 *
 * Attaching to a running container the service supervises (`box attach`, `box run -it`) uses
 * the same frames: ACCEPTED, STARTED {id, pid, tty, stdin} once attached (or once started, for
 * a request that also starts it), STDOUT/STDERR as the container writes (what every attacher
 * sees), EXIT once it ended, ERROR; from the caller STDIN (when the container was made with -i),
 * RESIZE {rows, cols} and SIGNAL. The caller closing the connection leaves (detaches): the
 * container runs on.
 *
 * Only root reaches the socket (0600, in the state root); frames are still bounded.
 */
import type { Readable } from 'node:stream';
import type { CreateOptions, ExecOptions } from './types.js';

export const Frame = {
  STDIN: 0,
  STDOUT: 1,
  STDERR: 2,
  EXIT: 3,
  ERROR: 4,
  STARTED: 5,
  STDIN_END: 6,
  SIGNAL: 7,
  ACCEPTED: 8,
  ELSEWHERE: 9,
  OUTPUT_CLOSED: 10,
  RESIZE: 11,
} as const;

export type AttachRequest = (
  | { op: 'run'; options: CreateOptions }
  | { op: 'exec'; reference: string; options: ExecOptions }
) & {
  stdin: boolean;
  /** The caller's /proc/self/ns/mnt: paths in the request mean what they mean there. */
  mountNamespace: string;
};

/** Attaching to a container the service runs; with `start`, starting it first (attached from its first byte). */
export interface ContainerAttachRequest {
  op: 'attach';
  reference: string;
  /** Send the caller's input (taken only if the container was made with -i). */
  stdin: boolean;
  start?: boolean;
  /** The caller's window size, for a container with a terminal. */
  size?: { rows: number; cols: number };
}

const HEADER = 5;
/** Output is sent in pieces no larger than this; a larger frame ends the connection. */
export const MAX_FRAME = 64 * 1024;

export function frame(type: number, payload: Buffer | string = Buffer.alloc(0)): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const header = Buffer.alloc(HEADER);
  header.writeUInt8(type, 0);
  header.writeUInt32BE(body.length, 1);
  return Buffer.concat([header, body]);
}

/**
 * Reads the request line that opens a connection: resolves with it and what came after it, or
 * undefined when the connection ends first or the line is too long to be a request.
 */
export function readRequestLine(source: Readable): Promise<{ line: string; rest: Buffer } | undefined> {
  return new Promise((resolve) => {
    let buffer = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      const newline = buffer.indexOf(0x0a);
      if (newline === -1) {
        // Requests are one short line: anything longer is not one.
        if (buffer.length > 1024 * 1024) {
          done();
          source.destroy();
          resolve(undefined);
        }
        return;
      }
      done();
      resolve({ line: buffer.subarray(0, newline).toString(), rest: buffer.subarray(newline + 1) });
    };
    const onEnd = () => {
      done();
      resolve(undefined);
    };
    const done = () => {
      source.off('data', onData);
      source.off('end', onEnd);
      source.off('close', onEnd);
    };
    source.on('data', onData);
    source.on('end', onEnd);
    source.on('close', onEnd);
  });
}

/** Reads frames from a stream (the socket after the request line) and hands each to `onFrame`. */
export function readFrames(
  source: Readable,
  initial: Buffer,
  onFrame: (type: number, payload: Buffer) => void,
): void {
  let buffer = initial;
  const drain = () => {
    while (buffer.length >= HEADER) {
      const length = buffer.readUInt32BE(1);
      if (length > MAX_FRAME) {
        source.destroy(new Error(`a frame of ${length} bytes (at most ${MAX_FRAME})`));
        return;
      }
      if (buffer.length < HEADER + length) return;
      const type = buffer.readUInt8(0);
      const payload = buffer.subarray(HEADER, HEADER + length);
      buffer = buffer.subarray(HEADER + length);
      onFrame(type, payload);
    }
  };
  source.on('data', (chunk: Buffer) => {
    buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk]);
    drain();
  });
  drain();
}
