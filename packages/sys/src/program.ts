/**
 * Child start-up programs: a list of system calls that a freshly cloned child
 * issues, in order, before it becomes the container's process.
 *
 * Why this exists: Node.js cannot run JavaScript in a forked child (V8's heap is
 * not copied across fork) and a multi-threaded process may not enter a new user
 * namespace. So the child runs a ~250-byte machine-code routine
 * (asm/spawn-x86_64.S) that clones, then walks records built here in
 * TypeScript, issuing each system call. The first failure is reported to the
 * parent as {record index, errno} over a close-on-exec pipe, which the parent
 * maps back to the step's name. A successful execve closes the pipe.
 *
 * Records can keep a result in a "slot" (e.g. an fd returned by openat) and
 * later records can use a slot as an argument.
 */
import { AT_FDCWD, O_CLOEXEC, PR_GET_DUMPABLE, PR_SET_DUMPABLE, SYS, type SyscallName } from './constants.js';
import { ChildSetupError, SyscallError } from './errors.js';
import { lastErrno, libc, type Pointer } from './libc.js';

const SYS_PRCTL = SYS.prctl;

import { SPAWN_CODE_X86_64 } from './spawn-code.x86_64.js';

const HEADER_SIZE = 256;
const RECORD_SIZE = 80;
const MAX_SLOTS = 16;

/** A location in the program's data area; its address is fixed at spawn time. */
export interface DataRef {
  readonly kind: 'data';
  readonly offset: number;
}

/** A register that holds the result of an earlier record. */
export interface Slot {
  readonly kind: 'slot';
  readonly index: number;
}

/** A location `offset` bytes into `ref`. */
export function refAt(ref: DataRef, offset: number): DataRef {
  return { kind: 'data', offset: ref.offset + offset };
}

export type Arg = number | bigint | DataRef | Slot | null;

export interface CallOptions {
  /** An errno that counts as success for this step (e.g. EEXIST for mkdir). */
  ignore?: number;
  /** Keep the result in this slot. */
  store?: Slot;
  /** Also write the result, as a 32-bit int, at this location. */
  storeAt?: DataRef;
  /** A result of 0 fails the step with this errno (a read that hits EOF). */
  zeroErrno?: number;
}

interface Record {
  nr: number;
  syscall: string;
  step: string;
  args: Arg[];
  options: CallOptions;
}

export class ChildProgram {
  private readonly records: Record[] = [];
  private readonly chunks: Buffer[] = [];
  private readonly fixups: { at: number; ref: DataRef }[] = [];
  private dataSize = 0;
  private slots = 0;

  /** Copies bytes into the program's data area. */
  bytes(data: Buffer | Uint8Array, align = 8): DataRef {
    const pad = (align - (this.dataSize % align)) % align;
    if (pad > 0) this.chunks.push(Buffer.alloc(pad));
    const ref: DataRef = { kind: 'data', offset: this.dataSize + pad };
    this.chunks.push(Buffer.from(data));
    this.dataSize += pad + data.length;
    return ref;
  }

  /** A NUL-terminated string. */
  string(value: string): DataRef {
    if (value.includes('\0')) throw new TypeError(`string contains a NUL byte: ${JSON.stringify(value)}`);
    return this.bytes(Buffer.from(`${value}\0`, 'utf8'), 1);
  }

  /** Zeroed scratch memory. */
  alloc(size: number): DataRef {
    return this.bytes(Buffer.alloc(size));
  }

  /** A NULL-terminated array of pointers to strings (argv, envp). */
  stringArray(values: readonly string[]): DataRef {
    const refs = values.map((v) => this.string(v));
    const array = this.alloc(8 * (refs.length + 1));
    this.fixups.push(...refs.map((ref, i) => ({ at: array.offset + 8 * i, ref })));
    return array;
  }

  /** Stores the address of `ref` at `at` once the program is placed in memory. */
  pointerAt(at: DataRef, ref: DataRef, offset = 0): void {
    this.fixups.push({ at: at.offset + offset, ref });
  }

  slot(): Slot {
    if (this.slots >= MAX_SLOTS) throw new RangeError('child program: out of slots');
    return { kind: 'slot', index: this.slots++ };
  }

