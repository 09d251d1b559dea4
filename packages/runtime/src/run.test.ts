import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { close, pipe } from '@box/sys';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CommandNotExecutableError, CommandNotFoundError, SpecError } from './errors.js';
import { type ContainerProcess, type StartOptions, startContainer } from './run.js';
import { defaultSpec, type Spec } from './spec.js';
import { makeBusyboxRootfs } from './testing/busybox-rootfs.js';

let top: string;
let rootfs: string;
let devnull: number;
const running: ContainerProcess[] = [];

beforeAll(() => {
  devnull = openSync('/dev/null', 'r');
  top = mkdtempSync(join(tmpdir(), 'box-runtime-test-'));
  chmodSync(top, 0o755); // container root in a user namespace must reach the rootfs
  rootfs = join(top, 'rootfs');
  // Throws without a static busybox: these tests fail there rather than pass unrun.
  makeBusyboxRootfs(rootfs);
  mkdirSync(join(rootfs, 'etc/data'));
});

afterAll(() => {
  closeSync(devnull);
  rmSync(top, { recursive: true, force: true });
});

afterEach(async () => {
  for (const proc of running.splice(0)) {
    proc.kill('SIGKILL');
    await proc.exited;
  }
});

function readAll(fd: number): string {
  const chunks: Buffer[] = [];
  const buf = Buffer.alloc(65536);
  for (;;) {
    const n = readSync(fd, buf);
    if (n === 0) break;
    chunks.push(Buffer.from(buf.subarray(0, n)));
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function runContainer(spec: Spec, options: Partial<StartOptions> = {}) {
  const [r, w] = pipe();
  try {
    let proc: ContainerProcess;
    try {
      proc = await startContainer({ spec, stdio: [devnull, w, w], ...options });
    } finally {
      close(w);
    }
    running.push(proc);
    const status = await proc.exited;
    return { out: readAll(r), status };
  } finally {
    close(r);
  }
}

const script = (text: string) => defaultSpec({ rootfs, args: ['sh', '-c', text] });

describe('startContainer', () => {
  it('runs the command in the rootfs as pid 1 with the spec hostname', async () => {
    const { out, status } = await runContainer(script('hostname; echo $$; id -u; pwd; ls /bin/busybox'));
    expect(status).toMatchObject({ exitCode: 0, signal: null });
    expect(out).toBe('box\n1\n0\n/\n/bin/busybox\n');
  });

  it('reports the exit code, and death by a signal from kill()', async () => {
    expect((await runContainer(script('exit 7'))).status).toMatchObject({ exitCode: 7, signal: null });
    const proc = await startContainer({
      spec: defaultSpec({ rootfs, args: ['sleep', '30'] }),
      stdio: [devnull, devnull, 2],
    });
    running.push(proc);
    proc.kill('SIGKILL');
    expect(await proc.exited).toMatchObject({ exitCode: null, signal: 9 });
  });

  it('passes argv, env and cwd through', async () => {
    const spec = defaultSpec({ rootfs, args: ['echo', 'hello', 'a  b'] });
    expect((await runContainer(spec)).out).toBe('hello a  b\n');
    const env = script('echo "$GREETING"; pwd');
    env.process!.env!.push('GREETING=hi there');
    env.process!.cwd = '/tmp';
    expect((await runContainer(env)).out).toBe('hi there\n/tmp\n');
  });

  it('makes a missing cwd in the rootfs, resolving a symlink in it inside the root', async () => {
    const outside = join(top, 'outside');
    symlinkSync(outside, join(rootfs, 'escape'));
    try {
      const spec = script('pwd; test -d /new/cwd && echo made');
      spec.process!.cwd = '/new/cwd';
      expect((await runContainer(spec)).out).toBe('/new/cwd\nmade\n');
      // /escape points at a host path: the directory is made at that path inside the root.
      const escaping = script(`test -d ${outside}/sub && echo inside`);
      escaping.process!.cwd = '/escape/sub';
      expect((await runContainer(escaping)).out).toBe('inside\n');
      expect(existsSync(outside)).toBe(false);
      expect(existsSync(join(rootfs, outside, 'sub'))).toBe(true);
    } finally {
      rmSync(join(rootfs, 'escape'));
      rmSync(join(rootfs, 'new'), { recursive: true });
      rmSync(join(rootfs, top), { recursive: true, force: true });
    }
  });

  it('sees only its own processes, /dev devices and a loopback interface', async () => {
    const { out } = await runContainer(
      script('ls /proc | grep -c "^[0-9]"; ls /dev | tr "\\n" " "; echo; cat /proc/net/dev | grep -c ":"'),
    );
    const [processes, dev, interfaces] = out.split('\n');
    expect(Number(processes)).toBeLessThanOrEqual(3); // sh, ls, grep at most
    for (const node of ['null', 'zero', 'full', 'random', 'urandom', 'tty', 'pts', 'shm', 'mqueue', 'fd']) {
      expect(dev!.split(' ')).toContain(node);
    }
    expect(interfaces).toBe('1');
  });

  it('brings lo up', async () => {
    const { out } = await runContainer(script('cat /sys/class/net/lo/operstate /sys/class/net/lo/flags'));
    const [, flags] = out.trim().split('\n');
    expect(Number(flags) & 0x1).toBe(1); // IFF_UP
  });

  it('masks and write-protects the sensitive /proc paths and /sys', async () => {
    const { out } = await runContainer(
      script(
        [
          'wc -c < /proc/keys',
          'wc -c < /proc/timer_list',
          'ls -A /proc/acpi | wc -l',
          '(echo x > /proc/sys/kernel/domainname) 2>/dev/null && echo writable || echo read-only',
          'touch /sys/x 2>/dev/null && echo writable || echo read-only',
        ].join('; '),
      ),
    );
    // The paths this kernel has: files become /dev/null, directories an empty tmpfs.
    expect(existsSync('/proc/keys') && existsSync('/proc/timer_list') && existsSync('/proc/acpi')).toBe(true);
    expect(out.trim().split('\n')).toEqual(['0', '0', '0', 'read-only', 'read-only']);
  });

  it('leaves no mount on the host', async () => {
    await runContainer(script('true'));
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(rootfs);
  });

  it('runs as an unprivileged host uid in a user namespace', async () => {
    const maps = [{ containerID: 0, hostID: 100000, size: 65536 }];
    const spec = defaultSpec({
      rootfs,
      args: ['sh', '-c', 'id -u; cat /proc/self/uid_map; hostname'],
      userns: { uidMappings: maps, gidMappings: maps },
    });
    const { out, status } = await runContainer(spec);
    expect(status).toMatchObject({ exitCode: 0, signal: null });
    const [uid, map, hostname] = out.split('\n');
    expect(uid).toBe('0');
    expect(map!.trim().split(/\s+/)).toEqual(['0', '100000', '65536']);
    expect(hostname).toBe('box');
  });

  it('reports a missing command (127) and one that is not executable (126) before starting', async () => {
    await expect(startContainer({ spec: defaultSpec({ rootfs, args: ['nope'] }) })).rejects.toBeInstanceOf(
      CommandNotFoundError,
    );
    await expect(
      startContainer({ spec: defaultSpec({ rootfs, args: ['/etc/data'] }) }),
    ).rejects.toBeInstanceOf(CommandNotExecutableError);
  });

  it('rejects an invalid spec and one without a mount namespace', async () => {
    await expect(startContainer({ spec: defaultSpec({ rootfs, args: [] }) })).rejects.toBeInstanceOf(
      SpecError,
    );
    const relative = defaultSpec({ rootfs: 'relative/rootfs', args: ['true'] });
    await expect(startContainer({ spec: relative })).rejects.toThrow('root.path must be absolute');
    const shared = script('true');
    shared.linux!.namespaces = shared.linux!.namespaces!.filter((n) => n.type !== 'mount');
    await expect(startContainer({ spec: shared })).rejects.toThrow('box needs a new mount namespace');
  });

  it('runs onSync while the container waits', async () => {
    let pid = 0;
    const { out } = await runContainer(script('echo started'), {
      onSync: (childPid) => {
        pid = childPid;
      },
    });
    expect(pid).toBeGreaterThan(0);
    expect(out).toBe('started\n');
  });
});

/**
 * Set-ups that a hostile rootfs tries to steer, as an image would: each gets a busybox root of
 * its own with the image's traps planted in it.
 */
describe('startContainer with a hostile rootfs', () => {
  let n = 0;
  function hostileRootfs(plant: (root: string) => void): string {
    const root = join(top, `hostile-${n++}`);
    makeBusyboxRootfs(root);
    plant(root);
    return root;
  }

  it('refuses proc on a symlink: /proc -> /dev/shm/../../D would leave the real /proc unmasked and writable', async () => {
    const root = hostileRootfs((r) => {
      rmSync(join(r, 'proc'), { recursive: true });
      mkdirSync(join(r, 'a/b/c'), { recursive: true });
      mkdirSync(join(r, 'a/D'));
      mkdirSync(join(r, 'D'));
      symlinkSync('/a/D/self', join(r, 'D/self'));
      symlinkSync('/dev/shm/../../D', join(r, 'proc'));
      mkdirSync(join(r, 'dev'), { recursive: true });
      symlinkSync('/a/b/c', join(r, 'dev/shm'));
    });
    const spec = defaultSpec({
      rootfs: root,
      // It only looks: were the set-up fooled, a write there would change the host's setting.
      args: ['cat', '/a/D/sys/kernel/core_pattern'],
    });
    await expect(startContainer({ spec, stdio: [devnull, devnull, devnull] })).rejects.toThrow(
      /filesystem "proc" must be mounted on an ordinary directory: \/proc leads through a symlink to \/a\/D/,
    );
    // The simpler form, for a start without a gate: proc -> /dev/shm with /dev/shm -> /p1.
    const simple = hostileRootfs((r) => {
      rmSync(join(r, 'proc'), { recursive: true });
      symlinkSync('/dev/shm', join(r, 'proc'));
      symlinkSync('/p1', join(r, 'dev/shm'));
    });
    await expect(
      startContainer({
        spec: defaultSpec({ rootfs: simple, args: ['true'] }),
        stdio: [devnull, devnull, devnull],
      }),
    ).rejects.toThrow(/"proc" must be mounted on an ordinary directory/);
    const sys = hostileRootfs((r) => {
      rmSync(join(r, 'sys'), { recursive: true });
      symlinkSync('/tmp', join(r, 'sys'));
    });
    await expect(
      startContainer({
        spec: defaultSpec({ rootfs: sys, args: ['true'] }),
        stdio: [devnull, devnull, devnull],
      }),
    ).rejects.toThrow(
      /"sysfs" must be mounted on an ordinary directory: \/sys leads through a symlink to \/tmp/,
    );
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(top);
  });

  it("refuses a /dev on a symlink: after pivot_root the kernel's /proc/net -> self/net would lead /dev/null to core_pattern", async () => {
    const root = hostileRootfs((r) => {
      rmSync(join(r, 'dev'), { recursive: true });
      mkdirSync(join(r, 'self/root/y'), { recursive: true });
      mkdirSync(join(r, 'y'));
      symlinkSync('/proc/sys/kernel/core_pattern', join(r, 'y/null'));
      symlinkSync('/proc/net/../../self/root/y', join(r, 'dev'));
    });
    const spec = defaultSpec({ rootfs: root, args: ['cat', '/proc/keys'] });
    await expect(startContainer({ spec, stdio: [devnull, devnull, devnull] })).rejects.toThrow(
      /filesystem "tmpfs" must be mounted on an ordinary directory: \/dev leads through a symlink to \/self\/root\/y/,
    );
  });

  it('refuses a mount that an image symlink leads into /proc or /sys: it would cover a kernel setting', async () => {
    const hostname = join(top, 'hostname-file');
    writeFileSync(hostname, 'box\n');
    const root = hostileRootfs((r) => {
      symlinkSync('/proc/sys/net/ipv6/conf/all/disable_ipv6', join(r, 'etc/hostname'));
      symlinkSync('/sys/kernel', join(r, 'etc/sysdir'));
    });
    const spec = defaultSpec({ rootfs: root, args: ['true'] });
    spec.mounts!.push({
      destination: '/etc/hostname',
      type: 'bind',
      source: hostname,
      options: ['rbind', 'ro'],
    });
    await expect(startContainer({ spec, stdio: [devnull, devnull, devnull] })).rejects.toThrow(
      /\/etc\/hostname leads through a symlink to \/proc\/sys\/net\/ipv6\/conf\/all\/disable_ipv6/,
    );
    const tmpfs = defaultSpec({ rootfs: root, args: ['true'] });
    tmpfs.mounts!.push({ destination: '/etc/sysdir', type: 'tmpfs', source: 'tmpfs', options: [] });
    await expect(startContainer({ spec: tmpfs, stdio: [devnull, devnull, devnull] })).rejects.toThrow(
      /\/etc\/sysdir leads through a symlink to \/sys\/kernel/,
    );
    // A mount the config itself puts in /proc (as lxcfs does) is its own choice: it is made.
    const own = defaultSpec({ rootfs, args: ['cat', '/proc/cpuinfo'] });
    own.mounts!.push({
      destination: '/proc/cpuinfo',
      type: 'bind',
      source: hostname,
      options: ['rbind', 'ro'],
    });
    expect((await runContainer(own)).out).toBe('box\n');
  });

  it("masks files with the null device box made, or, without a /dev tmpfs, with the host's: never the container's /dev/null", async () => {
    // The image's /dev/null leads to a file of the host's kernel: binding it over the masked files
    // would show (and let root write) the host's core_pattern there.
    const withLink = hostileRootfs((r) => {
      symlinkSync('/proc/sys/kernel/core_pattern', join(r, 'dev/null'));
    });
    const noDevTmpfs = (rootfs: string) => {
      const spec = defaultSpec({
        rootfs,
        args: [
          'sh',
          '-c',
          "stat -c '%F %t:%T' /proc/keys /proc/timer_list; wc -c < /proc/keys; echo x > /proc/keys && " +
            "grep ' /proc/keys ' /proc/self/mountinfo | cut -d' ' -f6 | cut -d, -f1-3",
        ],
      });
      spec.mounts = spec.mounts!.filter((m) => !m.destination.startsWith('/dev'));
      return spec;
    };
    // The host's own node, so read-only, nosuid, noexec: container root (its owner, uid 0) could
    // otherwise chmod or chown the host's /dev/null through it. It still takes writes.
    const nullNode = 'character special file 1:3\ncharacter special file 1:3\n0\nro,nosuid,noexec\n';
    expect((await runContainer(noDevTmpfs(withLink))).out).toBe(nullNode);
    // A node of another device there is not taken either.
    const withZero = hostileRootfs((r) => {
      execFileSync('mknod', [join(r, 'dev/null'), 'c', '1', '5']);
    });
    expect((await runContainer(noDevTmpfs(withZero))).out).toBe(nullNode);
    // With box's /dev tmpfs: its own node.
    const spec = defaultSpec({ rootfs: withLink, args: ['stat', '-c', '%F %t:%T', '/proc/keys'] });
    expect((await runContainer(spec)).out).toBe('character special file 1:3\n');
  });

  it('refuses a /dev led into a volume, or covered by a later mount: its nodes would be made in the host directory', async () => {
    const volume = join(top, 'volume');
    mkdirSync(join(volume, 'd'), { recursive: true });
    const root = hostileRootfs((r) => {
      rmSync(join(r, 'dev'), { recursive: true });
      mkdirSync(join(r, 'data/d'), { recursive: true });
      symlinkSync('/data/d', join(r, 'dev'));
    });
    const spec = defaultSpec({ rootfs: root, args: ['true'] });
    spec.mounts!.push({ destination: '/data', type: 'bind', source: volume, options: ['rbind', 'rw'] });
    await expect(startContainer({ spec, stdio: [devnull, devnull, devnull] })).rejects.toThrow(
      /filesystem "tmpfs" must be mounted on an ordinary directory: \/dev leads through a symlink to \/data\/d/,
    );
    // The config's own later mount on /dev: the nodes would go into that host directory.
    const covered = defaultSpec({ rootfs, args: ['true'] });
    covered.mounts!.push({ destination: '/dev', type: 'bind', source: volume, options: ['rbind', 'rw'] });
    await expect(startContainer({ spec: covered, stdio: [devnull, devnull, devnull] })).rejects.toThrow(
      /\/dev: the container's \/dev leads to \/dev, and the tmpfs mounted for it is not what is there/,
    );
    // A later mount of a file system of its own (here the host's devtmpfs) covers it as well.
    const devtmpfs = defaultSpec({ rootfs, args: ['true'] });
    devtmpfs.mounts!.push({ destination: '/dev', type: 'devtmpfs', source: 'devtmpfs', options: [] });
    await expect(startContainer({ spec: devtmpfs, stdio: [devnull, devnull, devnull] })).rejects.toThrow(
      /the tmpfs mounted for it is not what is there/,
    );
    expect(readdirSync(volume)).toEqual(['d']);
    expect(readdirSync(join(volume, 'd'))).toEqual([]);
  });

  it('binds a file over a FIFO or a device node at its destination without opening it', async () => {
    const config = join(top, 'config-file');
    writeFileSync(config, 'config\n');
    const root = hostileRootfs((r) => {
      execFileSync('mkfifo', [join(r, 'etc/fifo')]);
      // /dev/kmsg: opened for writing as root, it would take what is written as the host's log.
      execFileSync('mknod', [join(r, 'etc/kmsg'), 'c', '1', '11']);
    });
    const spec = defaultSpec({ rootfs: root, args: ['sh', '-c', 'cat /etc/fifo /etc/kmsg'] });
    for (const destination of ['/etc/fifo', '/etc/kmsg'])
      spec.mounts!.push({ destination, type: 'bind', source: config, options: ['rbind', 'ro'] });
    const { out, status } = await runContainer(spec);
    expect(status).toMatchObject({ exitCode: 0 });
    expect(out).toBe('config\nconfig\n');
  });

  it('masks a path by what the container has there, not by what the host has', async () => {
    const secret = `/etc/box-test-secret-${process.pid}`;
    expect(existsSync(secret)).toBe(false);
    const root = hostileRootfs((r) => {
      writeFileSync(join(r, secret), 'TOPSECRET\n');
      mkdirSync(join(r, 'etc/secret-dir'));
      writeFileSync(join(r, 'etc/secret-dir/inside'), 'TOPSECRET\n');
      writeFileSync(join(r, 'etc/ro-file'), 'old\n');
    });
    const spec = defaultSpec({
      rootfs: root,
      args: [
        'sh',
        '-c',
        `cat ${secret} /etc/secret-dir/inside 2>&1; (echo new > /etc/ro-file) 2>/dev/null || echo read-only`,
      ],
    });
    spec.linux!.maskedPaths = [secret, '/etc/secret-dir'];
    spec.linux!.readonlyPaths = ['/etc/ro-file'];
    const { out } = await runContainer(spec);
    expect(out).not.toContain('TOPSECRET');
    expect(out).toMatch(/'\/etc\/secret-dir\/inside': No such file or directory/);
    expect(out.trim().split('\n').at(-1)).toBe('read-only');
    expect(readFileSync(join(root, 'etc/ro-file'), 'utf8')).toBe('old\n');
    // Through /proc/self/root the view cannot follow: refused, not skipped.
    const viaProc = hostileRootfs((r) => {
      mkdirSync(join(r, 'opt'));
      writeFileSync(join(r, 'opt/real'), 'IMAGE-SECRET\n');
      symlinkSync('/proc/self/root/opt/real', join(r, 'etc/secretx'));
      symlinkSync('/proc/self/root/opt/real', join(r, 'etc/rofile'));
    });
    for (const list of ['maskedPaths', 'readonlyPaths'] as const) {
      const spec = defaultSpec({ rootfs: viaProc, args: ['cat', '/etc/secretx'] });
      spec.linux![list] = [list === 'maskedPaths' ? '/etc/secretx' : '/etc/rofile'];
      await expect(startContainer({ spec, stdio: [devnull, devnull, devnull] })).rejects.toThrow(
        `linux.${list}: /etc/${list === 'maskedPaths' ? 'secretx' : 'rofile'} leads through a symlink to /proc/self/root/opt/real`,
      );
    }
  });
});
