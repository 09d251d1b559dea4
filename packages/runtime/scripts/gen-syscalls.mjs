#!/usr/bin/env node
// Writes src/seccomp/syscalls.generated.ts: syscall name -> number for x86_64, x86 (i386), x32
// and aarch64, read from the kernel's UAPI headers as Debian's linux-libc-dev installs them.
//
//   node packages/runtime/scripts/gen-syscalls.mjs            # write the file
//   node packages/runtime/scripts/gen-syscalls.mjs --check    # exit 1 if it is out of date
//
// Each header is run through `gcc -E -dM` (the preprocessor only: nothing is compiled), so that
// the numbers come out exactly as a C program would see them, and the macro bodies, e.g.
// `(__X32_SYSCALL_BIT + 0)` or `__NR3264_fcntl`, are evaluated here (integers, `+`, `-`,
// parentheses and other macros; anything else is an error, never a guess).
//
// aarch64 has no header of its own on an x86 machine: its numbers are asm-generic/unistd.h
// evaluated with the __ARCH_WANT_* switches of arch/arm64/include/uapi/asm/unistd.h (Linux 6.1,
// the same in every release since 5.14) and a 64-bit `long`, which is what <asm/unistd.h> of
// arm64 does. The switches are listed below, not read, since that file is not installed here.
//
// The test src/seccomp/syscalls.test.ts runs generate() and compares its tables with the
// checked-in file, so a regenerated file can't drift from the headers unnoticed.

import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** The __ARCH_WANT_* switches of arch/arm64/include/uapi/asm/unistd.h. */
export const ARM64_WANTS = [
  '__ARCH_WANT_RENAMEAT',
  '__ARCH_WANT_NEW_STAT',
  '__ARCH_WANT_SET_GET_RLIMIT',
  '__ARCH_WANT_TIME32_SYSCALLS',
  '__ARCH_WANT_SYS_CLONE3',
  '__ARCH_WANT_MEMFD_SECRET',
];

/** The headers read for each architecture, relative to the include directory. */
export function headerFiles(includeDir = '/usr/include') {
  const x86 = join(includeDir, 'x86_64-linux-gnu/asm');
  return {
    x86_64: [join(x86, 'unistd_64.h')],
    x86: [join(x86, 'unistd_32.h')],
    // unistd.h for __X32_SYSCALL_BIT; with __ILP32__ it includes unistd_x32.h.
    x32: [join(x86, 'unistd.h'), join(x86, 'unistd_x32.h')],
    aarch64: [join(includeDir, 'asm-generic/unistd.h')],
  };
}

/** The C source given to the preprocessor for each architecture, and its extra flags. */
function preprocessorInput(arch, files) {
  switch (arch) {
    case 'x86_64':
    case 'x86':
      return { source: `#include "${files[0]}"\n`, flags: [] };
    case 'x32':
      return { source: `#include "${files[0]}"\n`, flags: ['-D__ILP32__'] };
    case 'aarch64':
      return {
        source: `${ARM64_WANTS.map((w) => `#define ${w}\n`).join('')}#include "${files[0]}"\n`,
        flags: [],
      };
    default:
      throw new Error(`no headers for ${arch}`);
  }
}

function defines(arch, files, gcc) {
  const { source, flags } = preprocessorInput(arch, files);
  const run = spawnSync(gcc, ['-E', '-dM', ...flags, '-x', 'c', '-'], { input: source, encoding: 'utf8' });
  if (run.error)
    throw new Error(
      `cannot run ${gcc} to read the kernel headers (${run.error.message}); install gcc (Debian: apt-get install gcc)`,
    );
  if (run.status !== 0) throw new Error(`${gcc} -E -dM failed for ${arch}:\n${run.stderr}`);
  const macros = new Map();
  for (const line of run.stdout.split('\n')) {
    const m = /^#define (\w+) (.*)$/.exec(line);
    if (m) macros.set(m[1], m[2].trim());
  }
  return macros;
}

