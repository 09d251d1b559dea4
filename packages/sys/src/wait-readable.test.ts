import { spawn } from 'node:child_process';
import { closeSync, openSync, readFile, writeSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { close, pidfdOpen, pipe, setNonBlocking } from './syscalls.js';
import { readWhenReady, waitReadable } from './wait-readable.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** 'pending' if `promise` has not settled within `ms`. */
function within<T>(promise: Promise<T>, ms: number): Promise<T | 'pending'> {
  return Promise.race([promise, sleep(ms).then(() => 'pending' as const)]);
}

describe('waitReadable', () => {
  it('resolves when a pidfd’s process ends, while the event loop keeps running', async () => {
    const child = spawn('sleep', ['0.3'], { stdio: 'ignore' });
    const exit = new Promise((resolve) => child.on('exit', resolve));
    const pidfd = pidfdOpen(child.pid!);
    try {
      let ticks = 0;
      const timer = setInterval(() => ticks++, 10);
      const started = performance.now();
      await waitReadable(pidfd).ready;
      const waited = performance.now() - started;
      clearInterval(timer);
      expect(waited).toBeGreaterThan(200);
      expect(ticks).toBeGreaterThan(10);
    } finally {
      close(pidfd);
      await exit;
    }
  });

  it('resolves when a pipe gets data, and at once for one that has it', async () => {
    const [r, w] = pipe();
    try {
      const wait = waitReadable(r);
      expect(await within(wait.ready, 50)).toBe('pending');
      writeSync(w, 'x');
      expect(await within(wait.ready, 1000)).toBeUndefined();
      expect(await within(waitReadable(r).ready, 1000)).toBeUndefined();
    } finally {
      close(r);
      close(w);
    }
  });

  it('shares one pool thread: many waits leave fs callbacks unblocked', async () => {
    const pipes = Array.from({ length: 8 }, () => pipe());
    try {
      const waits = pipes.map(([r]) => waitReadable(r));
      const started = performance.now();
      await new Promise((resolve, reject) =>
        readFile('/proc/self/stat', (error) => (error ? reject(error) : resolve(undefined))),
      );
      expect(performance.now() - started).toBeLessThan(500);
      for (const wait of waits) wait.cancel();
    } finally {
      for (const [r, w] of pipes) {
        close(r);
        close(w);
      }
    }
  });

  it('a cancelled wait never settles, and the others go on', async () => {
    const [r1, w1] = pipe();
    const [r2, w2] = pipe();
    try {
      const cancelled = waitReadable(r1);
      const other = waitReadable(r2);
      cancelled.cancel();
      writeSync(w1, 'x');
      writeSync(w2, 'x');
      expect(await within(other.ready, 1000)).toBeUndefined();
      expect(await within(cancelled.ready, 100)).toBe('pending');
    } finally {
      for (const fd of [r1, w1, r2, w2]) close(fd);
    }
  });

  it('rejects for an fd that is not open', async () => {
    const fd = openSync('/dev/null', 'r');
    closeSync(fd);
    await expect(waitReadable(fd).ready).rejects.toMatchObject({ syscall: 'ppoll', code: 'EBADF' });
  });

  it('lets the process exit once its waits are cancelled (with the built package)', async () => {
    const dist = JSON.stringify(new URL('../dist/index.js', import.meta.url).href);
    const script = `
      import { pipe, waitReadable } from ${dist};
      const [r] = pipe();
      const wait = waitReadable(r);
      setTimeout(() => { wait.cancel(); console.log('cancelled'); }, 100);`;
    const started = performance.now();
    const node = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    node.stdout.on('data', (d) => {
      out += d;
    });
    const code = await within(new Promise((resolve) => node.on('exit', resolve)), 5000);
    if (code === 'pending') node.kill('SIGKILL');
    expect(code).toBe(0);
    expect(out).toBe('cancelled\n');
    expect(performance.now() - started).toBeLessThan(3000);
  });

  it('keeps the process alive while a wait is pending', async () => {
    const dist = JSON.stringify(new URL('../dist/index.js', import.meta.url).href);
    const script = `
      import { pipe, waitReadable } from ${dist};
      const [r] = pipe();
      waitReadable(r).ready.then(() => console.log('woken'));
      console.log('waiting');`;
    const node = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = new Promise((resolve) => node.on('exit', resolve));
    try {
      expect(await within(exited, 1500)).toBe('pending');
    } finally {
      node.kill('SIGKILL');
      await exited;
    }
  });
});

describe('readWhenReady', () => {
  it('reads what a non-blocking pipe gets, once it gets it, then 0 at its end', async () => {
    const [r, w] = pipe();
    let writeOpen = true;
    try {
      setNonBlocking(r);
      const buffer = Buffer.alloc(8);
      const first = readWhenReady(r, buffer, 2);
      expect(await within(first, 50)).toBe('pending');
      writeSync(w, 'abc');
      expect(await within(first, 1000)).toBe(3);
      expect(buffer.subarray(2, 5).toString()).toBe('abc');
      const end = readWhenReady(r, buffer, 5);
      expect(await within(end, 50)).toBe('pending');
      close(w);
      writeOpen = false;
      expect(await within(end, 1000)).toBe(0);
    } finally {
      close(r);
      if (writeOpen) close(w);
    }
  });

  it('throws what read(2) fails with, other than EAGAIN', async () => {
    const [r, w] = pipe();
    close(r);
    close(w);
    await expect(readWhenReady(r, Buffer.alloc(1))).rejects.toMatchObject({ code: 'EBADF' });
  });

  it('an abort drops the wait and rejects with its reason; no read is made after it', async () => {
    const [r, w] = pipe();
    try {
      setNonBlocking(r);
      const controller = new AbortController();
      const reading = readWhenReady(r, Buffer.alloc(1), 0, controller.signal);
      expect(await within(reading, 50)).toBe('pending');
      const reason = new Error('closing');
      controller.abort(reason);
      await expect(reading).rejects.toBe(reason);
      // The byte written afterwards is still there: the aborted call did not take it.
      writeSync(w, 'z');
      const buffer = Buffer.alloc(1);
      expect(await readWhenReady(r, buffer)).toBe(1);
      expect(buffer.toString()).toBe('z');
      await expect(readWhenReady(r, buffer, 0, controller.signal)).rejects.toBe(reason);
    } finally {
      close(r);
      close(w);
    }
  });
});
