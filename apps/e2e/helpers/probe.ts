/**
 * An image with busybox and the probe (fixtures/probe.c, built here with gcc -static): what
 * tests run to see, from inside a container, which system calls the kernel lets through.
 * /probe-suid is a setuid-root copy, for no-new-privileges.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { boxOk, repoRoot } from './box.js';

export const PROBE_IMAGE = 'probe:latest';

/** Imports the probe image into the BOX_ROOT `root`; returns what removes the build dir. */
export function importProbeImage(root: string): () => void {
  const dir = mkdtempSync(join(tmpdir(), 'box-e2e-probe-'));
  const rootfs = join(dir, 'rootfs');
  for (const sub of ['bin', 'etc', 'tmp']) mkdirSync(join(rootfs, sub), { recursive: true });
  chmodSync(join(rootfs, 'tmp'), 0o1777);
  copyFileSync('/bin/busybox', join(rootfs, 'bin/busybox'));
  for (const applet of [
    'sh',
    'cat',
    'grep',
    'mkdir',
    'ls',
    'mount',
    'unshare',
    'sleep',
    'ps',
    'id',
    'su',
    'echo',
    'true',
  ])
    symlinkSync('busybox', join(rootfs, 'bin', applet));
  writeFileSync(
    join(rootfs, 'etc/passwd'),
    'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n',
  );
  writeFileSync(join(rootfs, 'etc/group'), 'root:x:0:\naudio:x:29:\nnogroup:x:65534:\n');
  const cc = spawnSync(
    'gcc',
    ['-static', '-O2', '-o', join(rootfs, 'probe'), join(repoRoot, 'apps/e2e/fixtures/probe.c')],
    {
      encoding: 'utf8',
    },
  );
  if (cc.status !== 0)
    throw new Error(`building the probe failed (gcc and libc6-dev are needed): ${cc.stderr}`);
  copyFileSync(join(rootfs, 'probe'), join(rootfs, 'probe-suid'));
  chmodSync(join(rootfs, 'probe-suid'), 0o4755);
  const tar = spawnSync('tar', ['-C', rootfs, '-cf', join(dir, 'image.tar'), '.'], { encoding: 'utf8' });
  if (tar.status !== 0) throw new Error(`tar failed: ${tar.stderr}`);
  boxOk(root, ['import', join(dir, 'image.tar'), PROBE_IMAGE]);
  return () => rmSync(dir, { recursive: true, force: true });
}
