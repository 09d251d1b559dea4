/**
 * The only module that loads koffi. koffi and libc are loaded on first use, so importing any
 * @box package has no side effects and costs nothing: commands that make no system call (ps,
 * images) never load koffi's native module (about 20 ms of a CLI's start-up).
 */
import { closeSync, existsSync, openSync, readFileSync, readSync, realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

type Koffi = typeof import('koffi');
type KoffiFunction = ReturnType<import('koffi').LibraryHandle['func']>;

export type Pointer = bigint;

/**
 * koffi, by its native module alone where that can be found directly, else through koffi's own
 * entry. Measured in a fresh process: `require.resolve('koffi')` (its package `exports` load
 * Node's ESM resolver) ~3.5 ms and koffi's entry ~8 ms (it looks for its platform package and
 * reads Node's ELF header to tell glibc from musl), against ~2.5 ms for the dlopen itself; every
 * box command that makes a system call pays it. The entry adds only deprecated aliases that box
 * never calls, so the native module is the same API.
 */
function loadKoffi(): Koffi {
  const native = loadNativeModule();
  if (native) return native;
  // koffi finds its native module relative to its own real directory (its __dirname), so it is
  // required by its real path. Node 20's module loader can hand it a symlinked one: its cached
  // realpath reads the stat buffer that the process's last fs.statSync filled, and a stat of a
  // FIFO or socket there (an OCI runtime's exec.fifo) makes it stop resolving links early.
  const require = createRequire(import.meta.url);
  return require(realpathSync.native(require.resolve('koffi'))) as Koffi;
}

/**
 * koffi's glibc build for this machine, or undefined so that koffi's entry decides (a musl Node,
 * another layout, a version mismatch). koffi is found as Node finds a package (node_modules of
 * this file's directory and its parents, never a node_modules inside another); its platform
 * package only next to koffi's real directory, in the same node_modules (where a package manager
 * installs it, and koffi's own entry looks first): a parent directory's copy, which a user who
 * can write there could have put, is never loaded. The versions are compared before the dlopen,
 * which runs the module's code.
 */
export function loadNativeModule(): Koffi | undefined {
  const arch = process.arch;
  if (process.platform !== 'linux' || (arch !== 'x64' && arch !== 'arm64')) return undefined;
  try {
    if (isMuslNode()) return undefined;
    // import.meta.dirname where Node has it (20.11+; box's CLI bundles define it as the chunk's
    // __dirname): a file URL made and parsed back cost 0.7 ms of a `box-runtime create`.
    const here = import.meta.dirname ?? dirname(fileURLToPath(import.meta.url));
    const koffiDir = findPackage(here, 'koffi');
    if (!koffiDir) return undefined;
    const real = realpathSync.native(koffiDir);
    const platformDir = join(dirname(real), '@koromix', `koffi-linux-${arch}`);
    const version = (dir: string) =>
      (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version?: string }).version;
    const expected = version(real);
    if (!expected || version(platformDir) !== expected) return undefined;
    const file = join(platformDir, `linux_${arch}`, 'koffi.node');
    if (!existsSync(file)) return undefined;
    const module = { exports: {} as Koffi };
    process.dlopen(module, realpathSync.native(file));
    return module.exports.version === expected ? module.exports : undefined;
  } catch {
    return undefined;
  }
}

/** `node_modules/<name>` nearest `from`, as Node's resolver walks (it skips node_modules/node_modules). */
function findPackage(from: string, name: string): string | undefined {
  for (let dir = from; ; dir = dirname(dir)) {
    if (basename(dir) !== 'node_modules') {
      const candidate = join(dir, 'node_modules', name);
      if (existsSync(join(candidate, 'package.json'))) return candidate;
    }
    if (dirname(dir) === dir) return undefined;
  }
}

/**
 * Whether this Node runs on musl: its ELF interpreter (PT_INTERP) names musl's loader, as koffi
 * itself decides. Where the file cannot be read as a 64-bit little-endian ELF, "yes", so that
 * koffi's entry decides.
 */
function isMuslNode(): boolean {
  const fd = openSync(process.execPath, 'r');
  try {
    const header = Buffer.alloc(64);
    if (readSync(fd, header, 0, 64, 0) !== 64 || header.readUInt32BE(0) !== 0x7f454c46) return true;
    if (header[4] !== 2 || header[5] !== 1) return true;
    const phoff = Number(header.readBigUInt64LE(32));
    const phentsize = header.readUInt16LE(54);
    const phnum = header.readUInt16LE(56);
    if (phentsize !== 56 || phnum > 64) return true;
    const table = Buffer.alloc(phentsize * phnum);
    if (readSync(fd, table, 0, table.length, phoff) !== table.length) return true;
    for (let at = 0; at < table.length; at += phentsize) {
      if (table.readUInt32LE(at) !== 3) continue; // PT_INTERP
      const size = Number(table.readBigUInt64LE(at + 32));
      if (size > 4096) return true;
      const interp = Buffer.alloc(size);
      readSync(fd, interp, 0, size, Number(table.readBigUInt64LE(at + 8)));
      return interp.toString('latin1').includes('musl');
    }
    return false; // static: no loader
  } finally {
    closeSync(fd);
  }
}

