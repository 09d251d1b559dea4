/**
 * For tests on the real kernel: a throw-away rootfs made from the host's static busybox
 * (an applet symlink for each of its commands in /bin). Throws when the host has none:
 * the tests that need it must fail there, not pass without running.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';

/** An ELF executable without a PT_INTERP program header needs no dynamic loader. */
function isStaticElf(path: string): boolean {
  const elf = readFileSync(path);
  if (elf.toString('latin1', 1, 4) !== 'ELF') return false;
  const phoff = Number(elf.readBigUInt64LE(0x20));
  const phentsize = elf.readUInt16LE(0x36);
  const phnum = elf.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) if (elf.readUInt32LE(phoff + i * phentsize) === 3) return false;
  return true;
}

/** Makes `rootfs` (a new directory) a busybox root: /bin with the applets, and empty system dirs. */
export function makeBusyboxRootfs(rootfs: string): void {
  const busybox = ['/bin/busybox', '/usr/bin/busybox'].find((path) => existsSync(path) && isStaticElf(path));
  if (!busybox) throw new Error('these tests need a static busybox at /bin/busybox (scripts/setup.sh)');
  for (const dir of ['bin', 'dev', 'etc', 'proc', 'sys', 'tmp', 'root'])
    mkdirSync(join(rootfs, dir), { recursive: true });
  copyFileSync(busybox, join(rootfs, 'bin/busybox'));
  chmodSync(join(rootfs, 'bin/busybox'), 0o755);
  const applets = execFileSync(busybox, ['--list'], { encoding: 'utf8' }).split('\n').filter(Boolean);
  for (const applet of applets) if (applet !== 'busybox') symlinkSync('busybox', join(rootfs, 'bin', applet));
}
