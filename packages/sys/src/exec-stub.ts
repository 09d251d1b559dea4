/**
 * The exec stub: a tiny static program that a container's process executes
 * from a sealed memfd right before the container's command (see
 * asm/exec-stub-x86_64.S for why). This module wraps the stub's machine code in
 * a minimal ELF file and keeps one sealed, close-on-exec memfd of it per
 * process.
 */
import { writeSync } from 'node:fs';
import { SyscallError } from './errors.js';
import { lastErrno, libc } from './libc.js';
import { EXEC_STUB_CODE_X86_64 } from './spawn-code.x86_64.js';

const BASE = 0x400000n;
const EHDR = 64;
const PHDR = 56;

/** A static x86_64 ELF executable whose only segment is the stub's code. */
export function execStubElf(): Buffer {
  const code = Buffer.from(EXEC_STUB_CODE_X86_64, 'hex');
  const codeAt = EHDR + 2 * PHDR;
  const elf = Buffer.alloc(codeAt + code.length);
  elf.write('\x7fELF', 0, 'latin1');
  elf[4] = 2; // 64-bit
  elf[5] = 1; // little-endian
  elf[6] = 1; // ELF version
  elf.writeUInt16LE(2, 16); // ET_EXEC
  elf.writeUInt16LE(62, 18); // EM_X86_64
  elf.writeUInt32LE(1, 20);
  elf.writeBigUInt64LE(BASE + BigInt(codeAt), 24); // entry
  elf.writeBigUInt64LE(BigInt(EHDR), 32); // program headers
  elf.writeUInt16LE(EHDR, 52);
  elf.writeUInt16LE(PHDR, 54);
  elf.writeUInt16LE(2, 56);
  // PT_LOAD: the whole file, read + execute.
  elf.writeUInt32LE(1, EHDR);
  elf.writeUInt32LE(5, EHDR + 4);
  elf.writeBigUInt64LE(0n, EHDR + 8);
  elf.writeBigUInt64LE(BASE, EHDR + 16);
  elf.writeBigUInt64LE(BASE, EHDR + 24);
  elf.writeBigUInt64LE(BigInt(elf.length), EHDR + 32);
  elf.writeBigUInt64LE(BigInt(elf.length), EHDR + 40);
  elf.writeBigUInt64LE(0x1000n, EHDR + 48);
  // PT_GNU_STACK: a stack that is not executable.
  elf.writeUInt32LE(0x6474e551, EHDR + PHDR);
  elf.writeUInt32LE(6, EHDR + PHDR + 4);
  elf.writeBigUInt64LE(16n, EHDR + PHDR + 48);
  code.copy(elf, codeAt);
  return elf;
}

const SYS_MEMFD_CREATE = 319;
const MFD_CLOEXEC = 0x1;
const MFD_ALLOW_SEALING = 0x2;
const MFD_EXEC = 0x10;
const F_ADD_SEALS = 1033;
const F_SEAL_SEAL = 0x1;
const F_SEAL_SHRINK = 0x2;
const F_SEAL_GROW = 0x4;
const F_SEAL_WRITE = 0x8;
const F_SEAL_EXEC = 0x20;
const EINVAL = 22;

let stubFd: number | undefined;

/**
 * A close-on-exec fd of the exec stub in a memfd sealed against writes,
 * resizing, mode changes and further seals. Made once per process; a container
 * that reaches it through /proc/PID/exe can run it but never change it.
 */
export function execStubFd(): number {
  if (stubFd !== undefined) return stubFd;
  if (process.arch !== 'x64') {
    throw new Error(`box spawns containers on x86_64 only for now (this is ${process.arch})`);
  }
  const c = libc();
  const name = c.koffi.address(Buffer.from('box-exec-stub\0'));
  // MFD_EXEC (Linux 6.3) keeps the memfd executable where vm.memfd_noexec would not.
  let fd = Number(c.syscall3(SYS_MEMFD_CREATE, name, MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC, 0));
  if (fd < 0 && lastErrno() === EINVAL) {
    fd = Number(c.syscall3(SYS_MEMFD_CREATE, name, MFD_CLOEXEC | MFD_ALLOW_SEALING, 0));
  }
  if (fd < 0) throw new SyscallError('memfd_create', lastErrno(), { args: 'box-exec-stub' });
  try {
    const elf = execStubElf();
    if (writeSync(fd, elf, 0, elf.length, 0) !== elf.length) throw new Error('short write of the exec stub');
    const seals = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;
    // F_SEAL_EXEC (Linux 6.3) also fixes the mode; older kernels refuse the bit.
    if (c.dupfd(fd, F_ADD_SEALS, seals | F_SEAL_EXEC) < 0) {
      if (lastErrno() !== EINVAL || c.dupfd(fd, F_ADD_SEALS, seals) < 0)
        throw new SyscallError('fcntl(F_ADD_SEALS)', lastErrno(), { args: 'exec stub memfd' });
    }
  } catch (error) {
    c.close(fd);
    throw error;
  }
  stubFd = fd;
  return fd;
}
