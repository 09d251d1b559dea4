/**
 * A piped container or exec served by the box service, over its unix socket: after the request
 * line, both sides send frames `[type: u8][length: u32 big-endian][payload]` (docker's attach
 * stream, with the control messages in the same stream).
 *
 *   service → caller: STARTED {id, pid} once the process runs, STDOUT, STDERR, EXIT {exitCode,
 *                     oomKilled} once it ended and its output is all sent, ERROR {message, code}
 *   caller → service: STDIN, STDIN_END, SIGNAL (a signal name or number)
 *
 * The caller closing the connection is its end: the service kills what it runs for it, as a
 * foreground `box run` killed takes its container with it.
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
} as const;

export type AttachRequest =
  | { op: 'run'; options: CreateOptions; stdin: boolean }
  | { op: 'exec'; reference: string; options: ExecOptions; stdin: boolean };

const HEADER = 5;
/** Output is sent in pieces no larger than this. */
export const MAX_FRAME = 64 * 1024;

export function frame(type: number, payload: Buffer | string = Buffer.alloc(0)): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const header = Buffer.alloc(HEADER);
  header.writeUInt8(type, 0);
  header.writeUInt32BE(body.length, 1);
  return Buffer.concat([header, body]);
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
