import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { SPAWN_CODE_X86_64 } from './spawn-code.x86_64.js';

const packageDir = fileURLToPath(new URL('..', import.meta.url));
const hasAssembler =
  spawnSync('as', ['--version']).status === 0 && spawnSync('objcopy', ['--version']).status === 0;

describe('spawn routine machine code', () => {
  it('is what scripts/build-spawn.sh makes from asm/spawn-x86_64.S', () => {
    expect(hasAssembler, 'as and objcopy are not installed (scripts/setup.sh installs binutils)').toBe(true);
    const generated = execFileSync('bash', [`${packageDir}scripts/build-spawn.sh`], { encoding: 'utf8' });
    const hex = /SPAWN_CODE_X86_64 =\s*'([0-9a-f]+)'/.exec(generated)?.[1];
    expect(hex).toBeDefined();
    expect(SPAWN_CODE_X86_64).toBe(hex);
    // The module on disk is the generated one (compared without formatting).
    const committed = readFileSync(`${packageDir}src/spawn-code.x86_64.ts`, 'utf8');
    expect(committed.replace(/\s+/g, '')).toBe(generated.replace(/\s+/g, ''));
  });

  it('is hex of a routine that starts with push rbx and ends with exit_group(0); syscall', () => {
    expect(SPAWN_CODE_X86_64).toMatch(/^([0-9a-f]{2})+$/);
    // push rbx; push r12; push r13; mov rbx, rdi
    expect(SPAWN_CODE_X86_64.startsWith('53415441554889fb')).toBe(true);
    // mov eax, 231; xor edi, edi; syscall
    expect(SPAWN_CODE_X86_64.endsWith('b8e700000031ff0f05')).toBe(true);
    // Small enough for the single page spawnCode() maps.
    expect(SPAWN_CODE_X86_64.length / 2).toBeLessThan(4096);
  });
});
