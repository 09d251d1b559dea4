import {
  closeSync,
  fstatSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CLONE_NEWUTS, O_CREAT, O_RDONLY, O_WRONLY, SCM_RIGHTS, SOL_SOCKET } from './constants.js';
import { ChildSetupError, SyscallError } from './errors.js';
import { libc } from './libc.js';
import { ChildProgram, type DataRef, refAt, spawnChild } from './program.js';
import { close, kill, pipe, receiveFd, socketPair, tryWait, type WaitStatus } from './syscalls.js';

const HEADER = 256;
const RECORD = 80;
const BASE = 0x7f0000000000n;

/** Reads the NUL-terminated string at a program address in a laid-out buffer. */
function stringAt(buf: Buffer, address: bigint): string {
  const at = Number(address - BASE);
  return buf.toString('utf8', at, buf.indexOf(0, at));
}

function record(buf: Buffer, i: number) {
  const at = HEADER + i * RECORD;
  return {
    nr: Number(buf.readBigUInt64LE(at)),
    arg: (j: number) => buf.readBigUInt64LE(at + 8 + 8 * j),
    ignore: buf.readUInt32LE(at + 56),
    store: buf.readUInt8(at + 60),
    slotMask: buf.readUInt8(at + 61),
    storeAt: buf.readBigUInt64LE(at + 64),
  };
}

