/**
 * openProcess on real processes, through pidfds and through the fallback for kernels
 * without them.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync, readlinkSync } from 'node:fs';
import { readlinkat } from '@box/sys';
import { afterEach, describe, expect, it } from 'vitest';
import { openProcess, openProcessWith, type ProcessHandle } from './handle.js';
import { parseStat, processStartTime } from './stat.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** 'pending' if `promise` has not settled within `ms`. */
function within<T>(promise: Promise<T>, ms: number): Promise<T | 'pending'> {
  return Promise.race([promise, sleep(ms).then(() => 'pending' as const)]);
}

const children: ChildProcess[] = [];
const handles: ProcessHandle[] = [];

afterEach(async () => {
  for (const handle of handles.splice(0)) handle.close();
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) {
      const exit = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exit;
    }
  }
});

function start(command: string, ...args: string[]): ChildProcess & { exit: Promise<unknown> } {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'ignore'] });
  children.push(child);
  return Object.assign(child, { exit: new Promise((resolve) => child.once('exit', resolve)) });
}

/** The number on the first line `child` prints (a pid). */
async function firstLine(child: ChildProcess): Promise<number> {
  return new Promise((resolve) =>
    child.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().split('\n')[0]))),
  );
}

function open(pid: number, startTime: number | undefined, usePidfd: boolean): ProcessHandle | undefined {
  const handle = openProcessWith(pid, startTime, usePidfd);
  if (handle) handles.push(handle);
  return handle;
}

function ownStartTime(pid: number): number {
  return parseStat(readFileSync(`/proc/${pid}/stat`, 'latin1'))!.startTime;
}

for (const usePidfd of [true, false]) {
  describe(`openProcess (${usePidfd ? 'pidfd' : 'fallback: kill and /proc'})`, () => {
    it('signals a process and resolves exited when it ends', async () => {
      const child = start('sleep', '100');
      const handle = open(child.pid!, undefined, usePidfd)!;
      expect(handle).toMatchObject({ pid: child.pid, startTime: ownStartTime(child.pid!) });
      expect(handle.pidfd === undefined).toBe(!usePidfd);
      expect(await within(handle.exited, 150)).toBe('pending');
      expect(handle.signal('SIGTERM')).toBe(true);
      expect(await within(handle.exited, 2000)).toBeUndefined();
      await child.exit;
      expect(child.signalCode).toBe('SIGTERM');
      expect(handle.signal(0)).toBe(false);
    });

    it('waits for a process that is not its child', async () => {
      // sh prints the pid of a sleep it leaves behind; the sleep is our grandchild, then init's.
      const sh = start('sh', '-c', 'sleep 0.4 & echo $!');
      const pid = await firstLine(sh);
      await sh.exit;
      const handle = open(pid, undefined, usePidfd)!;
      try {
        const started = performance.now();
        expect(await within(handle.exited, 3000)).toBeUndefined();
        expect(performance.now() - started).toBeGreaterThan(100);
      } finally {
        // Through the handle: by pid, a leftover kill could hit a process that got the pid since.
        handle.signal('SIGKILL');
      }
    });

    it('returns undefined for a pid that is gone, and for an ended process (zombie)', async () => {
      const child = start('true');
      await child.exit;
      expect(open(child.pid!, undefined, usePidfd)).toBeUndefined();
      expect(open(0x3ffffff, undefined, usePidfd)).toBeUndefined();
      // sleep never reaps the child sh left it, so that child stays a zombie. The child ends
      // after the exec (a `true` could end first and be reaped by sh itself).
      const sh = start('sh', '-c', 'sleep 0.3 & echo $!; exec sleep 100');
      const zombie = await firstLine(sh);
      for (let i = 0; i < 100 && !/\) Z /.test(readFileSync(`/proc/${zombie}/stat`, 'latin1')); i++)
        await sleep(10);
      expect(readFileSync(`/proc/${zombie}/stat`, 'latin1')).toMatch(/\) Z /);
      expect(open(zombie, undefined, usePidfd)).toBeUndefined();
      expect(processStartTime(zombie)).toBeUndefined();
    });

    it('refuses a pid whose process started at another time', () => {
      const child = start('sleep', '100');
      const startTime = ownStartTime(child.pid!);
      expect(open(child.pid!, startTime + 1, usePidfd)).toBeUndefined();
      expect(open(child.pid!, startTime, usePidfd)?.startTime).toBe(startTime);
      expect(processStartTime(child.pid!)).toBe(startTime);
    });

    it('gives the process’s own /proc directory', () => {
      const child = start('sleep', '100');
      const handle = open(child.pid!, undefined, usePidfd)!;
      expect(readlinkat(handle.procDir, 'ns/mnt').toString()).toBe(readlinkSync(`/proc/${child.pid}/ns/mnt`));
    });

    it('close() stops the wait, closes its fds, and refuses signals after', async () => {
      const child = start('sleep', '100');
      const handle = open(child.pid!, undefined, usePidfd)!;
      const exited = handle.exited;
      const fds = [handle.procDir, ...(handle.pidfd === undefined ? [] : [handle.pidfd])];
      const targets = fds.map((fd) => readlinkSync(`/proc/self/fd/${fd}`));
      handle.close();
      handle.close();
      for (const [i, fd] of fds.entries()) {
        let now: string | undefined;
        try {
          now = readlinkSync(`/proc/self/fd/${fd}`);
        } catch {
          now = undefined;
        }
        expect(now).not.toBe(targets[i]);
      }
      expect(() => handle.signal('SIGTERM')).toThrow(expect.objectContaining({ code: 'ECLOSED' }));
      child.kill('SIGKILL');
      await child.exit;
      expect(await within(exited, 300)).toBe('pending');
    });
  });
}

describe('openProcess', () => {
  it('uses a pidfd on this kernel', () => {
    const child = start('sleep', '100');
    const handle = openProcess(child.pid!)!;
    handles.push(handle);
    expect(readlinkSync(`/proc/self/fd/${handle.pidfd}`)).toMatch(/pidfd/);
  });

  it('refuses what is not a process id', () => {
    for (const pid of [0, -1, 1.5, Number.NaN]) {
      expect(() => openProcess(pid)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    }
  });

  it('refuses a thread id, also in the fallback', async () => {
    // /proc/self/task has the threads of this process; any but the first is not a process.
    const { readdirSync } = await import('node:fs');
    const thread = readdirSync('/proc/self/task')
      .map(Number)
      .find((tid) => tid !== process.pid)!;
    expect(() => openProcess(thread)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(() => openProcessWith(thread, undefined, false)).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    );
  });
});
