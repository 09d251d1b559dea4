/**
 * box run by an ordinary user (rootless): a user made for these tests, with a sub-id range
 * the tests add to /etc/subuid and /etc/subgid (far from box's own 100000 range) and take out
 * again, runs box with a clean environment, as a login would give it.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type BoxEnv,
  box,
  boxBin,
  foreignPidNamespaceProcesses,
  leftovers,
  makeBoxRoot,
  type Result,
  waitFor,
} from '../helpers/box.js';
import { httpGet } from '../helpers/network.js';
import { startRegistry } from '../helpers/registry.js';

// Root's own BOX_ROOT (with busybox), beside the user's.
let rootEnv: BoxEnv | undefined;
let before = new Set<number>();
const env = {
  get root() {
    return rootEnv!.root;
  },
};
beforeAll(() => {
  rootEnv = makeBoxRoot();
  before = foreignPidNamespaceProcesses();
});
afterAll(() => rootEnv?.cleanup());

/**
 * What this file's tests may have left (the helper's check, kept to what they make): mounts,
 * records and names under root's BOX_ROOT, and processes in other pid namespaces that run as
 * the test user or its range. Other sessions' containers on the machine are not this file's.
 * (Rootless containers make no cgroups; root's one container here leaves its record if it stays.)
 */
function ownLeftovers(): string[] {
  return leftovers(env.root, before).filter((entry) => {
    if (entry.startsWith('cgroup: ')) return false;
    const pid = /^process (\d+):/.exec(entry)?.[1];
    if (pid === undefined) return true;
    try {
      const uid = Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
      return user !== undefined && (uid === user.uid || (uid >= user.start && uid < user.start + COUNT));
    } catch {
      return false; // gone
    }
  });
}

afterEach(async () => {
  await waitFor(() => ownLeftovers().length === 0, 5000).catch(() => undefined);
  expect(ownLeftovers()).toEqual([]);
});

const SUBID_FILES = ['/etc/subuid', '/etc/subgid'] as const;
const COUNT = 65536;

interface TestUser {
  name: string;
  uid: number;
  gid: number;
  dir: string;
  home: string;
  runtimeDir: string;
  /** The first host id of the user's range: container uid N (N >= 1) is start + N - 1. */
  start: number;
  /** The sub-id files as they were, and the lines the test added. */
  saved: Map<string, { original: string; added: string }>;
}

let user: TestUser;

