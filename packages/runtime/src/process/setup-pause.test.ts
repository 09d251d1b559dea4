import { existsSync, readSync, writeSync } from 'node:fs';
import { close, dupCloexec } from '@box/sys';
import { describe, expect, it } from 'vitest';
import { SetupPause } from './setup-pause.js';

/**
 * The child's side is a copy of the pause's child end, made before listen() drops the pause's own
 * copy (as the cloned child holds one). The parent end's number is read from the pause itself: it
 * must be closed once the pause is over, whichever way it ended.
 */
function pauseWithChild(callback: (pid: number) => Promise<void>) {
  const pause = new SetupPause(callback);
  const child = dupCloexec(pause.childFd);
  const parentFd = (pause as unknown as { parentFd: number }).parentFd;
  return { pause, child, parentOpen: () => existsSync(`/proc/self/fd/${parentFd}`) };
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 20));

describe('SetupPause', () => {
  it('runs the callback when the child pauses, answers one byte, then closes its end', async () => {
    const calls: number[] = [];
    const { pause, child, parentOpen } = pauseWithChild(async (pid) => {
      calls.push(pid);
    });
    try {
      pause.listen(4242);
      await tick();
      expect(calls).toEqual([]);
      writeSync(child, Buffer.from([0]));
      await pause.done();
      expect(calls).toEqual([4242]);
      const answer = Buffer.alloc(2);
      expect(readSync(child, answer, 0, 2, null)).toBe(1);
      expect(answer[0]).toBe(1);
      expect(parentOpen()).toBe(false);
    } finally {
      close(child);
    }
  });

  it('a child that ends before its pause: done, no callback, and its end closed', async () => {
    let called = false;
    const { pause, child, parentOpen } = pauseWithChild(async () => {
      called = true;
    });
    pause.listen(1);
    close(child);
    await pause.done();
    expect(called).toBe(false);
    expect(parentOpen()).toBe(false);
  });

  it("the callback's failure: done rejects with it, the child reads the end, nothing stays open", async () => {
    const failure = new Error('hook failed');
    const { pause, child, parentOpen } = pauseWithChild(async () => {
      throw failure;
    });
    try {
      pause.listen(1);
      writeSync(child, Buffer.from([0]));
      await expect(pause.done()).rejects.toBe(failure);
      expect(pause.failure).toBe(failure);
      expect(readSync(child, Buffer.alloc(1), 0, 1, null)).toBe(0);
      expect(parentOpen()).toBe(false);
    } finally {
      close(child);
    }
  });

  it('closed while the callback runs (a failed start): no answer is written afterwards', async () => {
    let finish: () => void = () => undefined;
    const { pause, child, parentOpen } = pauseWithChild(
      () => new Promise<void>((resolve) => (finish = resolve)),
    );
    try {
      pause.listen(1);
      writeSync(child, Buffer.from([0]));
      await tick();
      pause.close();
      expect(parentOpen()).toBe(false);
      finish();
      await pause.done();
      expect(readSync(child, Buffer.alloc(1), 0, 1, null)).toBe(0);
    } finally {
      close(child);
    }
  });

  it('closed while it waits for the pause: its wait is dropped and its end closed', async () => {
    const { pause, child, parentOpen } = pauseWithChild(async () => undefined);
    try {
      pause.listen(1);
      await tick();
      pause.close();
      expect(parentOpen()).toBe(false);
      expect(readSync(child, Buffer.alloc(1), 0, 1, null)).toBe(0);
    } finally {
      close(child);
    }
  });
});