/**
 * The libc functions box calls, by the name it calls them. Each is bound (koffi parses the
 * prototype, looks the symbol up and makes a function) when first called: a process binds only
 * what it uses (`box-runtime create`: 13 of the 45), not all of them at its first system call.
 */
const PROTOTYPES = {
  mmap: 'void *mmap(void *addr, size_t len, int prot, int flags, int fd, long off)',
  munmap: 'int munmap(void *addr, size_t len)',
  mprotect: 'int mprotect(void *addr, size_t len, int prot)',
  memcpy: 'void *memcpy(void *dst, const void *src, size_t n)',
  pipe2: 'int pipe2(_Out_ int *fds, int flags)',
  socketpair: 'int socketpair(int domain, int type, int protocol, _Out_ int *fds)',
  socket: 'int socket(int domain, int type, int protocol)',
  connect: 'int connect(int fd, const void *addr, unsigned int len)',
  bind: 'int bind(int fd, const void *addr, unsigned int len)',
  setsockopt: 'int setsockopt(int fd, int level, int name, const void *value, unsigned int len)',
  send: 'long send(int fd, const void *buf, size_t len, int flags)',
  recvfrom:
    'long recvfrom(int fd, void *buf, size_t len, int flags, void *addr, _Inout_ unsigned int *addrlen)',
  close: 'int close(int fd)',
  dupfd: 'int fcntl(int fd, int cmd, int arg)',
  waitpid: 'int waitpid(int pid, _Out_ int *status, int options)',
  kill: 'int kill(int pid, int sig)',
  mount:
    'int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const char *data)',
  umount2: 'int umount2(const char *target, int flags)',
  unshare: 'int unshare(int flags)',
  setns: 'int setns(int fd, int nstype)',
  ioctlPtr: 'int ioctl(int fd, unsigned long req, void *arg)',
  recvmsg: 'long recvmsg(int fd, void *msg, int flags)',
  syscall3: 'long syscall(long nr, long a, long b, long c)',
  isatty: 'int isatty(int fd)',
  flock: 'int flock(int fd, int op)',
  mknod: 'int mknod(const char *path, unsigned int mode, unsigned long dev)',
  lsetxattr: 'int lsetxattr(const char *path, const char *name, const void *value, size_t size, int flags)',
  lgetxattr: 'long lgetxattr(const char *path, const char *name, _Out_ void *value, size_t size)',
  fgetxattr: 'long fgetxattr(int fd, const char *name, _Out_ void *value, size_t size)',
  llistxattr: 'long llistxattr(const char *path, _Out_ void *list, size_t size)',
  // fd-relative file calls (at.ts)
  fstatfs: 'int fstatfs(int fd, void *buf)',
  syscall4: 'long syscall(long nr, long a, long b, long c, long d)',
  syscall5: 'long syscall(long nr, long a, long b, long c, long d, long e)',
  openat: 'int openat(int dirfd, const char *path, int flags, ...)',
  mkdirat: 'int mkdirat(int dirfd, const char *path, unsigned int mode)',
  symlinkat: 'int symlinkat(const char *target, int dirfd, const char *path)',
  readlinkat: 'long readlinkat(int dirfd, const char *path, _Out_ void *buf, size_t size)',
  fchownat: 'int fchownat(int dirfd, const char *path, unsigned int uid, unsigned int gid, int flags)',
  fchmodat: 'int fchmodat(int dirfd, const char *path, unsigned int mode, int flags)',
  utimensat: 'int utimensat(int dirfd, const char *path, const void *times, int flags)',
  futimens: 'int futimens(int fd, const void *times)',
  unlinkat: 'int unlinkat(int dirfd, const char *path, int flags)',
  mknodat: 'int mknodat(int dirfd, const char *path, unsigned int mode, unsigned long dev)',
  linkat: 'int linkat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, int flags)',
  // Called through .async (on a libuv pool thread) by wait-readable.ts.
  ppoll: 'int ppoll(void *fds, unsigned long nfds, const void *timeout, const void *sigmask)',
  eventfd: 'int eventfd(unsigned int initval, int flags)',
} as const;

type Libc = { readonly [name in keyof typeof PROTOTYPES]: KoffiFunction } & {
  readonly koffi: Koffi;
  readonly spawnProto: ReturnType<Koffi['proto']>;
};

function declare(): Libc {
  const koffi = loadKoffi();
  const lib = koffi.load('libc.so.6');
  const bound: Record<string, unknown> = { koffi, spawnProto: koffi.proto('long box_spawn(void *program)') };
  for (const [name, prototype] of Object.entries(PROTOTYPES)) {
    Object.defineProperty(bound, name, {
      configurable: true,
      enumerable: true,
      get() {
        const fn = lib.func(prototype);
        Object.defineProperty(bound, name, { value: fn, enumerable: true });
        return fn;
      },
    });
  }
  return bound as Libc;
}

let cached: Libc | undefined;

/** The libc bindings, loaded on first use. */
export function libc(): Libc {
  cached ??= declare();
  return cached;
}

/** errno of the last failed call on this thread; read it right after the call. */
export function lastErrno(): number {
  return libc().koffi.errno();
}
