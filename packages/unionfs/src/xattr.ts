/**
 * Extended attributes and whiteout device nodes. Node.js has neither setxattr(2)/getxattr(2)/
 * listxattr(2) nor mknod(2), and only @box/sys may talk to libc, so this module uses the
 * @box/sys bindings `lgetxattr`, `llistxattr`, `lsetxattr` and `mknod` when that package exports
 * them, and otherwise (TEMPORARY FALLBACK, remove once @box/sys ships the bindings) runs
 * `getfattr`/`setfattr` from Debian's `attr` package and `mknod` from coreutils.
 */
import { execFile, execFileSync } from 'node:child_process';
import * as sys from '@box/sys';
import { UnionfsError } from './errors.js';

export type Xattr = [name: string, value: Buffer];

interface SysXattrBindings {
  lgetxattr(path: string, name: string): Buffer | null;
  llistxattr(path: string): string[];
  lsetxattr(path: string, name: string, value: Buffer | string): void;
  mknod(path: string, mode: number, major?: number, minor?: number): void;
}

/** How xattrs and whiteouts are made: through @box/sys, or (fallback) through command-line tools. */
export interface XattrBackend {
  readonly kind: 'sys' | 'tools';
  get(path: string, name: string): Buffer | null;
  /** Every attribute of the file (not following a final symlink), sorted by name. */
  list(path: string): Xattr[];
  set(path: string, name: string, value: Buffer | string): void;
  /** Creates a 0/0 character device, overlayfs's whiteout. */
  mknodWhiteout(path: string): void;
  /** Creates a device node or fifo; `mode` holds the file type (S_IFCHR, S_IFBLK, S_IFIFO). */
  mknod(path: string, mode: number, major: number, minor: number): void;
}

const S_IFMT = 0o170000;
const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;
const S_IFIFO = 0o010000;

function sysBindings(): SysXattrBindings | undefined {
  const s = sys as unknown as Partial<SysXattrBindings>;
  if (
    typeof s.lgetxattr === 'function' &&
    typeof s.llistxattr === 'function' &&
    typeof s.lsetxattr === 'function' &&
    typeof s.mknod === 'function'
  ) {
    return s as SysXattrBindings;
  }
  return undefined;
}

function sysBackend(b: SysXattrBindings): XattrBackend {
  return {
    kind: 'sys',
    get: (path, name) => b.lgetxattr(path, name),
    list(path) {
      const names = b.llistxattr(path);
      if (names.length === 0) return [];
      const out: Xattr[] = [];
      for (const name of names.sort()) {
        const value = b.lgetxattr(path, name);
        if (value !== null) out.push([name, value]);
      }
      return out;
    },
    set: (path, name, value) => b.lsetxattr(path, name, value),
    mknodWhiteout: (path) => b.mknod(path, S_IFCHR | 0o000, 0, 0),
    mknod: (path, mode, major, minor) => b.mknod(path, mode, major, minor),
  };
}

