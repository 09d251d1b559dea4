import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SECCOMP_RET } from './actions.js';
import {
  AUDIT_ARCH_AARCH64,
  AUDIT_ARCH_ARM,
  AUDIT_ARCH_I386,
  AUDIT_ARCH_X86_64,
  X32_SYSCALL_BIT,
} from './arch.js';
import {
  ALU_AND_K,
  BPF_MAXINSNS,
  encode,
  JMP_JA,
  JMP_JEQ_K,
  JMP_JGE_K,
  JMP_JGT_K,
  LD_W_ABS,
  RET_K,
  SECCOMP_DATA,
} from './bpf.js';
import { SECCOMP_FLAGS } from './profile.js';

/** The values of C expressions over the kernel's UAPI headers, through the preprocessor. */
function headerValues(expressions: Record<string, string>): Record<string, number> {
  const source = [
    '#include <linux/filter.h>',
    '#include <linux/seccomp.h>',
    '#include <linux/audit.h>',
    '#include <asm/unistd.h>',
    ...Object.entries(expressions).map(([name, expr]) => `value_${name} = ${expr};`),
  ].join('\n');
  const run = spawnSync('gcc', ['-E', '-P', '-x', 'c', '-'], { input: source, encoding: 'utf8' });
  if (run.error || run.status !== 0)
    throw new Error(
      `gcc -E on the kernel headers failed (gcc and linux-libc-dev are needed): ${run.error ?? run.stderr}`,
    );
  const values: Record<string, number> = {};
  for (const m of run.stdout.matchAll(/^value_(\w+) = (.*);$/gm)) values[m[1]!] = evaluate(m[2]!);
  return values;
}

/** Integer constants (with U/L suffixes), `|`, `<<`, `+` and parentheses: what these macros use. */
function evaluate(expression: string): number {
  const tokens = expression.match(/0[xX][0-9a-fA-F]+[uUlL]*|\d+[uUlL]*|<<|[|+()]|\S/g) ?? [];
  let i = 0;
  const primary = (): bigint => {
    const t = tokens[i++];
    if (t === '(') {
      const value = or();
      if (tokens[i++] !== ')') throw new Error(`unbalanced: ${expression}`);
      return value;
    }
    if (t && /^(0[xX][0-9a-fA-F]+|\d+)[uUlL]*$/.test(t)) return BigInt(t.replace(/[uUlL]+$/, ''));
    throw new Error(`cannot evaluate ${expression}`);
  };
  const sum = (): bigint => {
    let value = primary();
    while (tokens[i] === '+') {
      i++;
      value += primary();
    }
    return value;
  };
  const shift = (): bigint => {
    let value = sum();
    while (tokens[i] === '<<') {
      i++;
      value <<= sum();
    }
    return value;
  };
  const or = (): bigint => {
    let value = shift();
    while (tokens[i] === '|') {
      i++;
      value |= shift();
    }
    return value;
  };
  const value = or();
  if (i !== tokens.length) throw new Error(`cannot evaluate ${expression}`);
  return Number(BigInt.asUintN(32, value));
}

