/**
 * readSoon, in a file of its own: its eager wait depends on whether the pool's poller is busy, and
 * the other waits of wait-readable.test.ts leave it busy for a moment after they end.
 */
import { writeSync } from 'node:fs';
import { describe, expect, it, vi } from 'vitest';
import { libc } from './libc.js';
import { close, pipe, setNonBlocking } from './syscalls.js';
import { readSoon, waitReadable } from './wait-readable.js';

describe('readSoon', () => {
  it('reads data due within milliseconds without a pool thread, and waits on one after that', async () => {
    const poolWait = vi.spyOn(libc().ppoll, 'async');
    const [r, w] = pipe();
    try {
      setNonBlocking(r);
      const buffer = Buffer.alloc(4);
      setTimeout(() => writeSync(w, 'ab'), 5);
      // (Eager for long enough that a slow machine's late timer still falls inside.)
      expect(await readSoon(r, buffer, 0, 5000)).toBe(2);
      expect(buffer.subarray(0, 2).toString()).toBe('ab');
      expect(poolWait).not.toHaveBeenCalled();
      // Later than its eager time: the wait goes on on a pool thread.
      setTimeout(() => writeSync(w, 'c'), 150);
      const started = performance.now();
      expect(await readSoon(r, buffer, 0, 20)).toBe(1);
      expect(performance.now() - started).toBeGreaterThan(100);
      expect(poolWait).toHaveBeenCalledTimes(1);
      close(w);
      expect(await readSoon(r, buffer)).toBe(0);
    } finally {
      poolWait.mockRestore();
      close(r);
    }
  });

  it('joins the pool’s wait at once where the pool waits on other fds already', async () => {
    const [busyR, busyW] = pipe();
    const [r, w] = pipe();
    const busy = waitReadable(busyR);
    const poolWait = vi.spyOn(libc().ppoll, 'async');
    try {
      setNonBlocking(r);
      setTimeout(() => writeSync(w, 'x'), 5);
      expect(await readSoon(r, Buffer.alloc(1), 0, 5000)).toBe(1);
      expect(poolWait).toHaveBeenCalled();
    } finally {
      poolWait.mockRestore();
      busy.cancel();
      for (const fd of [busyR, busyW, r, w]) close(fd);
    }
  });
});
