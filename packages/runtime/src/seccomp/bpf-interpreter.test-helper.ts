// For tests only: runs a seccomp filter as the kernel would, on a seccomp_data of our making.
// The opcodes are written out as numbers, not imported from bpf.ts, so that a wrong constant
// there can't hide here; encoding.test.ts checks both against the headers. It knows exactly the
// opcodes the compiler emits and throws on any other, and it checks what the kernel's checker
// checks before it takes a filter (forward jumps in bounds, aligned loads inside seccomp_data,
// a return at the end, at most 4096 instructions).

export interface SeccompData {
  nr: number;
  arch: number;
  instructionPointer?: bigint;
  /** Up to six 64-bit arguments; missing ones are 0. */
  args?: readonly (bigint | number)[];
}

interface Insn {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

function decode(filter: Buffer): Insn[] {
  if (filter.length % 8 !== 0 || filter.length === 0) throw new Error(`a filter of ${filter.length} bytes`);
  const program: Insn[] = [];
  for (let at = 0; at < filter.length; at += 8)
    program.push({
      code: filter.readUInt16LE(at),
      jt: filter.readUInt8(at + 2),
      jf: filter.readUInt8(at + 3),
      k: filter.readUInt32LE(at + 4),
    });
  return program;
}

/** The kernel's static checks (bpf_check_classic and seccomp_check_filter), for our opcodes. */
export function checkFilter(filter: Buffer): Insn[] {
  const program = decode(filter);
  if (program.length > 4096) throw new Error(`${program.length} instructions, more than BPF_MAXINSNS`);
  program.forEach((insn, pc) => {
    const target = (offset: number) => {
      if (pc + 1 + offset >= program.length) throw new Error(`jump out of the program at ${pc}`);
    };
    switch (insn.code) {
      case 0x20: // BPF_LD | BPF_W | BPF_ABS
        if (insn.k >= 64 || insn.k % 4 !== 0) throw new Error(`load of seccomp_data+${insn.k} at ${pc}`);
        break;
      case 0x54: // BPF_ALU | BPF_AND | BPF_K
      case 0x06: // BPF_RET | BPF_K
        break;
      case 0x05: // BPF_JMP | BPF_JA
        target(insn.k);
        break;
      case 0x15: // BPF_JMP | BPF_JEQ | BPF_K
      case 0x25: // BPF_JMP | BPF_JGT | BPF_K
      case 0x35: // BPF_JMP | BPF_JGE | BPF_K
        target(insn.jt);
        target(insn.jf);
        break;
      default:
        throw new Error(`unexpected opcode 0x${insn.code.toString(16)} at ${pc}`);
    }
  });
  if (program[program.length - 1]!.code !== 0x06) throw new Error('the program does not end with a return');
  return program;
}

/** Checks the filter once, and returns a function that runs it on a seccomp_data. */
export function loadFilter(filter: Buffer): (data: SeccompData) => { ret: number; steps: number } {
  const program = checkFilter(filter);
  const bytes = Buffer.alloc(64);
  return (data) => {
    bytes.fill(0);
    bytes.writeInt32LE(data.nr | 0, 0);
    bytes.writeUInt32LE(data.arch >>> 0, 4);
    bytes.writeBigUInt64LE(data.instructionPointer ?? 0n, 8);
    (data.args ?? []).forEach((arg, i) => {
      bytes.writeBigUInt64LE(BigInt.asUintN(64, BigInt(arg)), 16 + 8 * i);
    });
    let a = 0;
    let pc = 0;
    for (let steps = 1; ; steps++) {
      const insn = program[pc];
      if (!insn) throw new Error(`ran off the program at ${pc}`);
      pc += 1;
      switch (insn.code) {
        case 0x20:
          a = bytes.readUInt32LE(insn.k);
          break;
        case 0x54:
          a = (a & insn.k) >>> 0;
          break;
        case 0x05:
          pc += insn.k;
          break;
        case 0x15:
          pc += a === insn.k ? insn.jt : insn.jf;
          break;
        case 0x25:
          pc += a > insn.k ? insn.jt : insn.jf;
          break;
        case 0x35:
          pc += a >= insn.k ? insn.jt : insn.jf;
          break;
        case 0x06:
          return { ret: insn.k >>> 0, steps };
        default:
          throw new Error(`unexpected opcode 0x${insn.code.toString(16)}`);
      }
    }
  };
}

/** Runs the filter on `data`: its 32-bit result (SECCOMP_RET_*) and how many instructions ran. */
export function execute(filter: Buffer, data: SeccompData): { ret: number; steps: number } {
  return loadFilter(filter)(data);
}

/** Runs the filter on `data` and returns its 32-bit result (SECCOMP_RET_*). */
export function runFilter(filter: Buffer, data: SeccompData): number {
  return execute(filter, data).ret;
}