/** Evaluates a macro body made of integers, other macros, `+`, `-` and parentheses. */
function evaluate(name, macros, seen = new Set()) {
  if (seen.has(name)) throw new Error(`macro ${name} refers to itself`);
  const body = macros.get(name);
  if (body === undefined) throw new Error(`macro ${name} is not defined`);
  const tokens = body.match(/0[xX][0-9a-fA-F]+|\d+|\w+|[()+-]|\S/g) ?? [];
  let i = 0;
  const next = new Set(seen).add(name);
  const primary = () => {
    const t = tokens[i++];
    if (t === undefined) throw new Error(`${name}: unexpected end of "${body}"`);
    if (t === '(') {
      const v = sum();
      if (tokens[i++] !== ')') throw new Error(`${name}: unbalanced "${body}"`);
      return v;
    }
    if (t === '-') return -primary();
    if (/^0[xX]/.test(t)) return Number.parseInt(t, 16);
    if (/^\d+$/.test(t)) return Number.parseInt(t, 10);
    if (/^[A-Za-z_]\w*$/.test(t)) return evaluate(t, macros, next);
    throw new Error(`${name}: cannot evaluate "${body}"`);
  };
  const sum = () => {
    let v = primary();
    while (tokens[i] === '+' || tokens[i] === '-') v = tokens[i++] === '+' ? v + primary() : v - primary();
    return v;
  };
  const value = sum();
  if (i !== tokens.length) throw new Error(`${name}: cannot evaluate "${body}"`);
  return value;
}

/** Macros named __NR_* that are not system calls. */
const NOT_SYSCALLS = new Set(['__NR_syscalls', '__NR_arch_specific_syscall']);

/**
 * Reads the headers and returns the tables ({ x86_64: { read: 0, ... }, ... }, names sorted),
 * the files read and the linux-libc-dev version. Throws, naming what is missing, when a header
 * or gcc is not there.
 */
export function generate({ includeDir = '/usr/include', gcc = 'gcc' } = {}) {
  const files = headerFiles(includeDir);
  const missing = Object.values(files)
    .flat()
    .filter((f) => !existsSync(f));
  if (missing.length > 0)
    throw new Error(
      `kernel headers not found: ${missing.join(', ')} (Debian's linux-libc-dev installs them: apt-get install linux-libc-dev)`,
    );
  const tables = {};
  for (const [arch, archFiles] of Object.entries(files)) {
    const macros = defines(arch, archFiles, gcc);
    const table = {};
    for (const name of [...macros.keys()]
      .filter((n) => n.startsWith('__NR_') && !NOT_SYSCALLS.has(n))
      .sort()) {
      const nr = evaluate(name, macros);
      if (!Number.isInteger(nr) || nr < 0 || nr > 0xffffffff) throw new Error(`${arch} ${name} = ${nr}`);
      table[name.slice('__NR_'.length)] = nr;
    }
    if (Object.keys(table).length < 250)
      throw new Error(`${arch}: only ${Object.keys(table).length} syscalls found in ${archFiles.join(', ')}`);
    tables[arch] = table;
  }
  return { tables, files, headersVersion: headersVersion() };
}

function headersVersion() {
  const run = spawnSync('dpkg-query', ['-W', `-f=\${Version}`, 'linux-libc-dev'], { encoding: 'utf8' });
  return run.status === 0 && run.stdout ? run.stdout.trim() : undefined;
}

/** The text of syscalls.generated.ts for generate()'s result. */
export function render({ tables, files, headersVersion }) {
  const lines = [
    '// Generated by packages/runtime/scripts/gen-syscalls.mjs: do not edit by hand.',
    '//   node packages/runtime/scripts/gen-syscalls.mjs',
    `// From the kernel UAPI headers of linux-libc-dev ${headersVersion ?? '(version unknown: dpkg-query found no package)'}:`,
  ];
  for (const [arch, archFiles] of Object.entries(files)) lines.push(`//   ${arch}: ${archFiles.join(', ')}`);
  lines.push(
    '// aarch64 is asm-generic/unistd.h with the __ARCH_WANT_* switches of arm64 (see the script).',
    '// x32 numbers include __X32_SYSCALL_BIT (0x40000000), as the header has them.',
    '',
    '/** Syscall numbers by name for each architecture, as the kernel headers define them. */',
    'export const GENERATED_SYSCALLS = {',
  );
  for (const [arch, table] of Object.entries(tables)) {
    lines.push(`  ${arch}: {`);
    for (const [name, nr] of Object.entries(table))
      lines.push(`    ${name}: ${arch === 'x32' ? `0x${nr.toString(16)}` : nr},`);
    lines.push('  },');
  }
  lines.push('} as const;', '');
  return lines.join('\n');
}

export const OUTPUT = join(dirname(fileURLToPath(import.meta.url)), '../src/seccomp/syscalls.generated.ts');

function main() {
  const text = render(generate());
  if (process.argv.includes('--check')) {
    const current = existsSync(OUTPUT) ? readFileSync(OUTPUT, 'utf8') : '';
    if (current !== text) {
      process.stderr.write(`${OUTPUT} is out of date: run node packages/runtime/scripts/gen-syscalls.mjs\n`);
      process.exit(1);
    }
    process.stdout.write(`${OUTPUT} is up to date\n`);
    return;
  }
  writeFileSync(OUTPUT, text);
  process.stdout.write(`wrote ${OUTPUT}\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) main();
