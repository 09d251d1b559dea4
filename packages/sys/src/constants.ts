/** Namespace flags for clone(2), unshare(2) and setns(2). */
export const CLONE_NEWNS = 0x00020000;
export const CLONE_NEWCGROUP = 0x02000000;
export const CLONE_NEWUTS = 0x04000000;
export const CLONE_NEWIPC = 0x08000000;
export const CLONE_NEWUSER = 0x10000000;
export const CLONE_NEWPID = 0x20000000;
export const CLONE_NEWNET = 0x40000000;
export const CLONE_FS = 0x00000200;

/** mount(2) flags. */
export const MS = {
  RDONLY: 0x1,
  NOSUID: 0x2,
  NODEV: 0x4,
  NOEXEC: 0x8,
  SYNCHRONOUS: 0x10,
  REMOUNT: 0x20,
  MANDLOCK: 0x40,
  DIRSYNC: 0x80,
  NOSYMFOLLOW: 0x100,
  NOATIME: 0x400,
  NODIRATIME: 0x800,
  BIND: 0x1000,
  MOVE: 0x2000,
  REC: 0x4000,
  SILENT: 0x8000,
  UNBINDABLE: 0x20000,
  PRIVATE: 0x40000,
  SLAVE: 0x80000,
  SHARED: 0x100000,
  RELATIME: 0x200000,
  STRICTATIME: 0x1000000,
} as const;

/** Renders mount flags as `MS_BIND|MS_REC` for error messages. */
export function mountFlagsToString(flags: number): string {
  const names = Object.entries(MS)
    .filter(([, bit]) => (flags & bit) !== 0)
    .map(([name]) => `MS_${name}`);
  return names.length > 0 ? names.join('|') : '0';
}

export const MNT_DETACH = 0x2;

export const O_RDONLY = 0o0;
export const O_WRONLY = 0o1;
export const O_RDWR = 0o2;
export const O_CREAT = 0o100;
export const O_NOCTTY = 0o400;
export const O_NONBLOCK = 0o4000;
export const O_DIRECTORY = 0o200000;
export const O_NOFOLLOW = 0o400000;
export const O_CLOEXEC = 0o2000000;
export const O_PATH = 0o10000000;
export const AT_FDCWD = -100;
export const AT_EMPTY_PATH = 0x1000;

export const S_IFCHR = 0o020000;

export const F_SETFD = 2;
export const F_DUPFD_CLOEXEC = 1030;

export const WNOHANG = 1;

export const PR_SET_PDEATHSIG = 1;
export const PR_GET_DUMPABLE = 3;
export const PR_SET_DUMPABLE = 4;
export const PR_SET_KEEPCAPS = 8;
export const PR_CAP_AMBIENT = 47;
export const PR_CAP_AMBIENT_RAISE = 2;
export const PR_CAP_AMBIENT_CLEAR_ALL = 4;
/** seccomp(2) operations. */
export const SECCOMP_SET_MODE_FILTER = 1;
export const PR_CAPBSET_DROP = 24;
export const PR_SET_NO_NEW_PRIVS = 38;

export const TIOCSCTTY = 0x540e;
export const TIOCGWINSZ = 0x5413;
export const TIOCSWINSZ = 0x5414;
export const TIOCSPTLCK = 0x40045431;
export const TIOCGPTPEER = 0x5441;
export const SIOCSIFFLAGS = 0x8914;

export const AF_UNIX = 1;
export const AF_INET = 2;
export const AF_NETLINK = 16;
export const SOCK_STREAM = 1;
export const SOCK_DGRAM = 2;
export const SOCK_RAW = 3;
export const SOCK_CLOEXEC = 0o2000000;
export const SOL_SOCKET = 1;
export const SOL_NETLINK = 270;
export const SO_SNDBUF = 7;
export const SO_RCVBUF = 8;
/** A `struct timeval` (16 bytes on x86_64): how long a blocking receive may wait before EAGAIN. */
export const SO_RCVTIMEO = 20;
export const SCM_RIGHTS = 1;
/** netlink(7) protocol of the routing family (links, addresses, routes). */
export const NETLINK_ROUTE = 0;
export const MSG_PEEK = 0x2;
/** On receive: return a datagram's full length even when the buffer was shorter. */
export const MSG_TRUNC = 0x20;
export const MSG_DONTWAIT = 0x40;
export const MSG_CMSG_CLOEXEC = 0x40000000;

/** x86_64 system call numbers used by child start-up programs. */
export const SYS = {
  read: 0,
  write: 1,
  close: 3,
  lseek: 8,
  ioctl: 16,
  rt_sigaction: 13,
  rt_sigprocmask: 14,
  sendfile: 40,
  socket: 41,
  sendmsg: 46,
  execve: 59,
  fcntl: 72,
  ftruncate: 77,
  chdir: 80,
  fchdir: 81,
  mkdir: 83,
  symlink: 88,
  chmod: 90,
  fchmod: 91,
  chown: 92,
  fchown: 93,
  lchown: 94,
  umask: 95,
  setsid: 112,
  setgroups: 116,
  setresuid: 117,
  setresgid: 119,
  capset: 126,
  mknod: 133,
  personality: 135,
  pivot_root: 155,
  prctl: 157,
  chroot: 161,
  mount: 165,
  umount2: 166,
  sethostname: 170,
  setdomainname: 171,
  openat: 257,
  mkdirat: 258,
  mknodat: 259,
  fchownat: 260,
  linkat: 265,
  symlinkat: 266,
  fchmodat: 268,
  unshare: 272,
  utimensat: 280,
  dup3: 292,
  setns: 308,
  prlimit64: 302,
  seccomp: 317,
  execveat: 322,
  open_tree: 428,
  move_mount: 429,
  fsopen: 430,
  fsconfig: 431,
  fsmount: 432,
  close_range: 436,
  openat2: 437,
  mount_setattr: 442,
} as const;

export type SyscallName = keyof typeof SYS;