/** Runs box as `who` with only a login's environment (HOME, USER, PATH, XDG_RUNTIME_DIR). */
function asUser(
  args: string[],
  options: {
    who?: { name: string; home: string; runtimeDir?: string };
    prefix?: string[];
    env?: string[];
  } = {},
): Result {
  const who = options.who ?? user;
  const r = spawnSync(
    options.prefix?.[0] ?? 'setpriv',
    [
      ...(options.prefix?.slice(1) ?? []),
      ...(options.prefix ? ['setpriv'] : []),
      `--reuid=${who.name}`,
      `--regid=${who.name}`,
      '--init-groups',
      'env',
      '-i',
      `HOME=${who.home}`,
      `USER=${who.name}`,
      `LOGNAME=${who.name}`,
      'PATH=/usr/local/bin:/usr/bin:/bin',
      ...(who.runtimeDir ? [`XDG_RUNTIME_DIR=${who.runtimeDir}`] : []),
      ...(options.env ?? []),
      process.execPath,
      boxBin,
      ...args,
    ],
    { cwd: who.home, encoding: 'utf8', timeout: 30_000, input: '' },
  );
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function asUserOk(args: string[]): string {
  const r = asUser(args);
  if (r.code !== 0) throw new Error(`box ${args.join(' ')} as ${user.name} failed (${r.code}): ${r.stderr}`);
  return r.stdout.trim();
}

/** A range of COUNT ids that no line of the sub-id files touches, far above box's 100000. */
function freeRange(): number {
  const taken = SUBID_FILES.flatMap((file) =>
    readFileSync(file, 'utf8')
      .split('\n')
      .map((line) => line.split(':'))
      .filter((f) => f.length === 3)
      .map(([, start, count]) => [Number(start), Number(start) + Number(count)] as const),
  );
  for (;;) {
    const start = 1_000_000_000 + Math.floor(Math.random() * 20_000) * COUNT;
    if (taken.every(([from, to]) => start + COUNT <= from || to <= start)) return start;
  }
}

function userPids(uid: number): number[] {
  return readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .filter((e) => {
      try {
        return statSync(`/proc/${e}`).uid === uid;
      } catch {
        return false;
      }
    })
    .map(Number);
}

/** The busybox image as an archive, with a file of uid 1000 and a directory of uid 33. */
function busyboxArchive(dir: string): string {
  const rootfs = join(dir, 'rootfs');
  for (const d of ['bin', 'etc', 'tmp', 'root', 'home/u', 'var/www', 'proc', 'sys', 'dev'])
    mkdirSync(join(rootfs, d), { recursive: true });
  chmodSync(join(rootfs, 'tmp'), 0o1777);
  chmodSync(join(rootfs, 'root'), 0o700);
  execFileSync('cp', ['/bin/busybox', join(rootfs, 'bin/busybox')]);
  for (const applet of execFileSync('/bin/busybox', ['--list'], { encoding: 'utf8' })
    .split('\n')
    .filter(Boolean))
    if (applet !== 'busybox') execFileSync('ln', ['-sf', 'busybox', join(rootfs, 'bin', applet)]);
  writeFileSync(
    join(rootfs, 'etc/passwd'),
    'root:x:0:0:root:/root:/bin/sh\nu:x:1000:1000::/home/u:/bin/sh\nwww:x:33:33::/var/www:/bin/sh\n',
  );
  writeFileSync(join(rootfs, 'etc/group'), 'root:x:0:\nu:x:1000:\nwww:x:33:\n');
  writeFileSync(join(rootfs, 'home/u/f'), 'hi\n');
  chownSync(join(rootfs, 'home/u'), 1000, 1000);
  chownSync(join(rootfs, 'home/u/f'), 1000, 1000);
  chmodSync(join(rootfs, 'home/u'), 0o750);
  chownSync(join(rootfs, 'var/www'), 33, 33);
  const archive = join(dir, 'busybox.tar');
  execFileSync('tar', ['--numeric-owner', '-C', rootfs, '-cf', archive, '.']);
  chmodSync(archive, 0o644);
  rmSync(rootfs, { recursive: true, force: true });
  return archive;
}

beforeAll(() => {
  for (const tool of ['/usr/bin/newuidmap', '/usr/bin/newgidmap', '/usr/sbin/useradd', '/usr/bin/setpriv'])
    if (!existsSync(tool))
      throw new Error(`${tool} is missing: run scripts/setup.sh (Debian's uidmap, passwd, util-linux)`);
  const name = `boxrl${Math.random().toString(16).slice(2, 8)}`;
  const dir = mkdtempSync('/tmp/box-rootless-');
  chmodSync(dir, 0o755);
  const home = join(dir, 'home');
  const saved = new Map<string, { original: string; added: string }>();
  // No automatic sub-ids from useradd: the test writes its own range (and removes it).
  execFileSync('useradd', [
    '-K',
    'SUB_UID_COUNT=0',
    '-K',
    'SUB_GID_COUNT=0',
    '-m',
    '-d',
    home,
    '-s',
    '/bin/sh',
    name,
  ]);
  const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8' }).trim());
  const start = freeRange();
  for (const file of SUBID_FILES) {
    const original = readFileSync(file, 'utf8');
    const added = `${original === '' || original.endsWith('\n') ? '' : '\n'}${name}:${start}:${COUNT}\n`;
    writeFileSync(file, original + added);
    saved.set(file, { original, added });
  }
  const runtimeDir = join(dir, 'run');
  mkdirSync(runtimeDir, { mode: 0o700 });
  chownSync(runtimeDir, uid, gid);
  user = { name, uid, gid, dir, home, runtimeDir, start, saved };
  const image = busyboxArchive(join(dir, 'image'));
  asUserOk(['import', '-c', 'CMD ["sh"]', image, 'busybox:latest']);
});

/** SIGKILL to every process of the test user (its box service and pause processes). */
function killUserProcesses(): void {
  for (const pid of userPids(user.uid)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
}

afterAll(async () => {
  if (!user) return;
  try {
    const ids = asUser(['ps', '-a', '-q']).stdout.trim().split('\n').filter(Boolean);
    if (ids.length > 0) asUser(['rm', '-f', ...ids]);
  } finally {
    // The user's box service and the pause process that holds its user namespace.
    killUserProcesses();
    await waitFor(() => userPids(user.uid).length === 0, 10_000).catch(() => undefined);
    execFileSync('userdel', ['-r', user.name], { stdio: 'ignore' });
    rmSync(user.dir, { recursive: true, force: true });
    for (const [file, { original, added }] of user.saved) {
      const now = readFileSync(file, 'utf8');
      // Only the test's line goes: another writer's changes meanwhile stay.
      writeFileSync(file, now === original + added ? original : now.replace(added.trimStart(), ''));
    }
  }
  for (const [file, { original }] of user.saved) expect(readFileSync(file, 'utf8')).toBe(original);
  expect(userPids(user.uid)).toEqual([]);
  expect(spawnSync('id', [user.name]).status).not.toBe(0);
});

describe('rootless box', () => {
  it('runs a container whose root is the user, in a state root of the user', () => {
    const r = asUser(['run', '--rm', 'busybox', 'sh', '-c', 'id; cat /proc/self/uid_map']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const [id, ...map] = r.stdout.trim().split('\n');
    expect(id).toBe('uid=0(root) gid=0(root)');
    // Every id of the user's namespace, as they are: the user, then its range.
    expect(map.map((l) => l.trim().split(/\s+/).join(' '))).toEqual(['0 0 1', `1 1 ${COUNT}`]);
    const state = join(user.home, '.local/share/box');
    const stats = lstatSync(state);
    expect(stats.isDirectory()).toBe(true);
    expect(stats.uid).toBe(user.uid);
    // Closed to the group too: a user's primary group may be shared with other users ("users"),
    // and container root here is the user, the owner, so nothing needs the group's x bit.
    for (const dir of ['', 'image', 'image/layers', 'containers', 'volumes'])
      expect({ dir, mode: lstatSync(join(state, dir)).mode & 0o077 }).toEqual({ dir, mode: 0 });
    // Runtime files in $XDG_RUNTIME_DIR/box, closed to others.
    const runtime = lstatSync(join(user.runtimeDir, 'box'));
    expect(runtime.uid).toBe(user.uid);
    expect(runtime.mode & 0o077).toBe(0);
  });

  it("keeps a container's directory and a volume closed to the user's group", () => {
    const state = join(user.home, '.local/share/box');
    const id = asUserOk([
      'run',
      '--name',
      'closed',
      '-v',
      'closedvol:/data',
      'busybox',
      'sh',
      '-c',
      'echo s > /data/f',
    ]).trim();
    try {
      expect(id).toBe('');
      const full = asUserOk(['inspect', '-f', '{{.Id}}', 'closed']).trim();
      for (const dir of [join('containers', full), join('volumes', 'closedvol')])
        expect({ dir, mode: lstatSync(join(state, dir)).mode & 0o077 }).toEqual({ dir, mode: 0 });
    } finally {
      asUser(['rm', '-f', 'closed']);
      asUser(['volume', 'rm', 'closedvol']);
    }
  });

  it('takes XDG_DATA_HOME for its state root, and /tmp/box-UID for runtime files without XDG_RUNTIME_DIR', () => {
    const data = join(user.home, 'xdg-data');
    const fallback = `/tmp/box-${user.uid}`;
    try {
      const r = asUser(['images', '-q'], {
        who: { name: user.name, home: user.home },
        env: [`XDG_DATA_HOME=${data}`],
      });
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(lstatSync(join(data, 'box')).uid).toBe(user.uid);
      const runtime = lstatSync(fallback);
      expect(runtime.isDirectory()).toBe(true);
      expect(runtime.uid).toBe(user.uid);
      expect(runtime.mode & 0o777).toBe(0o700);
    } finally {
      killUserProcesses(); // the pause process of that runtime directory
      rmSync(fallback, { recursive: true, force: true });
    }
  });

  it('refuses a /tmp/box-UID that is not its own private directory (hostile /tmp): one line, 125', () => {
    const fallback = `/tmp/box-${user.uid}`;
    const who = { name: user.name, home: user.home };
    try {
      // Made first by someone else (root here), or a symlink to a directory of the user.
      mkdirSync(fallback, { mode: 0o777 });
      chmodSync(fallback, 0o777);
      let r = asUser(['ps'], { who });
      expect(r.code).toBe(125);
      expect(r.stderr).toBe(
        `box: ${fallback} is not a private directory of uid ${user.uid} (a symlink, another owner, or open to others): refusing to use it\n`,
      );
      rmSync(fallback, { recursive: true });
      symlinkSync(user.runtimeDir, fallback);
      r = asUser(['ps'], { who });
      expect(r.code).toBe(125);
      expect(r.stderr).toMatch(/is not a private directory/);
    } finally {
      rmSync(fallback, { recursive: true, force: true });
    }
  });

  it('runs the container process as the user on the host, container uid N as the range', async () => {
    asUserOk([
      'run',
      '-d',
      '--name',
      'ids',
      'busybox',
      'sh',
      '-c',
      'su u -s /bin/sh -c "sleep 60" & sleep 60',
    ]);
    try {
      const pid = Number(asUserOk(['inspect', '-f', '{{.State.Pid}}', 'ids']));
      expect(pid).toBeGreaterThan(0);
      const uids = (p: number) =>
        /^Uid:\s+(.*)$/m
          .exec(readFileSync(`/proc/${p}/status`, 'utf8'))![1]!
          .split(/\s+/)
          .map(Number);
      expect(uids(pid)).toEqual([user.uid, user.uid, user.uid, user.uid]);
      // The process of container uid 1000 (su u) runs as start + 999 on the host.
      await waitFor(() => asUser(['top', 'ids']).stdout.includes('sleep 60'), 20_000);
      const hostUids = new Set(
        asUserOk(['top', 'ids'])
          .split('\n')
          .slice(1)
          .map((line) => Number(line.trim().split(/\s+/)[1]))
          .map((p) => uids(p)[0]),
      );
      expect(hostUids).toEqual(new Set([user.uid, user.start + 999]));
    } finally {
      asUserOk(['rm', '-f', 'ids']);
    }
  });

  it('keeps image owners (shifted into the range) and writes files as the range on the host', () => {
    const out = join(user.dir, 'out');
    mkdirSync(out, { mode: 0o755 });
    chownSync(out, user.uid, user.gid);
    const r = asUser([
      'run',
      '--rm',
      '-v',
      `${out}:/out`,
      'busybox',
      'sh',
      '-c',
      'stat -c "%u:%g %n" /home/u /home/u/f /var/www; echo r > /out/root-file; su u -s /bin/sh -c "echo u > /home/u/g" 2>&1; mkdir /out/d && chown 1000:1000 /out/d',
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n')).toEqual([
      '1000:1000 /home/u',
      '1000:1000 /home/u/f',
      '33:33 /var/www',
    ]);
    expect(statSync(join(out, 'root-file')).uid).toBe(user.uid);
    expect(statSync(join(out, 'd')).uid).toBe(user.start + 999);
    expect(statSync(join(out, 'd')).gid).toBe(user.start + 999);
    // The layer on the host: uid 1000 of the image is start + 999, 33 is start + 32.
    const layers = join(user.home, '.local/share/box/image/layers');
    const [layer] = readdirSync(layers);
    expect(statSync(join(layers, layer!, 'diff/home/u/f')).uid).toBe(user.start + 999);
    expect(statSync(join(layers, layer!, 'diff/var/www')).uid).toBe(user.start + 32);
    // What the container's uid 1000 made is not the user's to remove: the test's own cleanup
    // (as root) takes it with the user's directory.
  });

  it('hides whiteouts and opaque directories of its own layer (overlay with userxattr)', () => {
    const r = asUser([
      'run',
      '--rm',
      'busybox',
      'sh',
      '-c',
      'rm -rf /var/www && ls -A /var && rm -rf /home/u && mkdir /home/u && ls -A /home/u && echo done',
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe('done');
  });

  it('commit, save, rmi and load keep owners, whiteouts and opaque directories of a layer', () => {
    asUserOk([
      'run',
      '--name',
      'c1',
      'busybox',
      'sh',
      '-c',
      'mkdir /data && echo x > /data/x && chown 1000:33 /data/x && rm -rf /var/www /home/u && mkdir /home/u && touch /home/u/new',
    ]);
    asUserOk(['commit', 'c1', 'committed']);
    asUserOk(['rm', 'c1']);
    const archive = join(user.home, 'committed.tar');
    asUserOk(['save', '-o', archive, 'committed']);
    // The opaque directory is in the committed layer (read from user.overlay.opaque).
    const entries = execFileSync(
      'sh',
      ['-c', 'tar -xOf "$1" --wildcards "*/layer.tar" | tar -ti', 'sh', archive],
      {
        encoding: 'utf8',
      },
    ).split('\n');
    expect(entries).toEqual(expect.arrayContaining(['home/u/.wh..wh..opq', 'var/.wh.www']));
    asUserOk(['rmi', 'committed']);
    expect(asUserOk(['load', '-i', archive])).toBe('Loaded image: committed:latest');
    const r = asUser([
      'run',
      '--rm',
      'committed',
      'sh',
      '-c',
      'stat -c "%u:%g %n" /data/x; ls -A /var /home/u',
    ]);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim().split('\n')).toEqual(['1000:33 /data/x', '/home/u:', 'new', '', '/var:']);
    asUserOk(['rmi', 'committed']);
    rmSync(archive);
  });

  it('cp and export a stopped container (its overlay mounted in a mount namespace of box)', () => {
    asUserOk([
      'run',
      '--name',
      'files',
      'busybox',
      'sh',
      '-c',
      'echo x > /x && rm -rf /home/u && mkdir /home/u',
    ]);
    try {
      const input = join(user.home, 'in.txt');
      writeFileSync(input, 'in\n');
      chownSync(input, user.uid, user.gid);
      asUserOk(['cp', input, 'files:/in.txt']);
      const out = join(user.home, 'x.out');
      asUserOk(['cp', 'files:/x', out]);
      expect(readFileSync(out, 'utf8')).toBe('x\n');
      const archive = join(user.home, 'files.tar');
      asUserOk(['export', '-o', archive, 'files']);
      const names = execFileSync('tar', ['-tf', archive], { encoding: 'utf8' }).split('\n');
      expect(names).toEqual(expect.arrayContaining(['x', 'in.txt', 'home/u/', 'var/www/']));
      expect(names.filter((n) => n.startsWith('home/u/'))).toEqual(['home/u/']);
    } finally {
      asUserOk(['rm', 'files']);
    }
    // Nothing mounted on the host by these commands.
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toMatch(/box-overlay-/);
  });

  it('pushes to and pulls from a registry on loopback, the pulled layers shifted into the range', async () => {
    const registry = await startRegistry();
    try {
      const ref = `${registry.host}/rootless/busybox:1`;
      asUserOk(['tag', 'busybox', ref]);
      asUserOk(['push', '-q', ref]);
      asUserOk(['rmi', ref]);
      asUserOk(['pull', '-q', ref]);
      const r = asUser(['run', '--rm', ref, 'stat', '-c', '%u:%g %n', '/home/u/f', '/var/www']);
      expect(r.stderr).toBe('');
      expect(r.stdout.trim().split('\n')).toEqual(['1000:1000 /home/u/f', '33:33 /var/www']);
      asUserOk(['rmi', ref]);
    } finally {
      await registry.stop();
    }
  });

  it('ps, logs, exec, stop and rm work for the user, who never sees root containers', async () => {
    asUserOk([
      'run',
      '-d',
      '--name',
      'web',
      'busybox',
      'sh',
      '-c',
      'echo hello; trap "exit 0" TERM; while :; do sleep 0.2; done',
    ]);
    const rootId = box(env.root, ['run', '-d', '--name', 'rootweb', 'busybox', 'sleep', '60']).stdout.trim();
    try {
      expect(asUserOk(['ps', '--format', '{{.Names}}'])).toBe('web');
      expect(box(env.root, ['ps', '-a', '--format', '{{.Names}}']).stdout.trim()).toBe('rootweb');
      await waitFor(() => asUser(['logs', 'web']).stdout.includes('hello'), 20_000);
      expect(asUserOk(['logs', 'web'])).toBe('hello');
      expect(asUserOk(['exec', 'web', 'sh', '-c', 'id -u; cat /proc/1/cmdline | tr "\\0" " "'])).toBe(
        '0\nsh -c echo hello; trap "exit 0" TERM; while :; do sleep 0.2; done',
      );
      const rootRef = asUser(['logs', 'rootweb']);
      expect(rootRef.code).not.toBe(0);
      expect(asUser(['inspect', rootId]).code).not.toBe(0);
      expect(asUserOk(['stop', 'web'])).toBe('web');
      expect(asUserOk(['ps', '-a', '--format', '{{.Names}} {{.Status}}'])).toMatch(/^web Exited \(0\)/);
      expect(asUserOk(['rm', 'web'])).toBe('web');
      expect(asUserOk(['ps', '-a', '-q'])).toBe('');
    } finally {
      asUser(['rm', '-f', 'web']);
      box(env.root, ['rm', '-f', 'rootweb']);
    }
  });

  it('is on a user-mode network by default: a published port answers on 127.0.0.1', async () => {
    const port = 18000 + (process.pid % 1000);
    const id = asUserOk([
      'run',
      '-d',
      '-p',
      `127.0.0.1:${port}:80`,
      'busybox',
      'sh',
      '-c',
      'mkdir /www && hostname > /www/hostname && httpd -f -p 80 -h /www',
    ]);
    try {
      const get = () => httpGet('127.0.0.1', port);
      // httpd and slirp4netns's forward come up a moment after `run -d` returns.
      let body = '';
      for (const deadline = Date.now() + 20_000; body === '' && Date.now() < deadline; )
        body = await get().catch(async () => {
          await new Promise((r) => setTimeout(r, 200));
          return '';
        });
      expect(body.trim()).toBe(id.slice(0, 12));
      expect(asUserOk(['port', id])).toBe(`80/tcp -> 127.0.0.1:${port}`);
      expect(asUserOk(['exec', id, 'sh', '-c', 'ip -4 -o addr show tap0 | grep -o "inet [0-9./]*"'])).toBe(
        'inet 10.0.2.100/24',
      );
      // Its slirp4netns runs as the user on the host, never as root.
      const slirpUids = readdirSync('/proc')
        .filter((e) => /^\d+$/.test(e))
        .flatMap((pid) => {
          try {
            if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith('/usr/bin/slirp4netns')) return [];
            return [Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1])];
          } catch {
            return [];
          }
        });
      expect(slirpUids).toContain(user.uid);
    } finally {
      asUser(['rm', '-f', id]);
    }
  });

  it('cannot reach root state directory', () => {
    const ls = spawnSync(
      'setpriv',
      [`--reuid=${user.name}`, `--regid=${user.name}`, '--init-groups', 'ls', env.root],
      {
        encoding: 'utf8',
      },
    );
    expect(ls.status).not.toBe(0);
    expect(ls.stderr).toMatch(/Permission denied/);
    const r = asUser(['ps'], { env: [`BOX_ROOT=${env.root}`] });
    expect(r.code).toBe(125);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('refuses pause and stats, which need a cgroup, in one line', () => {
    asUserOk(['run', '-d', '--name', 'pz', 'busybox', 'sleep', '60']);
    try {
      for (const args of [
        ['pause', 'pz'],
        ['stats', '--no-stream', 'pz'],
      ]) {
        const r = asUser(args);
        expect(r.code).toBe(125);
        expect(r.stderr).toMatch(
          /^box: .*rootless container has no cgroup on this host \(cgroup v1 delegates no cgroup to a user\)\n$/,
        );
      }
    } finally {
      asUserOk(['rm', '-f', 'pz']);
    }
  });
});

/**
 * fuse-overlayfs, which box uses only where the kernel refuses overlay in a user namespace. This
 * kernel does not refuse it, so the tests ask for it (BOX_ROOTLESS_OVERLAY=fuse-overlayfs, as
 * podman's mount_program). /dev/fuse is made 0666 for them, as Debian's udev makes it, and put
 * back after.
 */
describe('rootless box on fuse-overlayfs (asked for: this kernel mounts overlay in a user namespace)', () => {
  let fuseMode = 0;
  beforeAll(() => {
    if (!existsSync('/usr/bin/fuse-overlayfs'))
      throw new Error('/usr/bin/fuse-overlayfs is missing: run scripts/setup.sh (Debian fuse-overlayfs)');
    fuseMode = statSync('/dev/fuse').mode & 0o777;
    chmodSync('/dev/fuse', 0o666);
    // The user's box service, started without the variable: the choice must reach it.
    asUserOk(['run', '-d', '--rm', 'busybox', 'true']);
  });
  afterAll(() => chmodSync('/dev/fuse', fuseMode));

  const onFuse = (args: string[]) => asUser(args, { env: ['BOX_ROOTLESS_OVERLAY=fuse-overlayfs'] });
  const onFuseOk = (args: string[]) => {
    const r = onFuse(args);
    if (r.code !== 0) throw new Error(`box ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
    return r.stdout.trim();
  };
  const servers = () =>
    userPids(user.uid).filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'fuse-overlayfs';
      } catch {
        return false;
      }
    });

  it('runs on it: whiteouts and opaque directories hide, commit, cp and export read its marks; its server ends with the container', async () => {
    const r = onFuse([
      'run',
      '--name',
      'fz',
      'busybox',
      'sh',
      '-c',
      'grep " / " /proc/mounts | cut -d" " -f3; rm -rf /var/www && ls -A /var && rm -rf /home/u && mkdir /home/u && touch /home/u/new && ls -A /home/u && ls /dev/fd',
    ]);
    try {
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      // The root is fuse-overlayfs's; /dev/fuse's fd did not reach the command (0, 1, 2 and ls's own).
      expect(r.stdout.trim().split('\n')).toEqual(['fuse', 'new', '0', '1', '2', '3']);
      // Its server ended with it.
      await waitFor(() => servers().length === 0, 10_000);
      // Its upper dir has fuse-overlayfs's own opaque marks: diff, commit, cp and export read them.
      expect(onFuseOk(['diff', 'fz']).split('\n')).toEqual(
        expect.arrayContaining(['D /home/u', 'A /home/u/new', 'D /var/www']),
      );
      onFuseOk(['commit', 'fz', 'fused']);
      const archive = join(user.home, 'fused.tar');
      onFuseOk(['save', '-o', archive, 'fused']);
      const entries = execFileSync(
        'sh',
        ['-c', 'tar -xOf "$1" --wildcards "*/layer.tar" | tar -ti', 'sh', archive],
        { encoding: 'utf8' },
      ).split('\n');
      expect(entries).toEqual(expect.arrayContaining(['home/u/.wh..wh..opq', 'home/u/new', 'var/.wh.www']));
      expect(entries.filter((e) => e.includes('.wh..opq') && !e.endsWith('.wh..wh..opq'))).toEqual([]);
      rmSync(archive);
      const run = onFuse(['run', '--rm', 'fused', 'ls', '-A', '/home/u', '/var']);
      expect(run.stderr).toBe('');
      expect(run.stdout.trim().split('\n')).toEqual(['/home/u:', 'new', '', '/var:']);
      const exported = join(user.home, 'fz.tar');
      onFuseOk(['export', '-o', exported, 'fz']);
      const names = execFileSync('tar', ['-tf', exported], { encoding: 'utf8' }).split('\n');
      expect(names.filter((n) => n.startsWith('home/u/'))).toEqual(['home/u/', 'home/u/new']);
      expect(names.filter((n) => n.includes('.wh.'))).toEqual([]);
      rmSync(exported);
      const out = join(user.home, 'new.out');
      onFuseOk(['cp', 'fz:/home/u/new', out]);
      expect(existsSync(out)).toBe(true);
      rmSync(out);
    } finally {
      onFuse(['rm', '-f', 'fz']);
      onFuse(['rmi', 'fused']);
    }
    // Nothing of it stays: no server (cp's and export's ended with them), no mount point.
    await waitFor(() => servers().length === 0, 10_000);
    expect(readdirSync('/tmp').filter((name) => name.startsWith('box-fuse-overlay-'))).toEqual([]);
  });

  it('a running container on it: exec and exec -u NAME work; cp of its files meets FUSE’s EACCES, in one line', async () => {
    onFuseOk(['run', '-d', '--name', 'fr', 'busybox', 'sleep', '60']);
    try {
      expect(onFuseOk(['exec', 'fr', 'sh', '-c', 'grep " / " /proc/mounts | cut -d" " -f3'])).toBe('fuse');
      // The command and the user are looked up in its layers.
      expect(onFuseOk(['exec', '-u', 'www', 'fr', 'id', '-u'])).toBe('33');
      const cp = onFuse(['cp', 'fr:/etc/passwd', join(user.home, 'p.out')]);
      expect(cp.code).not.toBe(0);
      expect(cp.stderr.trim().split('\n')).toHaveLength(1);
      expect(cp.stderr).toMatch(/EACCES/);
      expect(existsSync(join(user.home, 'p.out'))).toBe(false);
    } finally {
      onFuse(['rm', '-f', 'fr']);
    }
    await waitFor(() => servers().length === 0, 10_000);
  });

  it('a /dev/fuse the user may not open: one line, 125, and the container is not left running', () => {
    chmodSync('/dev/fuse', 0o600);
    try {
      const r = onFuse(['run', '--rm', 'busybox', 'true']);
      expect(r.code).toBe(125);
      expect(r.stderr).toMatch(/^box: failed to start the container: open \/dev\/fuse: EACCES [^\n]*\n$/);
      expect(asUserOk(['ps', '-a', '-q'])).toBe('');
    } finally {
      chmodSync('/dev/fuse', 0o666);
    }
  });
});

describe('rootless box: bad input', () => {
  const refused = (r: Result, pattern: RegExp) => {
    expect(r.code).toBe(125);
    expect(r.stdout).toBe('');
    expect(r.stderr.split('\n').filter(Boolean)).toHaveLength(1);
    expect(r.stderr).toMatch(pattern);
  };

  it("--uts host and --ipc host: the host's name and /dev/shm, in the user's namespace", () => {
    const out = asUserOk([
      'run',
      '--rm',
      '--network',
      'none',
      '--uts',
      'host',
      '--ipc',
      'host',
      'busybox',
      'sh',
      '-c',
      'hostname; readlink /proc/self/ns/ipc; grep -c " /dev/shm " /proc/mounts',
    ]);
    expect(out.split('\n')).toEqual([hostname(), readlinkSync('/proc/self/ns/ipc'), '1']);
  });

  it('a limit flag, a bridge network or a published port: one line, 125, nothing made', () => {
    for (const [args, pattern] of [
      [['-m', '64m'], /resource limits \(memory\) need a cgroup/],
      [['--pids-limit', '10'], /resource limits \(pids\) need a cgroup/],
      [
        ['--cpus', '0.5'],
        /resource limits \(cpu\) need a cgroup, .*\(cgroup v1 delegates no cgroup to a user\)$/m,
      ],
      [
        ['--device-cgroup-rule', 'c 1:3 r'],
        /device cgroup rules \(--device-cgroup-rule\) need a device program/,
      ],
      [['--network', 'bridge'], /--network bridge: a rootless box has no bridge networks/],
      [['--network', 'none', '-p', '8080:80'], /publishing ports \(-p, -P\) needs --network slirp4netns/],
      [['--network', 'none', '--pid', 'host'], /--pid host: a rootless container cannot mount \/proc/],
    ] as const) {
      refused(asUser(['run', '--rm', ...args, 'busybox', 'true']), pattern);
      refused(asUser(['create', ...args, 'busybox', 'true']), pattern);
    }
    // A port below the host's unprivileged start, which the user may not bind (a start's error,
    // as docker's: `create` takes it).
    refused(
      asUser(['run', '--rm', '-p', '127.0.0.1:80:80', 'busybox', 'true']),
      /^box: cannot publish 127\.0\.0\.1:80\/tcp: permission denied \(a port below 1024 needs root/,
    );
    refused(
      asUser(['network', 'create', 'mine']),
      /^box: network create: a rootless box has no bridge networks/,
    );
    expect(asUserOk(['network', 'ls', '--format', '{{.Name}}']).split('\n').sort()).toEqual(['host', 'none']);
    expect(asUserOk(['ps', '-a', '-q'])).toBe('');
    expect(readdirSync(join(user.home, '.local/share/box/containers'))).toEqual([]);
  });

  it('no subuid range for the user: one line naming the line to add, nothing made', () => {
    const name = `${user.name}n`;
    const home = join(user.dir, 'nohome');
    execFileSync('useradd', ['-K', 'SUB_UID_COUNT=0', '-K', 'SUB_GID_COUNT=0', '-M', '-d', home, name]);
    try {
      const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim());
      mkdirSync(home, { mode: 0o755 });
      chownSync(home, uid, uid);
      const r = asUser(['run', '--rm', 'busybox', 'true'], { who: { name, home } });
      refused(
        r,
        new RegExp(
          `^box: no subuid range for user ${name} in /etc/subuid: add a line such as '${name}:100000:65536'`,
        ),
      );
      expect(readdirSync(home)).toEqual([]);
      expect(existsSync(`/tmp/box-${uid}`)).toBe(false);
    } finally {
      execFileSync('userdel', [name]);
      rmSync(home, { recursive: true, force: true });
    }
  });

  it('newuidmap missing: one line, nothing made', () => {
    const before = readdirSync(join(user.home, '.local/share/box/containers'));
    // /dev/null over it, in a mount namespace of this one command only.
    const r = asUser(['run', '--rm', 'busybox', 'true'], {
      prefix: [
        'unshare',
        '-m',
        '--propagation',
        'private',
        'sh',
        '-c',
        'mount --bind /dev/null /usr/bin/newuidmap && exec "$@"',
        'sh',
      ],
    });
    refused(
      r,
      /^box: newuidmap not found in \/usr\/bin, \/bin, \/usr\/sbin, \/sbin: install the uidmap package/,
    );
    expect(readdirSync(join(user.home, '.local/share/box/containers'))).toEqual(before);
  });
});
