/**
 * The runc-compatible binary (`box-runtime`) for tests: a state root and a bundle of their own
 * (config.json from `box-runtime spec`, a busybox rootfs), and the check that nothing is left.
 */
import { type SpawnSyncOptions, spawnSync } from 'node:child_process';
import {
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from './box.js';

export const runtimeBin = join(repoRoot, 'apps/cli/dist/runtime/box-runtime.js');

// biome-ignore lint/suspicious/noExplicitAny: tests edit a config.json freely
export type Config = Record<string, any>;

export interface RuntimeResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A bundle in a fresh temp dir: busybox as /bin/*, config.json made by `box-runtime spec`. */
export function makeBundle(edit: (config: Config) => void = () => undefined): string {
  const dir = mkdtempSync(join(tmpdir(), 'box-e2e-bundle-'));
  const rootfs = join(dir, 'rootfs');
  for (const sub of ['bin', 'proc', 'dev', 'sys', 'tmp', 'etc'])
    mkdirSync(join(rootfs, sub), { recursive: true });
  copyFileSync('/bin/busybox', join(rootfs, 'bin/busybox'));
  for (const applet of ['sh', 'sleep', 'true', 'echo', 'cat', 'ls', 'tty', 'grep', 'readlink'])
    symlinkSync('busybox', join(rootfs, 'bin', applet));
  const spec = spawnSync(process.execPath, [runtimeBin, 'spec', '--bundle', dir], { encoding: 'utf8' });
  if (spec.status !== 0) throw new Error(`box-runtime spec failed: ${spec.stderr}`);
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  config.process.terminal = false;
  config.root.readonly = false;
  edit(config);
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  return dir;
}

/**
 * Runs box-runtime. A container that `create` or `run -d` leaves running keeps the stdio it was
 * given (as under runc): those commands get /dev/null and a file for stderr, never a pipe that
 * spawnSync would wait on until the container ends.
 */
export function runtime(root: string, args: string[], options: SpawnSyncOptions = {}): RuntimeResult {
  const leaves =
    args.includes('create') || (args.includes('run') && (args.includes('-d') || args.includes('--detach')));
  if (!leaves || options.stdio) {
    const r = spawnSync(process.execPath, [runtimeBin, '--root', root, ...args], {
      encoding: 'utf8',
      timeout: 20_000,
      ...options,
    });
    return { code: r.status, stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? '') };
  }
  const errPath = join(tmpdir(), `box-e2e-runtime-stderr-${process.pid}`);
  const err = openSync(errPath, 'w+');
  try {
    const r = spawnSync(process.execPath, [runtimeBin, '--root', root, ...args], {
      timeout: 20_000,
      ...options,
      stdio: ['ignore', 'ignore', err],
    });
    return { code: r.status, stdout: '', stderr: readFileSync(errPath, 'utf8') };
  } finally {
    closeSync(err);
    rmSync(errPath, { force: true });
  }
}

/** What a state root still holds, and the cgroups of its containers (box-runtime/<id>). */
export function runtimeLeftovers(root: string): string[] {
  const found: string[] = [];
  if (existsSync(root)) for (const id of readdirSync(root)) found.push(`state ${id}`);
  for (const hierarchy of readdirSync('/sys/fs/cgroup')) {
    const dir = join('/sys/fs/cgroup', hierarchy, 'box-runtime');
    if (existsSync(dir))
      for (const entry of readdirSync(dir, { withFileTypes: true }))
        if (entry.isDirectory()) found.push(`cgroup ${hierarchy}/box-runtime/${entry.name}`);
  }
  return found;
}

export function removeBundle(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
