/**
 * Without a terminal a container never gets its caller's own stdin, stdout and stderr: with a
 * terminal there it could change the terminal's modes or read and inject input, with a file it
 * could seek, truncate or read it. As docker does, its 1 and 2 are pipes, its 0 a pipe when
 * there is input and /dev/null otherwise; this side copies between those pipes and the caller's
 * streams (binary-safe, with backpressure).
 */
import { closeSync, openSync } from 'node:fs';
import { Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { pipe } from '@box/sys';

/** The caller's side of a piped container or exec: where its output goes, where its input comes from. */
export interface PipedIO {
  /** Copied to the process's stdin (which then ends with it); without, its stdin is /dev/null. */
  stdin?: Readable;
  stdout: Writable;
  stderr: Writable;
}

export interface PipedStdio {
  /** The container's ends for its 0, 1 and 2 (close-on-exec here). */
  readonly stdio: readonly [number, number, number];
  /** Closes this process's copies of the container's ends, once the container holds its own. */
  started(): void;
  /**
   * Resolves once everything the container wrote has been copied to box's stdout and
   * stderr (the pipes reached end of file). With `idleMs`, also once nothing has arrived
   * for that long (counted from this call): a process left behind (by `exec`) may keep a
   * pipe open.
   */
  drained(idleMs?: number): Promise<void>;
  /** Stops copying and closes every fd left; idempotent. */
  close(): void;
}

/** Pipes for a process's stdio, copied to and from the caller's streams. */
export function pipeStreams(io: PipedIO): PipedStdio {
  const childEnds: number[] = [];
  const streams: Socket[] = [];
  let lastData = Date.now();
  const cleanups: (() => void)[] = [];
  try {
    let stdin: number;
    if (io.stdin) {
      const [read, write] = pipe();
      childEnds.push(read);
      stdin = read;
      const writer = new Socket({ fd: write, readable: false, writable: true });
      streams.push(writer);
      cleanups.push(copyInput(io.stdin, writer));
    } else {
      stdin = openSync('/dev/null', 'r');
      childEnds.push(stdin);
    }
    const outputs = [io.stdout, io.stderr].map((target) => {
      const [read, write] = pipe();
      childEnds.push(write);
      const reader = new Socket({ fd: read, readable: true, writable: false });
      streams.push(reader);
      reader.on('data', () => {
        lastData = Date.now();
      });
      return copyOutput(reader, target);
    });
    const [stdout, stderr] = childEnds.slice(1) as [number, number];
    const closeChildEnds = () => {
      for (const fd of childEnds.splice(0)) closeSync(fd);
    };
    return {
      stdio: [stdin, stdout, stderr],
      started: closeChildEnds,
      async drained(idleMs) {
        const eof = Promise.all(outputs).then(() => undefined);
        if (idleMs === undefined) return eof;
        // Quiet since when we asked: what is already in the pipes still counts as arriving.
        lastData = Date.now();
        let timer: NodeJS.Timeout | undefined;
        const idle = new Promise<void>((resolve) => {
          const check = () => {
            const left = lastData + idleMs - Date.now();
            if (left <= 0) resolve();
            else timer = setTimeout(check, left);
          };
          check();
        });
        await Promise.race([eof, idle]);
        clearTimeout(timer);
      },
      close() {
        closeChildEnds();
        for (const cleanup of cleanups.splice(0)) cleanup();
        for (const stream of streams.splice(0)) stream.destroy();
      },
    };
  } catch (error) {
    for (const fd of childEnds) closeSync(fd);
    for (const stream of streams) stream.destroy();
    throw error;
  }
}

/** Copies `source` to `target` until the end of `source`, then waits until `target` has taken it all. */
function copyOutput(source: Socket, target: Writable): Promise<void> {
  // If box's own output goes away (EPIPE), the container's writes fail from then on, as they would
  // have without box in between.
  target.on('error', () => source.destroy());
  source.pipe(target, { end: false });
  return new Promise<void>((resolve) => {
    const flushed = () => {
      if (target.destroyed || !target.writable) resolve();
      else target.write('', () => resolve());
    };
    source.on('end', flushed);
    source.on('close', flushed);
    source.on('error', () => undefined);
  });
}

/** Copies `source` into `writer` and closes `writer` at its end (the container reads end of file). */
function copyInput(source: Readable, writer: Socket): () => void {
  // The process closed its stdin: what still comes is read and dropped (a caller's input that
  // nothing reads would otherwise pile up in a buffer, or stop the stream it comes on).
  const stop = () => {
    source.unpipe(writer);
    source.resume();
  };
  // The container closed its stdin (EPIPE): stop reading ours.
  writer.on('error', stop);
  writer.on('finish', () => writer.destroy());
  source.pipe(writer);
  return stop;
}
