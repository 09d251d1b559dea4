import { spawn } from 'node:child_process';
import {
  closeSync,
  fstatSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  readSync,
  rmSync,
  symlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openat } from './at.js';
import { AT_FDCWD, O_DIRECTORY, O_PATH } from './constants.js';
import { SyscallError } from './errors.js';
import {
  cloneMount,
  close,
  dupCloexec,
  eventfd,
  fgetxattr,
  getWindowSize,
  isatty,
  kill,
  lsetxattr,
  mount,
  pidfdGetfd,
  pidfdOpen,
  pidfdSendSignal,
  pipe,
  receiveFd,
  socketPair,
  tryWait,
  umount2,
} from './syscalls.js';

describe('pipe / close / dupCloexec', () => {
  it('makes a working pipe whose ends close once', () => {
    const [r, w] = pipe();
    expect(r).toBeGreaterThanOrEqual(0);
    expect(w).not.toBe(r);
    expect(readlinkSync(`/proc/self/fd/${r}`)).toMatch(/^pipe:\[\d+\]$/);
    writeSync(w, 'abc');
    const buf = Buffer.alloc(3);
    expect(readSync(r, buf)).toBe(3);
    expect(buf.toString()).toBe('abc');
    close(w);
    expect(readSync(r, buf)).toBe(0); // EOF: the only write end is closed
    close(r);
    expect(() => close(r)).toThrow(
      expect.objectContaining({ syscall: 'close', code: 'EBADF', path: `fd ${r}` }),
    );
  });

  it('marks both pipe ends close-on-exec', () => {
    const [r, w] = pipe();
    try {
      for (const fd of [r, w]) {
        expect(fdFlags(fd) & O_CLOEXEC).not.toBe(0);
      }
    } finally {
      close(r);
      close(w);
    }
  });

  it('duplicates an fd to a number >= min', () => {
    const [r, w] = pipe();
    const copy = dupCloexec(w, 100);
    try {
      expect(copy).toBeGreaterThanOrEqual(100);
      expect(fstatSync(copy).ino).toBe(fstatSync(w).ino);
      expect(fdFlags(copy) & O_CLOEXEC).not.toBe(0);
    } finally {
      close(copy);
      close(r);
      close(w);
    }
    expect(() => dupCloexec(-1)).toThrow(SyscallError);
  });
});

/** The open flags of one of our fds, from /proc/self/fdinfo. */
function fdFlags(fd: number): number {
  return Number.parseInt(/flags:\s+(\d+)/.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))![1]!, 8);
}

const O_CLOEXEC = 0o2000000;

describe('socketPair / receiveFd', () => {
  it('returns null when nothing is waiting and when plain data arrives', () => {
    const [a, b] = socketPair();
    try {
      expect(receiveFd(a)).toBeNull();
      writeSync(b, 'x');
      expect(receiveFd(a)).toBeNull(); // data without SCM_RIGHTS
    } finally {
      close(a);
      close(b);
    }
  });

  it('throws a SyscallError for an fd that is not a socket', () => {
    const [r, w] = pipe();
    try {
      expect(() => receiveFd(r)).toThrow(expect.objectContaining({ syscall: 'recvmsg', code: 'ENOTSOCK' }));
    } finally {
      close(r);
      close(w);
    }
  });
});

describe('kill / tryWait / pidfdOpen', () => {
  it('signal 0 probes a live process; ESRCH for none', () => {
    expect(() => kill(process.pid, 0)).not.toThrow();
    expect(() => kill(0x3ffffff, 0)).toThrow(expect.objectContaining({ syscall: 'kill', code: 'ESRCH' }));
  });

  it('tryWait throws ECHILD for a process that is not our child', () => {
    expect(() => tryWait(1)).toThrow(
      expect.objectContaining({ syscall: 'waitpid', code: 'ECHILD', path: 'pid 1' }),
    );
  });

  it('opens a pidfd for a live process', () => {
    const fd = pidfdOpen(process.pid);
    try {
      expect(readlinkSync(`/proc/self/fd/${fd}`)).toMatch(/pidfd/);
    } finally {
      closeSync(fd);
    }
    expect(() => pidfdOpen(0x3ffffff)).toThrow(
      expect.objectContaining({ syscall: 'pidfd_open', code: 'ESRCH' }),
    );
  });

  it('pidfdGetfd copies an open file of another process; EBADF for an fd it does not have', async () => {
    const child = spawn('sleep', ['100'], { stdio: ['ignore', 'ignore', 'ignore', 'pipe'] });
    await new Promise((resolve) => child.once('spawn', resolve));
    const pidfd = pidfdOpen(child.pid!);
    try {
      const copy = pidfdGetfd(pidfd, 3);
      try {
        expect(readlinkSync(`/proc/self/fd/${copy}`)).toBe(readlinkSync(`/proc/${child.pid}/fd/3`));
      } finally {
        closeSync(copy);
      }
      expect(() => pidfdGetfd(pidfd, 999)).toThrow(
        expect.objectContaining({ syscall: 'pidfd_getfd', code: 'EBADF' }),
      );
    } finally {
      closeSync(pidfd);
      child.kill('SIGKILL');
    }
  });
});

