import {
  accessSync,
  closeSync,
  constants,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { CgroupError, errnoOf } from './errors.js';

/**
 * The file operations a cgroup manager needs. The real one is {@link nodeCgroupFs}; tests pass the
 * fake from `@box/cgroups/testing`, which also does what the kernel does on mkdir/rmdir/write.
 * Errors are Node.js system errors (with `code`); the helpers below wrap them in CgroupError.
 */
export interface CgroupFs {
  /** Creates one directory (not recursive); rejects with EEXIST if it is there. */
  mkdir(path: string): Promise<void>;
  /** Removes one cgroup directory. */
  rmdir(path: string): Promise<void>;
  readFile(path: string): Promise<string>;
  /** Writes with a single write(2) to an existing file (O_WRONLY|O_TRUNC, never O_CREAT). */
  writeFile(path: string, data: string): Promise<void>;
  exists(path: string): Promise<boolean>;
  /** Names of the subdirectories (child cgroups) of a directory. */
  listDirs(path: string): Promise<string[]>;
  /**
   * Loads a cgroup v2 device program (BPF instructions) and attaches it to the cgroup `dir`.
   * Absent where that cannot be done.
   */
  attachDeviceProgram?(dir: string, program: Buffer): Promise<void>;
}

const BPF_PROG_LOAD = 5;
const BPF_PROG_ATTACH = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE = 15;
const BPF_CGROUP_DEVICE = 6;
const BPF_F_ALLOW_MULTI = 2;
const LICENSE = Buffer.from('Apache-2.0\0');

/** bpf(BPF_PROG_LOAD) of a cgroup device program, then bpf(BPF_PROG_ATTACH) to the cgroup's directory. */
async function attachDeviceProgram(dir: string, program: Buffer): Promise<void> {
  // @box/sys (koffi's native module) only here: reading or removing cgroups makes no such call.
  const { addressOf, bpf } = await import('@box/sys');
  const load = Buffer.alloc(128);
  load.writeUInt32LE(BPF_PROG_TYPE_CGROUP_DEVICE, 0);
  load.writeUInt32LE(program.length / 8, 4);
  load.writeBigUInt64LE(addressOf(program), 8);
  load.writeBigUInt64LE(addressOf(LICENSE), 16);
  load.writeUInt32LE(BPF_CGROUP_DEVICE, 68); // expected_attach_type
  const prog = bpf(BPF_PROG_LOAD, load, 'BPF_PROG_LOAD (cgroup device program)');
  try {
    const cgroup = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
    try {
      const attach = Buffer.alloc(32);
      attach.writeUInt32LE(cgroup, 0);
      attach.writeUInt32LE(prog, 4);
      attach.writeUInt32LE(BPF_CGROUP_DEVICE, 8);
      attach.writeUInt32LE(BPF_F_ALLOW_MULTI, 12);
      bpf(BPF_PROG_ATTACH, attach, `BPF_PROG_ATTACH to ${dir}`);
    } finally {
      closeSync(cgroup);
    }
  } finally {
    // The attached program stays with the cgroup; this fd is no longer needed.
    closeSync(prog);
  }
}

/**
 * The real file operations. cgroupfs lives in kernel memory and never waits on a disk, so
 * synchronous calls are used: they skip libuv's thread pool, whose round trips made up most of
 * the time of creating a container's cgroups (dozens of small files).
 */
export const nodeCgroupFs: CgroupFs = {
  async mkdir(path) {
    mkdirSync(path, { mode: 0o755 });
  },
  async rmdir(path) {
    rmdirSync(path);
  },
  async readFile(path) {
    return readFileSync(path, 'utf8');
  },
  async writeFile(path, data) {
    // cgroupfs files cannot be created, and some are write-only: O_RDWR would fail with EACCES.
    const fd = openSync(path, constants.O_WRONLY | constants.O_TRUNC);
    try {
      writeSync(fd, data);
    } finally {
      closeSync(fd);
    }
  },
  async exists(path) {
    try {
      accessSync(path);
      return true;
    } catch (error) {
      if (errnoOf(error) === 'ENOENT') return false;
      throw error;
    }
  },
  async listDirs(path) {
    const entries = readdirSync(path, { withFileTypes: true });
    return entries.filter((entry) => entry.isDirectory()).map((entry) => entry.name);
  },
  async attachDeviceProgram(dir, program) {
    await attachDeviceProgram(dir, program);
  },
};

/** Wraps a failed file operation in a CgroupError that names the path. */
export function ioError(op: string, path: string, cause: unknown, controller?: string): CgroupError {
  const errno = errnoOf(cause);
  const reason = cause instanceof Error ? cause.message : String(cause);
  return new CgroupError('ECGROUPIO', `${op} ${path}: ${reason}`, { path, errno, controller, cause });
}

/** Reads a cgroup file, without the trailing newline. */
export async function readCgroupFile(fs: CgroupFs, dir: string, file: string): Promise<string> {
  const path = join(dir, file);
  try {
    return (await fs.readFile(path)).trimEnd();
  } catch (error) {
    throw ioError('read', path, error);
  }
}

/** Writes one value to a cgroup file, as the kernel parses it. */
export async function writeCgroupFile(
  fs: CgroupFs,
  dir: string,
  file: string,
  value: string | number,
): Promise<void> {
  const path = join(dir, file);
  const data = String(value);
  try {
    await fs.writeFile(path, data);
  } catch (error) {
    throw ioError(`write ${JSON.stringify(data)} to`, path, error);
  }
}

export async function hasCgroupFile(fs: CgroupFs, dir: string, file: string): Promise<boolean> {
  const path = join(dir, file);
  try {
    return await fs.exists(path);
  } catch (error) {
    throw ioError('stat', path, error);
  }
}

export async function listChildCgroups(fs: CgroupFs, dir: string): Promise<string[]> {
  try {
    return await fs.listDirs(dir);
  } catch (error) {
    throw ioError('list', dir, error);
  }
}
