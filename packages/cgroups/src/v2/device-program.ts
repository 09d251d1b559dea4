/**
 * cgroup v2 device rules: a BPF_PROG_TYPE_CGROUP_DEVICE program, as runc and crun build it.
 * The kernel runs it on every device open/mknod in the cgroup with
 * `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }`
 * (access_type = access << 16 | type) and allows the access when it returns 1.
 *
 * Rules are checked newest first, so a later rule overrides an earlier one, over an
 * implicit deny-all: the same meaning as writing them to v1's devices.deny/allow.
 */
import type { DeviceRule } from '../manager.js';

const TYPE = { b: 1, c: 2 } as const; // BPF_DEVCG_DEV_BLOCK, BPF_DEVCG_DEV_CHAR
const ACCESS = { m: 1, r: 2, w: 4 } as const; // BPF_DEVCG_ACC_MKNOD, _READ, _WRITE

interface Insn {
  code: number;
  dst: number;
  src: number;
  off: number;
  imm: number;
}

const insn = (code: number, dst: number, src: number, off: number, imm: number): Insn => ({
  code,
  dst,
  src,
  off,
  imm,
});
const ldxw = (dst: number, src: number, off: number) => insn(0x61, dst, src, off, 0); // BPF_LDX|BPF_MEM|BPF_W
const and32 = (dst: number, imm: number) => insn(0x54, dst, 0, 0, imm); // BPF_ALU|BPF_AND|BPF_K
const rsh32 = (dst: number, imm: number) => insn(0x74, dst, 0, 0, imm); // BPF_ALU|BPF_RSH|BPF_K
const mov32 = (dst: number, src: number) => insn(0xbc, dst, src, 0, 0); // BPF_ALU|BPF_MOV|BPF_X
const mov64 = (dst: number, imm: number) => insn(0xb7, dst, 0, 0, imm); // BPF_ALU64|BPF_MOV|BPF_K
const jne = (dst: number, imm: number, off: number) => insn(0x55, dst, 0, off, imm); // BPF_JMP|BPF_JNE|BPF_K
const exit = () => insn(0x95, 0, 0, 0, 0);

function accessBits(access = 'rwm'): number {
  let bits = 0;
  for (const ch of access) {
    const bit = ACCESS[ch as keyof typeof ACCESS];
    if (bit === undefined) throw new RangeError(`bad device access "${access}"`);
    bits |= bit;
  }
  return bits;
}

/** One rule: the checks that skip to the next rule on a mismatch, then the verdict. */
function ruleBlock(rule: DeviceRule): Insn[] {
  const checks: ((skip: number) => Insn[])[] = [];
  const type = rule.type;
  if (type !== 'a') checks.push((skip) => [jne(2, TYPE[type], skip)]);
  const access = accessBits(rule.access);
  if (access !== 7) {
    // Every requested access bit must be in the rule's set.
    checks.push((skip) => [mov32(1, 3), and32(1, ~access & 7), jne(1, 0, skip)]);
  }
  if (rule.type !== 'a' && rule.major !== undefined && rule.major !== '*') {
    const major = rule.major;
    checks.push((skip) => [jne(4, major, skip)]);
  }
  if (rule.type !== 'a' && rule.minor !== undefined && rule.minor !== '*') {
    const minor = rule.minor;
    checks.push((skip) => [jne(5, minor, skip)]);
  }
  const verdict = [mov64(0, rule.allow ? 1 : 0), exit()];
  // Lay out back to front: each check jumps over what follows it in the block.
  let tail: Insn[] = verdict;
  for (const check of checks.reverse()) tail = [...check(tail.length), ...tail];
  return tail;
}

/** The program's instructions for `rules` (applied over deny-all), ready for BPF_PROG_LOAD. */
export function compileDeviceProgram(rules: readonly DeviceRule[]): Buffer {
  const program: Insn[] = [
    ldxw(2, 1, 0),
    and32(2, 0xffff), // r2 = device type
    ldxw(3, 1, 0),
    rsh32(3, 16), // r3 = access asked for
    ldxw(4, 1, 4), // r4 = major
    ldxw(5, 1, 8), // r5 = minor
  ];
  for (const rule of [...rules].reverse()) program.push(...ruleBlock(rule));
  program.push(mov64(0, 0), exit()); // nothing matched: deny
  const out = Buffer.alloc(program.length * 8);
  program.forEach((i, n) => {
    out.writeUInt8(i.code, n * 8);
    out.writeUInt8(((i.src & 0xf) << 4) | (i.dst & 0xf), n * 8 + 1);
    out.writeInt16LE(i.off, n * 8 + 2);
    out.writeInt32LE(i.imm, n * 8 + 4);
  });
  return out;
}