  /** Appends a raw system call. `step` names it in errors, e.g. "mount proc on /proc". */
  call(syscall: SyscallName, step: string, args: Arg[], options: CallOptions = {}): this {
    if (args.length > 6) throw new RangeError(`${syscall}: at most 6 arguments`);
    this.records.push({ nr: SYS[syscall], syscall, step, args, options });
    return this;
  }

  get length(): number {
    return this.records.length;
  }

  // Typed helpers for the calls a container start-up needs.

  mount(
    source: string | null,
    target: string,
    fstype: string | null,
    flags: number,
    data?: string,
    options?: CallOptions,
  ): this {
    const step = `mount ${fstype ?? source ?? 'none'} on ${target}`;
    return this.call(
      'mount',
      step,
      [
        source === null ? null : this.string(source),
        this.string(target),
        fstype === null ? null : this.string(fstype),
        flags,
        data === undefined ? null : this.string(data),
      ],
      options,
    );
  }

  umount2(target: string, flags: number, options?: CallOptions): this {
    return this.call('umount2', `unmount ${target}`, [this.string(target), flags], options);
  }

  mkdir(path: string, mode: number, options?: CallOptions): this {
    return this.call('mkdir', `mkdir ${path}`, [this.string(path), mode], options);
  }

  mknod(path: string, mode: number, dev: number, options?: CallOptions): this {
    return this.call('mknod', `mknod ${path}`, [this.string(path), mode, dev], options);
  }

  symlink(target: string, path: string, options?: CallOptions): this {
    return this.call(
      'symlink',
      `symlink ${path} -> ${target}`,
      [this.string(target), this.string(path)],
      options,
    );
  }

  chdir(path: string, options?: CallOptions): this {
    return this.call('chdir', `chdir ${path}`, [this.string(path)], options);
  }

  chmod(path: string, mode: number, options?: CallOptions): this {
    return this.call('chmod', `chmod ${path}`, [this.string(path), mode], options);
  }

  openat(path: string, flags: number, mode: number, options?: CallOptions): this {
    return this.call(
      'openat',
      `open ${path}`,
      [AT_FDCWD, this.string(path), flags | O_CLOEXEC, mode],
      options,
    );
  }

  close(fd: number | Slot, step = 'close fd', options?: CallOptions): this {
    return this.call('close', step, [fd], options);
  }

  /** pivot_root(".", ".") after chdir(newRoot), then detach the old root. */
  pivotRoot(newRoot: string): this {
    this.chdir(newRoot);
    this.call('pivot_root', `pivot_root to ${newRoot}`, [this.string('.'), this.string('.')]);
    this.umount2('.', 0x2);
    return this.chdir('/');
  }

  sethostname(name: string): this {
    const buf = Buffer.from(name, 'utf8');
    return this.call('sethostname', `sethostname ${name}`, [this.bytes(buf, 1), buf.length]);
  }

  /** The size in bytes of the laid-out program. */
  get byteLength(): number {
    return HEADER_SIZE + this.records.length * RECORD_SIZE + this.dataSize;
  }

  /** Lays the program out at `base`; returns the bytes to copy there. */
  layout(base: Pointer, header: { cloneFlags: bigint; errorFd: number }): Buffer {
    const recordsAt = HEADER_SIZE;
    const dataAt = recordsAt + this.records.length * RECORD_SIZE;
    const out = Buffer.alloc(this.byteLength);
    // A DataView's setters are built in: a container's program is a few hundred records, laid
    // out once per start by code that has not been optimised yet (Buffer's BigInt writers are
    // JavaScript, and cost `box-runtime create` milliseconds there).
    const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
    const u64 = (at: number, value: bigint) => view.setBigUint64(at, value, true);
    const address = (ref: DataRef) => base + BigInt(dataAt + ref.offset);
    u64(0, header.cloneFlags);
    u64(8, BigInt(header.errorFd));
    u64(16, BigInt(this.records.length));
    u64(24, base + BigInt(recordsAt));
    u64(176, 0xffffffffffffffffn);
    for (let i = 0; i < this.records.length; i++) {
      const record = this.records[i]!;
      const at = recordsAt + i * RECORD_SIZE;
      u64(at, BigInt(record.nr));
      let slotMask = 0;
      for (let j = 0; j < record.args.length; j++) {
        const arg = record.args[j]!;
        let value: bigint;
        if (arg === null) value = 0n;
        else if (typeof arg === 'number') value = BigInt.asUintN(64, BigInt(arg));
        else if (typeof arg === 'bigint') value = BigInt.asUintN(64, arg);
        else if (arg.kind === 'slot') {
          value = BigInt(arg.index);
          slotMask |= 1 << j;
        } else value = address(arg);
        u64(at + 8 + 8 * j, value);
      }
      view.setUint32(at + 56, record.options.ignore ?? 0, true);
      view.setUint8(at + 60, record.options.store?.index ?? 0xff);
      view.setUint8(at + 61, slotMask);
      view.setUint8(at + 62, record.options.zeroErrno ?? 0);
      u64(at + 64, record.options.storeAt ? address(record.options.storeAt) : 0n);
    }
    let offset = dataAt;
    for (const chunk of this.chunks) {
      chunk.copy(out, offset);
      offset += chunk.length;
    }
    for (const { at, ref } of this.fixups) u64(dataAt + at, address(ref));
    return out;
  }