describe('the encoding', () => {
  it('uses the opcodes, return values and flags of linux/filter.h and linux/seccomp.h', () => {
    const v = headerValues({
      LD_W_ABS: 'BPF_LD | BPF_W | BPF_ABS',
      ALU_AND_K: 'BPF_ALU | BPF_AND | BPF_K',
      JMP_JA: 'BPF_JMP | BPF_JA',
      JMP_JEQ_K: 'BPF_JMP | BPF_JEQ | BPF_K',
      JMP_JGT_K: 'BPF_JMP | BPF_JGT | BPF_K',
      JMP_JGE_K: 'BPF_JMP | BPF_JGE | BPF_K',
      RET_K: 'BPF_RET | BPF_K',
      MAXINSNS: 'BPF_MAXINSNS',
      KILL_PROCESS: 'SECCOMP_RET_KILL_PROCESS',
      KILL_THREAD: 'SECCOMP_RET_KILL_THREAD',
      TRAP: 'SECCOMP_RET_TRAP',
      ERRNO: 'SECCOMP_RET_ERRNO',
      USER_NOTIF: 'SECCOMP_RET_USER_NOTIF',
      TRACE: 'SECCOMP_RET_TRACE',
      LOG: 'SECCOMP_RET_LOG',
      ALLOW: 'SECCOMP_RET_ALLOW',
      TSYNC: 'SECCOMP_FILTER_FLAG_TSYNC',
      LOG_FLAG: 'SECCOMP_FILTER_FLAG_LOG',
      SPEC_ALLOW: 'SECCOMP_FILTER_FLAG_SPEC_ALLOW',
      WAIT_KILLABLE_RECV: 'SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV',
      X86_64: 'AUDIT_ARCH_X86_64',
      I386: 'AUDIT_ARCH_I386',
      AARCH64: 'AUDIT_ARCH_AARCH64',
      ARM: 'AUDIT_ARCH_ARM',
      X32_BIT: '__X32_SYSCALL_BIT',
    });
    expect({
      LD_W_ABS,
      ALU_AND_K,
      JMP_JA,
      JMP_JEQ_K,
      JMP_JGT_K,
      JMP_JGE_K,
      RET_K,
      MAXINSNS: BPF_MAXINSNS,
      ...SECCOMP_RET,
      TSYNC: SECCOMP_FLAGS.SECCOMP_FILTER_FLAG_TSYNC,
      LOG_FLAG: SECCOMP_FLAGS.SECCOMP_FILTER_FLAG_LOG,
      SPEC_ALLOW: SECCOMP_FLAGS.SECCOMP_FILTER_FLAG_SPEC_ALLOW,
      WAIT_KILLABLE_RECV: SECCOMP_FLAGS.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
      X86_64: AUDIT_ARCH_X86_64,
      I386: AUDIT_ARCH_I386,
      AARCH64: AUDIT_ARCH_AARCH64,
      ARM: AUDIT_ARCH_ARM,
      X32_BIT: X32_SYSCALL_BIT,
    }).toEqual(v);
    // The brief's figures, too.
    expect([LD_W_ABS, JMP_JEQ_K, JMP_JGT_K, JMP_JGE_K, JMP_JA, RET_K, ALU_AND_K]).toEqual([
      0x20, 0x15, 0x25, 0x35, 0x05, 0x06, 0x54,
    ]);
  });

  it("reads seccomp_data where linux/seccomp.h's struct puts its fields", () => {
    // struct seccomp_data { int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6]; }:
    // naturally aligned, so 0, 4, 8 and 16, 64 bytes in all.
    const header = readFileSync('/usr/include/linux/seccomp.h', 'utf8');
    const struct = /struct seccomp_data \{([^}]*)\};/.exec(header)?.[1];
    expect(
      struct
        ?.replace(/\/\*[\s\S]*?\*\//g, '')
        .split(';')
        .map((f) => f.trim())
        .filter(Boolean),
    ).toEqual(['int nr', '__u32 arch', '__u64 instruction_pointer', '__u64 args[6]']);
    expect(SECCOMP_DATA).toEqual({ nr: 0, arch: 4, instructionPointer: 8, args: 16, size: 64 });
  });

  it('writes struct sock_filter little-endian: u16 code, u8 jt, u8 jf, u32 k', () => {
    const header = readFileSync('/usr/include/linux/filter.h', 'utf8');
    expect(
      /struct sock_filter \{([^}]*)\};/
        .exec(header)?.[1]
        ?.replace(/\/\*[\s\S]*?\*\//g, '')
        .replace(/\s+/g, ' ')
        .trim(),
    ).toBe('__u16 code; __u8 jt; __u8 jf; __u32 k;');
    expect(encode([{ code: 0x15, jt: 1, jf: 2, k: 0xc000003e }]).toString('hex')).toBe('150001023e0000c0');
    // k as the kernel reads a u32 (a negative errno-style value too); every field in its place.
    expect(
      encode([
        { code: 0x06, jt: 0, jf: 0, k: -1 },
        { code: 0xffff, jt: 255, jf: 254, k: 0x12345678 },
      ]).toString('hex'),
    ).toBe('06000000ffffffff' + 'fffffffe78563412');
    // What does not fit is refused, not wrapped into another instruction.
    expect(() => encode([{ code: 0x15, jt: 256, jf: 0, k: 0 }])).toThrow(RangeError);
    expect(() => encode([{ code: 0x15, jt: 0, jf: -1, k: 0 }])).toThrow(RangeError);
    expect(() => encode([{ code: 0x10000, jt: 0, jf: 0, k: 0 }])).toThrow(RangeError);
  });
});
