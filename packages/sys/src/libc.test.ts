import { readFileSync, realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { libc, loadNativeModule } from './libc.js';

const require = createRequire(import.meta.url);
const koffiDir = realpathSync.native(join(require.resolve('koffi'), '..'));
const koffiVersion = (JSON.parse(readFileSync(join(koffiDir, 'package.json'), 'utf8')) as { version: string })
  .version;

describe('koffi', () => {
  it("is loaded by its glibc native module directly on this machine, koffi's own version", () => {
    const native = loadNativeModule();
    expect(native).toBeDefined();
    expect(native!.version).toBe(koffiVersion);
    // The same API as koffi's entry gives: what libc() uses.
    for (const name of ['load', 'proto', 'errno', 'decode', 'address', 'alloc', 'free', 'register'] as const)
      expect(typeof native![name]).toBe('function');
  });

  it('makes calls through it', () => {
    const fds = [0, 0];
    expect(libc().pipe2(fds, 0o2000000)).toBe(0);
    expect(libc().close(fds[0]!)).toBe(0);
    expect(libc().close(fds[1]!)).toBe(0);
    expect(libc().close(fds[1]!)).toBe(-1);
    expect(libc().koffi.errno()).toBe(9); // EBADF
  });
});
