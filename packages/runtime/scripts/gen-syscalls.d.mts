// Types of gen-syscalls.mjs, for the test that runs it.

export type Tables = Record<'x86_64' | 'x86' | 'x32' | 'aarch64', Record<string, number>>;

export interface Generated {
  tables: Tables;
  files: Record<keyof Tables, string[]>;
  headersVersion: string | undefined;
}

export const ARM64_WANTS: string[];
export const OUTPUT: string;
export function headerFiles(includeDir?: string): Record<keyof Tables, string[]>;
export function generate(options?: { includeDir?: string; gcc?: string }): Generated;
export function render(generated: Generated): string;