describe('ChildProgram.layout', () => {
  it('writes the header: clone flags, error fd, record count and address, full signal set', () => {
    const p = new ChildProgram().mkdir('/a', 0o755).chdir('/a');
    const buf = p.layout(BASE, { cloneFlags: 0x20000011n, errorFd: 42 });
    expect(buf.readBigUInt64LE(0)).toBe(0x20000011n);
    expect(buf.readBigUInt64LE(8)).toBe(42n);
    expect(buf.readBigUInt64LE(16)).toBe(2n);
    expect(buf.readBigUInt64LE(24)).toBe(BASE + BigInt(HEADER));
    expect(buf.readBigUInt64LE(176)).toBe(0xffffffffffffffffn);
    expect(p.length).toBe(2);
    // Slots, error buffer and argument scratch start zeroed.
    expect(buf.subarray(32, 176).every((b) => b === 0)).toBe(true);
    expect(buf.subarray(184, HEADER).every((b) => b === 0)).toBe(true);
  });

  it('places records after the header and strings in the data area', () => {
    const p = new ChildProgram();
    p.mkdir('/tmp/x', 0o755, { ignore: 17 });
    p.mount('proc', '/proc', 'proc', 0xe);
    const buf = p.layout(BASE, { cloneFlags: 17n, errorFd: 3 });
    const dataAt = HEADER + 2 * RECORD;

    const mkdir = record(buf, 0);
    expect(mkdir.nr).toBe(83);
    expect(mkdir.arg(0)).toBeGreaterThanOrEqual(BASE + BigInt(dataAt));
    expect(stringAt(buf, mkdir.arg(0))).toBe('/tmp/x');
    expect(mkdir.arg(1)).toBe(0o755n);
    expect(mkdir.arg(2)).toBe(0n);
    expect(mkdir.ignore).toBe(17);
    expect(mkdir.store).toBe(0xff);
    expect(mkdir.slotMask).toBe(0);
    expect(mkdir.storeAt).toBe(0n);

    const mount = record(buf, 1);
    expect(mount.nr).toBe(165);
    expect(stringAt(buf, mount.arg(0))).toBe('proc');
    expect(stringAt(buf, mount.arg(1))).toBe('/proc');
    expect(stringAt(buf, mount.arg(2))).toBe('proc');
    expect(mount.arg(3)).toBe(0xen);
    expect(mount.arg(4)).toBe(0n); // no data: NULL
    expect(mount.ignore).toBe(0);
  });

  it('is header + records + data long, and the same at any base but for addresses', () => {
    const p = new ChildProgram().sethostname('box');
    const a = p.layout(0n, { cloneFlags: 0n, errorFd: 0 });
    const b = p.layout(BASE, { cloneFlags: 0n, errorFd: 0 });
    expect(a.length).toBe(HEADER + RECORD + 3);
    expect(b.length).toBe(a.length);
    expect(b.toString('utf8', HEADER + RECORD)).toBe('box');
    expect(record(b, 0).arg(0)).toBe(BASE + BigInt(HEADER + RECORD));
    expect(record(b, 0).arg(1)).toBe(3n);
  });

  it('encodes negative numbers as 64-bit two’s complement', () => {
    const p = new ChildProgram().call('close', 'close AT_FDCWD', [-100]).call('close', 'big', [-1n]);
    const buf = p.layout(BASE, { cloneFlags: 0n, errorFd: 0 });
    expect(record(buf, 0).arg(0)).toBe(0xffffffffffffff9cn);
    expect(record(buf, 1).arg(0)).toBe(0xffffffffffffffffn);
  });

  it('marks slot arguments in the mask and stores results in slots and at addresses', () => {
    const p = new ChildProgram();
    const fd = p.slot();
    const other = p.slot();
    const place = p.alloc(8);
    p.openat('/dev/null', O_WRONLY, 0, { store: fd, storeAt: refAt(place, 4) });
    p.call('dup3', 'dup', [fd, 5, other]);
    const buf = p.layout(BASE, { cloneFlags: 0n, errorFd: 0 });
    const dataAt = HEADER + 2 * RECORD;

    const open = record(buf, 0);
    expect(open.nr).toBe(257);
    expect(open.arg(0)).toBe(BigInt.asUintN(64, -100n));
    expect(open.arg(2)).toBe(BigInt(O_WRONLY | 0o2000000)); // always O_CLOEXEC
    expect(open.store).toBe(0);
    expect(open.storeAt).toBe(BASE + BigInt(dataAt + place.offset + 4));
    expect(open.slotMask).toBe(0);

    const dup = record(buf, 1);
    expect(dup.slotMask).toBe(0b101);
    expect(dup.arg(0)).toBe(0n);
    expect(dup.arg(1)).toBe(5n);
    expect(dup.arg(2)).toBe(1n);
  });

  it('aligns bytes() and lays out argv arrays of pointers ending in NULL', () => {
    const p = new ChildProgram();
    p.string('x');
    const aligned = p.bytes(Buffer.from([1, 2, 3]));
    expect(aligned.offset % 8).toBe(0);
    const argv = p.stringArray(['sh', '-c', 'echo hi']);
    expect(argv.offset % 8).toBe(0);
    p.call('execve', 'exec', [p.string('/bin/sh'), argv, p.stringArray([])]);
    const buf = p.layout(BASE, { cloneFlags: 0n, errorFd: 0 });
    const dataAt = HEADER + RECORD;
    const pointer = (ref: DataRef, i: number) => buf.readBigUInt64LE(dataAt + ref.offset + 8 * i);
    expect(buf.subarray(dataAt + aligned.offset, dataAt + aligned.offset + 3)).toEqual(
      Buffer.from([1, 2, 3]),
    );
    expect([0, 1, 2].map((i) => stringAt(buf, pointer(argv, i)))).toEqual(['sh', '-c', 'echo hi']);
    expect(pointer(argv, 3)).toBe(0n);
    const exec = record(buf, 0);
    expect(stringAt(buf, exec.arg(0))).toBe('/bin/sh');
    expect(exec.arg(1)).toBe(BASE + BigInt(dataAt + argv.offset));
    expect(buf.readBigUInt64LE(Number(exec.arg(2) - BASE))).toBe(0n); // empty envp
  });

  it('fills pointerAt fix-ups with the address of the target', () => {
    const p = new ChildProgram();
    const target = p.string('target');
    const holder = p.alloc(16);
    p.pointerAt(holder, target, 8);
    const buf = p.layout(BASE, { cloneFlags: 0n, errorFd: 0 });
    expect(buf.readBigUInt64LE(HEADER + holder.offset)).toBe(0n);
    expect(stringAt(buf, buf.readBigUInt64LE(HEADER + holder.offset + 8))).toBe('target');
  });

  it('rejects NUL in strings, more than six arguments and a 17th slot', () => {
    const p = new ChildProgram();
    expect(() => p.string('a\0b')).toThrow(TypeError);
    expect(() => p.call('mount', 'too many', [1, 2, 3, 4, 5, 6, 7])).toThrow(RangeError);
    for (let i = 0; i < 16; i++) p.slot();
    expect(() => p.slot()).toThrow('out of slots');
  });

  it('names pivot_root, umount2, symlink, mknod and chmod steps', () => {
    const p = new ChildProgram();
    p.pivotRoot('/new')
      .symlink('/proc/self/fd', '/dev/fd')
      .mknod('/dev/null', 0o20666, 0x103)
      .chmod('/x', 0o600);
    const steps = [0, 1, 2, 3, 4, 5, 6, 7].map((i) => {
      const report = Buffer.alloc(16);
      report.writeBigUInt64LE(BigInt(i), 0);
      report.writeBigUInt64LE(1n, 8);
      return p.failure(report).step;
    });
    expect(steps).toEqual([
      'chdir /new',
      'pivot_root to /new',
      'unmount .',
      'chdir /',
      'symlink /dev/fd -> /proc/self/fd',
      'mknod /dev/null',
      'chmod /x',
      'child step #7',
    ]);
  });
});