describe('pidfdSendSignal', () => {
  it('signals the process the pidfd names; ESRCH once it has been reaped', async () => {
    const child = spawn('sleep', ['100'], { stdio: 'ignore' });
    const exit = new Promise<NodeJS.Signals | null>((resolve) =>
      child.on('exit', (_code, signal) => resolve(signal)),
    );
    const pidfd = pidfdOpen(child.pid!);
    try {
      pidfdSendSignal(pidfd, 0);
      pidfdSendSignal(pidfd, 15);
      expect(await exit).toBe('SIGTERM');
      expect(() => pidfdSendSignal(pidfd, 0)).toThrow(
        expect.objectContaining({ syscall: 'pidfd_send_signal', code: 'ESRCH', path: `pidfd ${pidfd}` }),
      );
    } finally {
      close(pidfd);
    }
  });

  it('refuses an fd that is not a pidfd', () => {
    const [r, w] = pipe();
    try {
      expect(() => pidfdSendSignal(r, 0)).toThrow(expect.objectContaining({ code: 'EBADF' }));
    } finally {
      close(r);
      close(w);
    }
  });
});

describe('fgetxattr', () => {
  it('reads an attribute of an open directory; null for none; EBADF for an O_PATH fd', () => {
    const dir = mkdtempSync(join(tmpdir(), 'box-xattr-'));
    const fd = openSync(dir, 'r');
    const pathFd = openat(AT_FDCWD, dir, O_PATH | O_DIRECTORY);
    try {
      lsetxattr(dir, 'trusted.box-test', 'y');
      expect(fgetxattr(fd, 'trusted.box-test')?.toString()).toBe('y');
      expect(fgetxattr(fd, 'trusted.box-none')).toBeNull();
      // A NUL in a name is refused, not cut short: `trusted.box-test\0x` is not `trusted.box-test`.
      const nul = expect.objectContaining({ code: 'EINVAL', message: expect.stringContaining('a NUL byte') });
      expect(() => lsetxattr(dir, 'trusted.box-test\0x', 'z')).toThrow(nul);
      expect(() => fgetxattr(fd, 'trusted.box-test\0x')).toThrow(nul);
      expect(() => mount(null, `${dir}\0/x`, 'tmpfs', 0)).toThrow(nul);
      expect(() => umount2(`${dir}\0`)).toThrow(nul);
      expect(() => cloneMount(`${dir}\0`)).toThrow(nul);
      expect(fgetxattr(fd, 'trusted.box-test')?.toString()).toBe('y');
      expect(() => fgetxattr(pathFd, 'trusted.box-test')).toThrow(
        expect.objectContaining({ syscall: 'fgetxattr', code: 'EBADF', path: `fd ${pathFd}` }),
      );
    } finally {
      close(pathFd);
      close(fd);
      rmSync(dir, { recursive: true });
    }
  });
});

describe('eventfd', () => {
  it('counts writes and reads back as zero-then-EAGAIN, close-on-exec', () => {
    const fd = eventfd();
    try {
      expect(fdFlags(fd) & O_CLOEXEC).not.toBe(0);
      const one = Buffer.alloc(8);
      one.writeBigUInt64LE(2n);
      writeSync(fd, one);
      writeSync(fd, one);
      const out = Buffer.alloc(8);
      expect(readSync(fd, out)).toBe(8);
      expect(out.readBigUInt64LE()).toBe(4n);
      expect(() => readSync(fd, out)).toThrow(expect.objectContaining({ code: 'EAGAIN' }));
    } finally {
      close(fd);
    }
  });
});

describe('terminals', () => {
  it('a pipe is not a terminal and has no window size', () => {
    const [r, w] = pipe();
    try {
      expect(isatty(r)).toBe(false);
      expect(() => getWindowSize(r)).toThrow(
        expect.objectContaining({ syscall: 'ioctl(TIOCGWINSZ)', code: 'ENOTTY' }),
      );
    } finally {
      close(r);
      close(w);
    }
  });
});

describe('cloneMount', () => {
  it('gives a detached, read-only view of a directory that follows no symlink and goes with its fd', () => {
    const dir = mkdtempSync(join(tmpdir(), 'box-clone-mount-'));
    const outside = mkdtempSync(join(tmpdir(), 'box-clone-outside-'));
    try {
      mkdirSync(join(dir, 'sub'));
      writeFileSync(join(dir, 'sub', 'file'), 'inside');
      writeFileSync(join(outside, 'secret'), 'host');
      symlinkSync(outside, join(dir, 'link'));
      symlinkSync(join(outside, 'secret'), join(dir, 'file-link'));
      const fd = cloneMount(dir, { readonly: true, nosuid: true, nodev: true, nosymfollow: true });
      const view = `/proc/self/fd/${fd}`;
      try {
        expect(readdirSync(view).sort()).toEqual(['file-link', 'link', 'sub']);
        expect(readFileSync(`${view}/sub/file`, 'utf8')).toBe('inside');
        // The links are there to be read as links, but nothing goes through them.
        expect(lstatSync(`${view}/link`).isSymbolicLink()).toBe(true);
        expect(readlinkSync(`${view}/link`)).toBe(outside);
        expect(() => readdirSync(`${view}/link`)).toThrow(expect.objectContaining({ code: 'ELOOP' }));
        expect(() => readFileSync(`${view}/link/secret`)).toThrow(expect.objectContaining({ code: 'ELOOP' }));
        expect(() => readFileSync(`${view}/file-link`)).toThrow(expect.objectContaining({ code: 'ELOOP' }));
        expect(() => writeFileSync(`${view}/new`, 'x')).toThrow(expect.objectContaining({ code: 'EROFS' }));
        // In no mount namespace: this process's mount table does not have it.
        expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(dir);
      } finally {
        close(fd);
      }
      expect(() => readdirSync(view)).toThrow();
    } finally {
      rmSync(dir, { recursive: true, force: true });
      rmSync(outside, { recursive: true, force: true });
    }
  });

  it('names the path and errno when there is nothing to clone', () => {
    expect(() => cloneMount('/nonexistent-box-clone')).toThrow(
      expect.objectContaining({ syscall: 'open_tree', code: 'ENOENT', path: '/nonexistent-box-clone' }),
    );
  });
});