  /**
   * Turns the {index, errno} a failed child reported into an error naming the step.
   * The exec stub reports index -1 (its execve), -2 or -3 (its own steps), -4 (its fork in
   * init mode): they belong to the program's last step.
   */
  failure(report: Buffer): ChildSetupError {
    const raw = report.readBigInt64LE(0);
    const errno = Number(report.readBigUInt64LE(8));
    if (raw < 0n) {
      const last = this.records[this.records.length - 1]?.step ?? 'exec';
      if (raw === -2n) return new ChildSetupError(`${last}: the exec stub's gids`, 'setresgid', errno);
      if (raw === -3n)
        return new ChildSetupError(`${last}: the exec stub's parent-death signal`, 'prctl', errno);
      if (raw === -4n) return new ChildSetupError(`${last}: the init's fork`, 'fork', errno);
      return new ChildSetupError(last, 'execve', errno);
    }
    const index = Number(raw);
    const record = this.records[index];
    if (!record) return new ChildSetupError(`child step #${index}`, 'unknown', errno);
    return new ChildSetupError(record.step, record.syscall, errno);
  }
}

const PAGE = 4096;
let code: Pointer | undefined;

function spawnCode(): Pointer {
  if (process.arch !== 'x64') {
    throw new Error(`box spawns containers on x86_64 only for now (this is ${process.arch})`);
  }
  if (code === undefined) {
    const c = libc();
    const bytes = Buffer.from(SPAWN_CODE_X86_64, 'hex');
    const page = c.mmap(null, PAGE, 3, 0x22, -1, 0) as Pointer;
    if (page === 0n || page === 0xffffffffffffffffn) throw new Error('mmap of the spawn routine failed');
    c.memcpy(page, bytes, bytes.length);
    if (c.mprotect(page, PAGE, 5) !== 0) throw new Error('mprotect of the spawn routine failed');
    code = page;
  }
  return code;
}

export interface SpawnedChild {
  pid: number;
  /** Read end of the error pipe: 16 bytes on failure, EOF once execve succeeded. */
  errorFd: number;
  /**
   * With `shareMemory`: frees the child's program and lets this process be dumpable again.
   * Call it once, when the error pipe reaches EOF (the child has exec'd or ended), never
   * before: the child reads its program from this process's memory until then.
   */
  release?: () => void;
}

/**
 * Clones a child with `cloneFlags` (namespace flags; the exit signal SIGCHLD is
 * added) and runs `program` in it. Synchronous and fast (no Node start-up in the
 * child). The caller owns `errorFd` and must reap the child.
 */
export interface SpawnChildOptions {
  /**
   * Share this process's memory with the child and suspend the calling thread until the
   * child has exec'd or failed (CLONE_VM|CLONE_VFORK, as posix_spawn does): no page tables
   * are copied and no copy-on-write faults follow. Only for programs that never wait for
   * this process (no sync point): the parent cannot act while the child runs.
   */
  vfork?: boolean;
  /**
   * Share this process's memory with the child without waiting for it (CLONE_VM alone): no
   * page tables are copied and no copy-on-write faults follow, which for a Node.js process of
   * 100 MB is most of a spawn's cost. For programs that wait for this process (a sync point,
   * an exec gate, whose wait is the exec stub's). The child then runs on this process's memory,
   * so the program's pages stay mapped until the caller calls the returned `release` (once the
   * child has exec'd: at the error pipe's EOF, or at the exec stub's AT_GATE report), and this
   * process stays undumpable until then. Why that is safe: the child runs only the spawn
   * routine, which after clone touches no stack and no memory but its program's; every signal
   * is blocked until its handlers are reset to the default (no signal frame is ever pushed on
   * the shared stack); and its execve gives it memory of its own.
   */
  shareMemory?: boolean;
  /**
   * The error pipe [read, write] (close-on-exec), made by the caller when its program
   * needs the write end's number (e.g. to keep it open for the exec stub). spawnChild
   * takes both ends over. By default it makes one.
   */
  errorPipe?: readonly [number, number];
}

