import * as fsp from 'node:fs/promises';
import { constants } from 'node:os';
import { join, sep } from 'node:path';

/** One hierarchy of the fake tree. */
export interface FakeHierarchy {
  version: 1 | 2;
  /** Its directory (the "mount point"). */
  root: string;
  /** v1: its controllers. v2: the controllers the root offers. */
  controllers: readonly string[];
}

/** What the fake machine has, shared by the file tables and the kernel emulation. */
export interface FakeMachine {
  hierarchies: readonly FakeHierarchy[];
  cpus: string;
  mems: string;
  swapAccounting: boolean;
  blkioWeightFile: 'blkio.weight' | 'blkio.bfq.weight' | null;
  cgroupKill: boolean;
  /** The uid the fake answers to as an ordinary user: only what it owns is writable. */
  uid?: number;
}

/** A Node.js-style system error, as the kernel would answer. */
export function sysError(code: keyof typeof constants.errno, syscall: string, path: string): Error {
  return Object.assign(new Error(`${code}: fake cgroupfs, ${syscall} '${path}'`), {
    code,
    errno: -constants.errno[code],
    syscall,
    path,
  });
}

export function hierarchyOf(machine: FakeMachine, path: string): FakeHierarchy {
  const found = machine.hierarchies.find((h) => path === h.root || path.startsWith(h.root + sep));
  if (!found) throw sysError('ENOENT', 'open', path);
  return found;
}

export const words = (text: string): string[] => text.split(/\s+/).filter(Boolean);

export async function readText(path: string): Promise<string> {
  return (await fsp.readFile(path, 'utf8')).trimEnd();
}

/** Stores a file's content the way cgroupfs shows it: one trailing newline unless empty. */
export async function setText(path: string, content: string): Promise<void> {
  await fsp.writeFile(path, content === '' ? '' : `${content}\n`);
}

export async function childDirs(dir: string): Promise<string[]> {
  const entries = await fsp.readdir(dir, { withFileTypes: true });
  return entries.filter((entry) => entry.isDirectory()).map((entry) => join(dir, entry.name));
}

/** A directory and all directories below it. */
export async function allDirs(dir: string): Promise<string[]> {
  const result = [dir];
  for (const child of await childDirs(dir)) result.push(...(await allDirs(child)));
  return result;
}

/** Writes control files; with `keep`, files that exist are left as they are. */
export async function populate(dir: string, files: Record<string, string>, keep = false): Promise<void> {
  for (const [name, content] of Object.entries(files)) {
    const data = content === '' ? '' : `${content}\n`;
    try {
      await fsp.writeFile(join(dir, name), data, { flag: keep ? 'wx' : 'w' });
    } catch (error) {
      if (!keep || (error as { code?: string }).code !== 'EEXIST') throw error;
    }
  }
}
