/**
 * Waiting for fds to become readable (a pidfd does when its process ends) without blocking
 * the event loop.
 *
 * Node.js cannot watch an arbitrary fd: libuv's poll handle is not exposed, and `net.Socket`
 * takes only sockets and pipes (a pidfd is neither). So the wait is a ppoll(2) run through
 * koffi's async call on a thread of libuv's pool. Measured on Linux 6.18 / Node 20:
 * - such a call keeps the process alive until it returns (a pending ppoll with no timeout
 *   would keep Node from ever exiting), and
 * - each one holds a pool thread for its whole length: four of them stall every `fs`
 *   callback of the process (a `readFile` waited 1 s behind four 1 s polls).
 * Hence one ppoll at a time for every fd being waited for, plus an eventfd that wakes it
 * when the set changes: at most one pool thread is busy, and none once nothing is waited
 * for, so the process can exit. A pending wait keeps the process alive as a child process
 * does; cancel() ends it.
 */
import { readSync, writeSync } from 'node:fs';
import { SyscallError } from './errors.js';
import { libc } from './libc.js';
import { eventfd } from './syscalls.js';

const POLLIN = 0x1;
const POLLERR = 0x8;
const POLLHUP = 0x10;
const POLLNVAL = 0x20;
const EINTR = 4;
const EBADF = 9;

/**
 * The signals blocked while the pool thread waits: all but glibc's internal 32 and 33. A
 * signal for the process (SIGCHLD from every container) would otherwise interrupt the wait
 * for nothing, while a thread that blocked SIGSETXID would hang any setuid() of the process,
 * which glibc broadcasts to every thread and waits for.
 */
const WAIT_MASK = (() => {
  const mask = Buffer.alloc(128, 0xff); // glibc's sigset_t; signal n is bit n - 1
  mask[3] = 0x7f; // 32: SIGCANCEL
  mask[4] = 0xfe; // 33: SIGSETXID
  return mask;
})();

interface Waiter {
  readonly fd: number;
  resolve(): void;
  reject(error: Error): void;
}

/** A wait for one fd. */
export interface ReadableWait {
  /** Resolves when the fd is readable (or hung up); rejects if the fd is not open. */
  readonly ready: Promise<void>;
  /** Stops waiting; `ready` then never settles. The fd may be closed right after. */
  cancel(): void;
}

const waiters = new Set<Waiter>();
let wakeFd: number | undefined;
let polling = false;

/**
 * Waits for `fd` to become readable, on the one pool thread all waits share. The caller
 * keeps the fd open until `ready` settles or it called cancel().
 */
export function waitReadable(fd: number): ReadableWait {
  let waiter: Waiter | undefined;
  const ready = new Promise<void>((resolve, reject) => {
    waiter = { fd, resolve, reject };
  });
  const self = waiter!;
  wakeFd ??= eventfd();
  waiters.add(self);
  if (polling) wake();
  else poll();
  return {
    ready,
    cancel() {
      if (waiters.delete(self) && polling) wake();
    },
  };
}

/**
 * One read(2) of a non-blocking fd, once it has data or its end: the byte count, 0 at the end.
 * Without blocking the event loop, and without `net.Socket`, whose streams cost a start-up
 * about 6 ms to load (a container's start waits on its error pipe this way). An abort (the
 * caller is about to close the fd) drops the wait and rejects with the signal's reason; no read
 * is made after it.
 */
export async function readWhenReady(
  fd: number,
  buffer: Uint8Array,
  offset = 0,
  signal?: AbortSignal,
): Promise<number> {
  for (;;) {
    signal?.throwIfAborted();
    try {
      return readSync(fd, buffer, offset, buffer.length - offset, null);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw error;
    }
    const wait = waitReadable(fd);
    if (!signal) {
      await wait.ready;
      continue;
    }
    await new Promise<void>((resolve, reject) => {
      const abort = () => {
        wait.cancel();
        reject(signal.reason);
      };
      signal.addEventListener('abort', abort, { once: true });
      wait.ready.then(
        () => {
          signal.removeEventListener('abort', abort);
          resolve();
        },
        (error: unknown) => {
          signal.removeEventListener('abort', abort);
          reject(error);
        },
      );
    });
  }
}

/** Makes the pending ppoll return, so that the next one sees the changed set. */
function wake(): void {
  const one = Buffer.alloc(8);
  one.writeBigUInt64LE(1n);
  writeSync(wakeFd!, one);
}

function drainWake(): void {
  try {
    readSync(wakeFd!, Buffer.alloc(8));
  } catch {
    // EAGAIN: nothing to drain.
  }
}

function poll(): void {
  const c = libc();
  // The set as it is now: a waiter cancelled while the call runs is skipped when it returns,
  // so its fd number may be closed and reused meanwhile without harm.
  const batch = [...waiters];
  const fds = Buffer.alloc(8 * (batch.length + 1));
  fds.writeInt32LE(wakeFd!, 0);
  fds.writeInt16LE(POLLIN, 4);
  batch.forEach((waiter, i) => {
    fds.writeInt32LE(waiter.fd, 8 * (i + 1));
    fds.writeInt16LE(POLLIN, 8 * (i + 1) + 4);
  });
  polling = true;
  c.ppoll.async(fds, batch.length + 1, null, WAIT_MASK, (error: unknown, result: number) => {
    polling = false;
    const errno = c.koffi.errno();
    if (error || (result < 0 && errno !== EINTR)) {
      const failure =
        error instanceof Error ? error : new SyscallError('ppoll', errno, { args: `${batch.length} fds` });
      for (const waiter of batch) if (waiters.delete(waiter)) waiter.reject(failure);
    } else if (result > 0) {
      if (fds.readInt16LE(6) !== 0) drainWake();
      batch.forEach((waiter, i) => {
        const revents = fds.readInt16LE(8 * (i + 1) + 6);
        if ((revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL)) === 0 || !waiters.has(waiter)) return;
        waiters.delete(waiter);
        if (revents & POLLNVAL) waiter.reject(new SyscallError('ppoll', EBADF, { path: `fd ${waiter.fd}` }));
        else waiter.resolve();
      });
    }
    if (waiters.size > 0) poll();
  });
}