const CLONE_VM = 0x100n;
const CLONE_VFORK = 0x4000n;

/**
 * Children that share this process's memory and have not exec'd yet (spawnChild's
 * shareMemory). Dumpability belongs to the memory map, so this process stays undumpable while
 * there is one: nothing in a container a child enters could ptrace it or open its /proc files.
 */
let sharing = 0;
let dumpableBefore = 0;

function shareBegins(c: ReturnType<typeof libc>): void {
  if (sharing++ > 0) return;
  dumpableBefore = Number(c.syscall3(SYS_PRCTL, PR_GET_DUMPABLE, 0, 0));
  if (dumpableBefore !== 0 && Number(c.syscall3(SYS_PRCTL, PR_SET_DUMPABLE, 0, 0)) !== 0) {
    sharing--;
    throw new SyscallError('prctl(PR_SET_DUMPABLE)', lastErrno());
  }
}

function shareEnds(c: ReturnType<typeof libc>): void {
  if (--sharing === 0 && dumpableBefore !== 0) c.syscall3(SYS_PRCTL, PR_SET_DUMPABLE, dumpableBefore, 0);
}

export function spawnChild(
  program: ChildProgram,
  cloneFlags: number,
  options: SpawnChildOptions = {},
): SpawnedChild {
  const c = libc();
  const fn = spawnCode();
  let readFd: number;
  let writeFd: number;
  if (options.errorPipe) [readFd, writeFd] = options.errorPipe;
  else {
    const fds = [0, 0];
    if (c.pipe2(fds, O_CLOEXEC) !== 0) throw new Error('pipe2 for the error pipe failed');
    [readFd, writeFd] = [fds[0]!, fds[1]!];
  }
  try {
    // The child never uses the stack or returns into Node, so sharing memory is safe.
    const sharesUntilRelease = options.shareMemory === true && !options.vfork;
    const shared = options.vfork ? CLONE_VM | CLONE_VFORK : sharesUntilRelease ? CLONE_VM : 0n;
    const flags = BigInt(cloneFlags) | 17n | shared; // SIGCHLD
    const length = Math.ceil(program.byteLength / PAGE) * PAGE;
    const base = c.mmap(null, length, 3, 0x22, -1, 0) as Pointer;
    if (base === 0n || base === 0xffffffffffffffffn) throw new Error('mmap for the child program failed');
    let keep = false;
    try {
      const bytes = program.layout(base, { cloneFlags: flags, errorFd: writeFd });
      c.memcpy(base, bytes, bytes.length);
      // The child starts as a copy of this process (its memory, the host's node binary as
      // /proc/self/exe, the caller's environment): not dumpable, so nothing in the container
      // it enters can ptrace it or open its /proc files before its execve. Dumpability is
      // a property of the memory map, which the child copies (or, with vfork, shares until
      // its exec, and this thread waits for that; with shareMemory, shares until `release`).
      shareBegins(c);
      let pid = -1;
      try {
        pid = Number(c.koffi.call(fn, c.spawnProto, base));
      } finally {
        if (!(sharesUntilRelease && pid > 0)) shareEnds(c);
      }
      if (pid < 0) {
        throw new SyscallError('clone', -pid, { args: `flags 0x${cloneFlags.toString(16)}` });
      }
      if (!sharesUntilRelease) return { pid, errorFd: readFd };
      keep = true;
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        c.munmap(base, length);
        shareEnds(c);
      };
      return { pid, errorFd: readFd, release };
    } finally {
      if (!keep) c.munmap(base, length);
    }
  } catch (error) {
    c.close(readFd);
    throw error;
  } finally {
    c.close(writeFd);
  }
}
