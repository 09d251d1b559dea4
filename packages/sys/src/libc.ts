/**
 * The only module that loads koffi. koffi and libc are loaded on first use, so importing any
 * @box package has no side effects and costs nothing: commands that make no system call (ps,
 * images) never load koffi's native module (about 20 ms of a CLI's start-up).
 */
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

type Koffi = typeof import('koffi');

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
 * koffi's glibc build for this machine, found as Node would find the packages (node_modules of
 * this file's directory and its parents, then the platform package from koffi's real
 * directory), and loaded when its version is koffi's. undefined, so that koffi's entry decides,
 * on anything else: musl (its loader is there), another layout, a version mismatch.
 */
export function loadNativeModule(): Koffi | undefined {
  const arch = process.arch;
  if (process.platform !== 'linux' || (arch !== 'x64' && arch !== 'arm64')) return undefined;
  if (existsSync(`/lib/ld-musl-${arch === 'x64' ? 'x86_64' : 'aarch64'}.so.1`)) return undefined;
  try {
    const koffiDir = findUp(dirname(fileURLToPath(import.meta.url)), 'koffi/package.json');
    if (!koffiDir) return undefined;
    const real = realpathSync.native(koffiDir);
    const { version } = JSON.parse(readFileSync(join(real, 'package.json'), 'utf8')) as { version: string };
    const platformDir = findUp(real, `@koromix/koffi-linux-${arch}/package.json`);
    if (!platformDir) return undefined;
    const file = join(platformDir, `linux_${arch}`, 'koffi.node');
    if (!existsSync(file)) return undefined;
    const module = { exports: {} as Koffi };
    process.dlopen(module, realpathSync.native(file));
    return module.exports.version === version ? module.exports : undefined;
  } catch {
    return undefined;
  }
}

/** The directory of `node_modules/<path>`'s parent package nearest `from`, as Node's resolver walks. */
function findUp(from: string, path: string): string | undefined {
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', path);
    if (existsSync(candidate)) return dirname(candidate);
    if (dirname(dir) === dir) return undefined;
  }
}

function declare() {
  const koffi = loadKoffi();
  const lib = koffi.load('libc.so.6');
  return {
    koffi,
    mmap: lib.func('void *mmap(void *addr, size_t len, int prot, int flags, int fd, long off)'),
    munmap: lib.func('int munmap(void *addr, size_t len)'),
    mprotect: lib.func('int mprotect(void *addr, size_t len, int prot)'),
    memcpy: lib.func('void *memcpy(void *dst, const void *src, size_t n)'),
    pipe2: lib.func('int pipe2(_Out_ int *fds, int flags)'),
    socketpair: lib.func('int socketpair(int domain, int type, int protocol, _Out_ int *fds)'),
    socket: lib.func('int socket(int domain, int type, int protocol)'),
    connect: lib.func('int connect(int fd, const void *addr, unsigned int len)'),
    bind: lib.func('int bind(int fd, const void *addr, unsigned int len)'),
    setsockopt: lib.func('int setsockopt(int fd, int level, int name, const void *value, unsigned int len)'),
    send: lib.func('long send(int fd, const void *buf, size_t len, int flags)'),
    recvfrom: lib.func(
      'long recvfrom(int fd, void *buf, size_t len, int flags, void *addr, _Inout_ unsigned int *addrlen)',
    ),
    close: lib.func('int close(int fd)'),
    dupfd: lib.func('int fcntl(int fd, int cmd, int arg)'),
    waitpid: lib.func('int waitpid(int pid, _Out_ int *status, int options)'),
    kill: lib.func('int kill(int pid, int sig)'),
    mount: lib.func(
      'int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const char *data)',
    ),
    umount2: lib.func('int umount2(const char *target, int flags)'),
    unshare: lib.func('int unshare(int flags)'),
    setns: lib.func('int setns(int fd, int nstype)'),
    ioctlPtr: lib.func('int ioctl(int fd, unsigned long req, void *arg)'),
    recvmsg: lib.func('long recvmsg(int fd, void *msg, int flags)'),
    syscall3: lib.func('long syscall(long nr, long a, long b, long c)'),
    isatty: lib.func('int isatty(int fd)'),
    flock: lib.func('int flock(int fd, int op)'),
    mknod: lib.func('int mknod(const char *path, unsigned int mode, unsigned long dev)'),
    lsetxattr: lib.func(
      'int lsetxattr(const char *path, const char *name, const void *value, size_t size, int flags)',
    ),
    lgetxattr: lib.func('long lgetxattr(const char *path, const char *name, _Out_ void *value, size_t size)'),
    fgetxattr: lib.func('long fgetxattr(int fd, const char *name, _Out_ void *value, size_t size)'),
    llistxattr: lib.func('long llistxattr(const char *path, _Out_ void *list, size_t size)'),
    // fd-relative file calls (at.ts)
    fstatfs: lib.func('int fstatfs(int fd, void *buf)'),
    syscall4: lib.func('long syscall(long nr, long a, long b, long c, long d)'),
    openat: lib.func('int openat(int dirfd, const char *path, int flags, ...)'),
    mkdirat: lib.func('int mkdirat(int dirfd, const char *path, unsigned int mode)'),
    symlinkat: lib.func('int symlinkat(const char *target, int dirfd, const char *path)'),
    readlinkat: lib.func('long readlinkat(int dirfd, const char *path, _Out_ void *buf, size_t size)'),
    fchownat: lib.func(
      'int fchownat(int dirfd, const char *path, unsigned int uid, unsigned int gid, int flags)',
    ),
    fchmodat: lib.func('int fchmodat(int dirfd, const char *path, unsigned int mode, int flags)'),
    utimensat: lib.func('int utimensat(int dirfd, const char *path, const void *times, int flags)'),
    futimens: lib.func('int futimens(int fd, const void *times)'),
    unlinkat: lib.func('int unlinkat(int dirfd, const char *path, int flags)'),
    mknodat: lib.func('int mknodat(int dirfd, const char *path, unsigned int mode, unsigned long dev)'),
    linkat: lib.func(
      'int linkat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, int flags)',
    ),
    // Called through .async (on a libuv pool thread) by wait-readable.ts.
    ppoll: lib.func('int ppoll(void *fds, unsigned long nfds, const void *timeout, const void *sigmask)'),
    eventfd: lib.func('int eventfd(unsigned int initval, int flags)'),
    spawnProto: koffi.proto('long box_spawn(void *program)'),
  };
}

let cached: ReturnType<typeof declare> | undefined;

/** The libc bindings, loaded on first use. */
export function libc(): ReturnType<typeof declare> {
  cached ??= declare();
  return cached;
}

/** errno of the last failed call on this thread; read it right after the call. */
export function lastErrno(): number {
  return libc().koffi.errno();
}