function runTool(tool: string, args: string[]): Buffer {
  try {
    return execFileSync(tool, args, { stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
  } catch (error) {
    throw toolError(tool, args, error);
  }
}

function toolError(tool: string, args: string[], error: unknown): UnionfsError {
  const e = error as { code?: string; stderr?: Buffer | string };
  const path = args[args.length - 1];
  if (e.code === 'ENOENT') {
    const pkg = tool === 'mknod' ? 'coreutils' : 'attr';
    return new UnionfsError(
      'EUNIONFSTOOL',
      `${tool} is not installed (Debian package "${pkg}"); @box/unionfs needs it until @box/sys binds ${tool === 'mknod' ? 'mknod(2)' : 'the xattr calls'}`,
      { path, cause: error },
    );
  }
  const stderr = String(e.stderr ?? '').trim();
  return new UnionfsError('EUNIONFSTOOL', `${tool} ${args.join(' ')} failed: ${stderr || String(error)}`, {
    path,
    cause: error,
  });
}

/** Undoes getfattr's quoting of file names: octal `\ooo` escapes (a backslash is `\134`). */
export function unquoteGetfattr(text: string): string {
  if (!text.includes('\\')) return text;
  const bytes: number[] = [];
  const raw = Buffer.from(text, 'utf8');
  for (let i = 0; i < raw.length; i++) {
    if (raw[i] === 0x5c && /^[0-7]{3}$/.test(raw.subarray(i + 1, i + 4).toString('latin1'))) {
      bytes.push(Number.parseInt(raw.subarray(i + 1, i + 4).toString('latin1'), 8));
      i += 3;
    } else {
      bytes.push(raw[i]!);
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/** Parses `getfattr -d -e hex --absolute-names` output into path → sorted attributes. */
export function parseGetfattrDump(text: string): Map<string, Xattr[]> {
  const result = new Map<string, Xattr[]>();
  let current: Xattr[] | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('# file: ')) {
      current = [];
      result.set(unquoteGetfattr(line.slice(8)), current);
      continue;
    }
    const eq = line.indexOf('=');
    if (current === undefined || line === '' || eq < 0) continue;
    const name = unquoteGetfattr(line.slice(0, eq));
    const value = line.slice(eq + 1);
    let buf: Buffer;
    if (value.startsWith('0x')) buf = Buffer.from(value.slice(2), 'hex');
    else if (value.startsWith('0s')) buf = Buffer.from(value.slice(2), 'base64');
    else buf = Buffer.from(value.replace(/^"|"$/g, ''), 'utf8');
    current.push([name, buf]);
  }
  for (const list of result.values()) list.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return result;
}

function isMissingAttribute(error: unknown): boolean {
  const stderr = String((error as { stderr?: unknown }).stderr ?? '');
  return /No such attribute|No data available/.test(stderr);
}

/** TEMPORARY FALLBACK: command-line tools instead of the missing @box/sys bindings. */
const toolsBackend: XattrBackend = {
  kind: 'tools',
  get(path, name) {
    try {
      return execFileSync('getfattr', ['-h', '--absolute-names', '--only-values', '-n', name, '--', path], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    } catch (error) {
      if (isMissingAttribute(error)) return null;
      throw toolError('getfattr', ['-n', name, path], error);
    }
  },
  list(path) {
    const out = runTool('getfattr', ['-h', '--absolute-names', '-d', '-m', '-', '-e', 'hex', '--', path]);
    return [...parseGetfattrDump(out.toString('utf8')).values()][0] ?? [];
  },
  set(path, name, value) {
    const hex = `0x${(typeof value === 'string' ? Buffer.from(value) : value).toString('hex')}`;
    runTool('setfattr', ['-h', '-n', name, '-v', hex, '--', path]);
  },
  mknodWhiteout(path) {
    runTool('mknod', ['-m', '000', '--', path, 'c', '0', '0']);
  },
  mknod(path, mode, major, minor) {
    const perm = (mode & 0o7777).toString(8);
    const type = mode & S_IFMT;
    if (type === S_IFIFO) runTool('mkfifo', ['-m', perm, '--', path]);
    else if (type === S_IFCHR || type === S_IFBLK) {
      runTool('mknod', ['-m', perm, '--', path, type === S_IFCHR ? 'c' : 'b', String(major), String(minor)]);
    } else
      throw new UnionfsError('EUNIONFSUNSUPPORTED', `mknod of file type 0o${type.toString(8)}`, { path });
  },
};

let forced: 'sys' | 'tools' | undefined;

/** The backend in use: @box/sys when it has the bindings, otherwise the tools. */
export function xattrBackend(): XattrBackend {
  const bindings = forced === 'tools' ? undefined : sysBindings();
  if (bindings) return sysBackend(bindings);
  if (forced === 'sys') {
    throw new UnionfsError('EUNIONFSUNSUPPORTED', '@box/sys does not export the xattr and mknod bindings');
  }
  return toolsBackend;
}

/** For tests: force one backend (`undefined` restores the automatic choice). */
export function forceXattrBackend(kind: 'sys' | 'tools' | undefined): void {
  forced = kind;
}

/**
 * Every attribute of every file under root in one `getfattr -R` run (the tools fallback's way of
 * reading a whole tree without one process per file). Keys are absolute paths.
 */
export function dumpTreeXattrs(root: string): Promise<Map<string, Xattr[]>> {
  // `root/`: a root that is a symlink (upper-view.ts's /proc/PID/fd/FD) is walked, not read as a
  // link; getfattr then names what is below it `root//name`.
  const args = ['-R', '-P', '-h', '--absolute-names', '-d', '-m', '-', '-e', 'hex', '--', `${root}/`];
  return new Promise((resolve, reject) => {
    execFile('getfattr', args, { maxBuffer: 1 << 30, encoding: 'utf8' }, (error, stdout) => {
      // A file that could not be read makes getfattr exit non-zero: never diff with attributes missing.
      if (error) {
        reject(toolError('getfattr', args, error));
        return;
      }
      const tree = new Map<string, Xattr[]>();
      for (const [path, xattrs] of parseGetfattrDump(stdout)) {
        const rel = path.slice(root.length).replace(/^\/+/, '');
        tree.set(rel === '' ? root : `${root}/${rel}`, xattrs);
      }
      resolve(tree);
    });
  });
}