async function waitExit(pid: number, timeoutMs = 5000): Promise<WaitStatus> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const status = tryWait(pid);
    if (status) return status;
    await sleep(5);
  }
  kill(pid, 9);
  throw new Error(`child ${pid} did not exit within ${timeoutMs} ms`);
}

/** Everything left in a pipe until EOF. */
function readAll(fd: number): Buffer {
  const chunks: Buffer[] = [];
  const buf = Buffer.alloc(65536);
  for (;;) {
    const n = readSync(fd, buf);
    if (n === 0) break;
    chunks.push(Buffer.from(buf.subarray(0, n)));
  }
  return Buffer.concat(chunks);
}

function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

describe('spawnChild', () => {
  const fds: number[] = [];
  let dir: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'box-sys-test-'));
  });

  afterEach(() => {
    for (const fd of fds.splice(0)) {
      try {
        closeSync(fd);
      } catch {
        // already closed
      }
    }
    rmSync(dir, { recursive: true, force: true });
  });

  /** Spawns, collects the error pipe until EOF, and reaps the child. */
  async function run(program: ChildProgram, flags = 0) {
    const child = spawnChild(program, flags);
    fds.push(child.errorFd);
    const report = readAll(child.errorFd);
    const status = await waitExit(child.pid);
    return { pid: child.pid, report, status };
  }

  function exec(p: ChildProgram, path: string, args: string[]): ChildProgram {
    return p.call('execve', `exec ${path}`, [p.string(path), p.stringArray(args), p.stringArray([])]);
  }

  it('runs /bin/true: the error pipe reaches EOF and the child exits 0', async () => {
    const { pid, report, status } = await run(exec(new ChildProgram(), '/bin/true', ['true']));
    expect(pid).toBeGreaterThan(0);
    expect(report.length).toBe(0);
    expect(status).toEqual({ exitCode: 0, signal: null });
  });

  it('exits 0 after the last record when there is no execve', async () => {
    const { report, status } = await run(new ChildProgram().mkdir(`${dir}/made`, 0o700));
    expect(report.length).toBe(0);
    expect(status).toEqual({ exitCode: 0, signal: null });
    expect(statSync(`${dir}/made`).isDirectory()).toBe(true);
  });

  it('reports the failing step with its errno and exits 127', async () => {
    const p = new ChildProgram().mkdir(`${dir}/ok`, 0o755).mkdir('/nonexistent-box-test/a/b', 0o755);
    exec(p, '/bin/true', ['true']);
    const { report, status } = await run(p);
    expect(report.length).toBe(16);
    expect(report.readBigUInt64LE(0)).toBe(1n);
    const error = p.failure(report);
    expect(error).toBeInstanceOf(ChildSetupError);
    expect(error.step).toBe('mkdir /nonexistent-box-test/a/b');
    expect(error.syscall).toBe('mkdir');
    expect(error.code).toBe('ENOENT');
    expect(error.message).toBe('mkdir /nonexistent-box-test/a/b: ENOENT (no such file or directory)');
    expect(status).toEqual({ exitCode: 127, signal: null });
  });

  it('reports a failing execve as the exec step', async () => {
    const p = exec(new ChildProgram(), '/nonexistent-box-test', ['x']);
    const { report, status } = await run(p);
    expect(p.failure(report)).toMatchObject({ step: 'exec /nonexistent-box-test', code: 'ENOENT' });
    expect(status.exitCode).toBe(127);
  });

  it("names the exec stub's own steps (negative indexes) after the program's last step", () => {
    const p = new ChildProgram().call('execveat', 'exec /bin/x', [0, 0, 0, 0, 0]);
    const report = (step: bigint) => {
      const b = Buffer.alloc(16);
      b.writeBigInt64LE(step, 0);
      b.writeBigUInt64LE(11n, 8); // EAGAIN
      return b;
    };
    expect(p.failure(report(-1n))).toMatchObject({ step: 'exec /bin/x', syscall: 'execve' });
    expect(p.failure(report(-2n))).toMatchObject({ step: "exec /bin/x: the exec stub's gids" });
    expect(p.failure(report(-3n))).toMatchObject({
      step: "exec /bin/x: the exec stub's parent-death signal",
    });
    expect(p.failure(report(-4n))).toMatchObject({
      step: "exec /bin/x: the init's fork",
      syscall: 'fork',
      code: 'EAGAIN',
    });
  });

  it('goes on past a failure whose errno is ignored, and stops at one that is not', async () => {
    const ignored = await run(new ChildProgram().mkdir(dir, 0o755, { ignore: 17 }));
    expect(ignored.report.length).toBe(0);
    expect(ignored.status.exitCode).toBe(0);

    const p = new ChildProgram().mkdir(dir, 0o755, { ignore: 2 });
    const failed = await run(p);
    expect(p.failure(failed.report)).toMatchObject({ step: `mkdir ${dir}`, code: 'EEXIST' });
  });

  it('fails a step whose result is 0 when asked (a read at EOF: the parent is gone)', async () => {
    const [r, w] = pipe();
    close(w);
    const lenient = new ChildProgram();
    lenient.call('read', 'wait at the sync point', [r, lenient.alloc(8), 1]);
    const strict = new ChildProgram();
    strict.call('read', 'wait at the sync point', [r, strict.alloc(8), 1], { zeroErrno: 32 });
    const passed = await run(lenient);
    const failed = await run(strict);
    close(r);
    expect(passed.status.exitCode).toBe(0);
    expect(failed.status.exitCode).toBe(127);
    expect(strict.failure(failed.report)).toMatchObject({ step: 'wait at the sync point', code: 'EPIPE' });
  });

  it('is not dumpable from the clone on, and this process is again afterwards', async () => {
    // The child writes prctl(PR_GET_DUMPABLE) bytes into a pipe: 0 bytes when not dumpable.
    for (const vfork of [false, true]) {
      const [r, w] = pipe();
      const p = new ChildProgram();
      const dumpable = p.slot();
      p.call('prctl', 'get dumpable', [3], { store: dumpable });
      p.call('write', 'report dumpable', [w, p.alloc(8), dumpable]);
      const child = spawnChild(p, 0, { vfork });
      fds.push(child.errorFd);
      close(w);
      expect(await waitExit(child.pid)).toEqual({ exitCode: 0, signal: null });
      const buf = Buffer.alloc(8);
      expect(readSync(r, buf), `vfork ${vfork}`).toBe(0);
      close(r);
    }
    // This process is dumpable again (the child's flag was set around the clone only).
    const self = Number(readFileSync('/proc/self/status', 'utf8').match(/^Uid:\s+(\d+)/m)?.[1]);
    expect(statSync('/proc/self/environ').uid).toBe(self);
  });

  it('shareMemory: the child runs on this memory, undumpable, until release after its end', async () => {
    const dumpable = () => Number(libc().syscall3(157, 3, 0, 0)); // prctl(PR_GET_DUMPABLE)
    expect(dumpable()).toBe(1);
    const [syncR, syncW] = pipe();
    const p = new ChildProgram();
    p.call('read', 'wait at the sync point', [syncR, p.alloc(8), 1]);
    p.call('prctl', 'get dumpable', [3]);
    const child = spawnChild(p, 0, { shareMemory: true });
    fds.push(child.errorFd);
    close(syncR);
    try {
      expect(child.release).toBeTypeOf('function');
      // One memory: a mapping this process makes now is in the child's map too (a forked
      // child's map would not change).
      const big = Buffer.alloc(64 << 20, 1);
      const ours = readFileSync('/proc/self/maps', 'utf8');
      expect(readFileSync(`/proc/${child.pid}/maps`, 'utf8')).toBe(ours);
      expect(big[0]).toBe(1);
      // Undumpable while the child may still run from this memory.
      expect(dumpable()).toBe(0);
    } finally {
      writeSync(syncW, 'x');
      close(syncW);
    }
    expect(await waitExit(child.pid)).toEqual({ exitCode: 0, signal: null });
    expect(readAll(child.errorFd).length).toBe(0);
    child.release!();
    child.release!(); // idempotent
    expect(dumpable()).toBe(1);
  });

  it('passes an fd through a slot and stores it at an address (write to a file)', async () => {
    const p = new ChildProgram();
    const fd = p.slot();
    const number = p.alloc(4);
    const text = p.string('hello');
    p.openat(`${dir}/out`, O_CREAT | O_WRONLY, 0o600, { store: fd, storeAt: number });
    p.call('write', 'write hello', [fd, text, 5]);
    p.call('write', 'write the fd number', [fd, number, 4]);
    p.close(fd, 'close the file');
    p.close(fd, 'close it again');
    const { report, status } = await run(p);
    // The second close fails: the slot held a real fd that the first one closed.
    expect(p.failure(report)).toMatchObject({ step: 'close it again', code: 'EBADF' });
    expect(status.exitCode).toBe(127);
    const out = readFileSync(`${dir}/out`);
    expect(out.toString('utf8', 0, 5)).toBe('hello');
    expect(out.length).toBe(9);
    const childFd = out.readInt32LE(5);
    expect(childFd).toBeGreaterThanOrEqual(3);
  });

  it('sets up stdout with dup3 and runs a shell in a new UTS namespace', async () => {
    const [r, w] = pipe();
    fds.push(r);
    const p = new ChildProgram().sethostname('box-sys-test');
    p.call('dup3', 'set up fd 1', [w, 1, 0]);
    exec(p, '/bin/sh', ['sh', '-c', 'uname -n; echo "$0"']);
    let child: ReturnType<typeof spawnChild>;
    try {
      child = spawnChild(p, CLONE_NEWUTS);
    } finally {
      close(w);
    }
    fds.push(child.errorFd);
    expect(readAll(child.errorFd).length).toBe(0);
    expect(readAll(r).toString()).toBe('box-sys-test\nsh\n');
    expect(await waitExit(child.pid)).toEqual({ exitCode: 0, signal: null });
  });

  it('sends an fd over a unix socket with sendmsg (SCM_RIGHTS), as a console socket does', async () => {
    const [mine, theirs] = socketPair();
    fds.push(mine, theirs);
    expect(receiveFd(mine)).toBeNull(); // nothing waiting yet

    const p = new ChildProgram();
    const controlBytes = Buffer.alloc(24);
    controlBytes.writeBigUInt64LE(20n, 0); // CMSG_LEN(sizeof(int))
    controlBytes.writeInt32LE(SOL_SOCKET, 8);
    controlBytes.writeInt32LE(SCM_RIGHTS, 12);
    const control = p.bytes(controlBytes);
    const iovBytes = Buffer.alloc(16);
    iovBytes.writeBigUInt64LE(1n, 8);
    const iov = p.bytes(iovBytes);
    p.pointerAt(iov, p.bytes(Buffer.from('t'), 1));
    const msgBytes = Buffer.alloc(56);
    msgBytes.writeBigUInt64LE(1n, 24); // msg_iovlen
    msgBytes.writeBigUInt64LE(24n, 40); // msg_controllen
    const msg = p.bytes(msgBytes);
    p.pointerAt(msg, iov, 16);
    p.pointerAt(msg, control, 32);
    const fd = p.slot();
    p.openat('/dev/null', O_RDONLY, 0, { store: fd, storeAt: refAt(control, 16) });
    p.call('sendmsg', 'send /dev/null', [theirs, msg, 0]);
    p.close(fd, 'close /dev/null');
    const { report, status } = await run(p);
    expect(report.length).toBe(0);
    expect(status.exitCode).toBe(0);

    const received = receiveFd(mine);
    expect(received).not.toBeNull();
    fds.push(received!);
    const stats = fstatSync(received!);
    expect(stats.isCharacterDevice()).toBe(true);
    expect(stats.rdev).toBe(statSync('/dev/null').rdev);
    expect(receiveFd(mine)).toBeNull();
  });

  it('throws a SyscallError from clone for invalid flags and leaks no fd', () => {
    const before = openFds();
    // CLONE_SIGHAND without CLONE_VM is EINVAL.
    expect(() => spawnChild(exec(new ChildProgram(), '/bin/true', ['true']), 0x800)).toThrow(SyscallError);
    try {
      spawnChild(new ChildProgram(), 0x800);
    } catch (error) {
      expect(error).toMatchObject({ syscall: 'clone', code: 'EINVAL', args: 'flags 0x800' });
    }
    expect(openFds()).toBe(before);
  });
});
