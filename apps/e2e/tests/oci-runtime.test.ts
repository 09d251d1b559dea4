/**
 * box-runtime, runc's command line, driven as podman and containerd drive it: the create/start
 * split with the state checked at each step, hooks, --console-socket, --preserve-fds, delete
 * --force, and bad input answered with runc's exit code 1 and one line, nothing made.
 */
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
  readlinkSync,
  readSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { close, receiveFd } from '@box/sys';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { boxBin, waitFor } from '../helpers/box.js';
import {
  type Config,
  makeBundle,
  removeBundle,
  runtime,
  runtimeBin,
  runtimeLeftovers,
} from '../helpers/runtime.js';

let root: string;
const bundles: string[] = [];

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'box-e2e-runtime-root-'));
});

afterEach(async () => {
  for (const id of runtime(root, ['list', '-q']).stdout.split('\n').filter(Boolean))
    runtime(root, ['delete', '--force', id]);
  for (const dir of bundles.splice(0)) removeBundle(dir);
  await waitFor(() => runtimeLeftovers(root).length === 0, 5000).catch(() => undefined);
  expect(runtimeLeftovers(root)).toEqual([]);
  rmSync(root, { recursive: true, force: true });
});

function bundle(edit?: (config: Config) => void): string {
  const dir = makeBundle(edit);
  bundles.push(dir);
  return dir;
}

const status = (id: string) => JSON.parse(runtime(root, ['state', id]).stdout).status as string;

describe('the create/start lifecycle', () => {
  it('create leaves the process waiting; start runs it; kill, then delete removes everything', async () => {
    const dir = bundle((c) => {
      c.process.args = ['sh', '-c', `echo started > /tmp/marker; sleep 30`];
    });
    const pidFile = join(dir, 'pid');
    const created = runtime(root, ['create', '--bundle', dir, '--pid-file', pidFile, 'c1']);
    expect(created.code, created.stderr).toBe(0);
    const state = JSON.parse(runtime(root, ['state', 'c1']).stdout);
    expect(state).toMatchObject({ ociVersion: '1.2.0', id: 'c1', status: 'created', bundle: dir });
    expect(Number(readFileSync(pidFile, 'utf8'))).toBe(state.pid);
    // Waiting before its command: the marker does not exist yet.
    expect(existsSync(join(dir, 'rootfs/tmp/marker'))).toBe(false);
    // It waits as the exec stub, not as a copy of box-runtime's Node.js process: /proc/PID/exe
    // is the sealed memfd (never the host's node binary) and none of that memory is kept.
    expect(readlinkSync(`/proc/${state.pid}/exe`)).toMatch(/^\/memfd:box-exec-stub/);
    expect(readFileSync(`/proc/${state.pid}/cmdline`, 'utf8').split('\0').slice(0, 2)).toEqual([
      'box-exec',
      expect.stringMatching(/^\d+,\d+$/),
    ]);
    const rssKb = Number(/^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${state.pid}/status`, 'utf8'))?.[1]);
    expect(rssKb).toBeGreaterThan(0);
    expect(rssKb).toBeLessThan(1024);
    expect(runtime(root, ['start', 'c1']).code).toBe(0);
    expect(status('c1')).toBe('running');
    await waitFor(() => existsSync(join(dir, 'rootfs/tmp/marker')));
    expect(readFileSync(join(dir, 'rootfs/tmp/marker'), 'utf8')).toBe('started\n');
    expect(JSON.parse(runtime(root, ['ps', '--format', 'json', 'c1']).stdout)).toContain(state.pid);
    expect(runtime(root, ['pause', 'c1']).code).toBe(0);
    expect(status('c1')).toBe('paused');
    expect(runtime(root, ['resume', 'c1']).code).toBe(0);
    const list = runtime(root, ['list', '--format', 'json']);
    expect(JSON.parse(list.stdout)).toMatchObject([{ id: 'c1', status: 'running' }]);
    expect(runtime(root, ['kill', 'c1', 'KILL']).code).toBe(0);
    await waitFor(() => status('c1') === 'stopped');
    expect(runtime(root, ['delete', 'c1']).code).toBe(0);
    expect(runtime(root, ['state', 'c1']).code).toBe(1);
  });

  it('run in the foreground returns the exit code; exec runs in a running container', () => {
    const dir = bundle((c) => {
      c.process.args = ['sh', '-c', 'exit 7'];
    });
    expect(runtime(root, ['run', '--bundle', dir, 'c2']).code).toBe(7);
    expect(runtime(root, ['list', '-q']).stdout).toBe('');
    const sleeper = bundle((c) => {
      c.process.args = ['sleep', '30'];
    });
    expect(runtime(root, ['run', '-d', '--bundle', sleeper, 'c3']).code).toBe(0);
    const exec = runtime(root, ['exec', 'c3', 'sh', '-c', 'echo in c3; exit 4']);
    expect(exec.stdout).toBe('in c3\n');
    expect(exec.code).toBe(4);
    expect(runtime(root, ['delete', 'c3']).stderr).toMatch(
      /cannot delete container c3 that is not stopped: running/,
    );
    expect(runtime(root, ['delete', '--force', 'c3']).code).toBe(0);
    expect(runtime(root, ['exec', 'c3', 'true']).code).toBe(1);
  });

  it("runs a config's non-root user without capabilities (it opens the exec FIFO as that user)", async () => {
    // As podman's config for `--user 1000`: the bounding set only, nothing effective.
    const asUser = (c: Config) => {
      c.process.user = { uid: 1000, gid: 1000 };
      c.process.capabilities = { bounding: c.process.capabilities?.bounding ?? [] };
    };
    const dir = bundle((c) => {
      asUser(c);
      c.process.args = ['sh', '-c', 'echo "$(id -u):$(id -g)"; grep CapEff /proc/self/status'];
    });
    // `run`: create and start in one process, the container's stdout is this test's pipe.
    const r = runtime(root, ['run', '--bundle', dir, 'c5']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('1000:1000\nCapEff:\t0000000000000000\n');
    expect(r.code).toBe(0);
    // The create/start split too, as podman and the shim drive it.
    const split = bundle((c) => {
      asUser(c);
      c.process.args = ['sh', '-c', 'sleep 30'];
    });
    expect(runtime(root, ['create', '--bundle', split, 'c6']).code).toBe(0);
    const started = runtime(root, ['start', 'c6']);
    expect(started.stderr).toBe('');
    expect(started.code).toBe(0);
    expect(status('c6')).toBe('running');
    const pid = JSON.parse(runtime(root, ['state', 'c6']).stdout).pid as number;
    await waitFor(() => readFileSync(`/proc/${pid}/comm`, 'utf8') === 'sleep\n');
    expect(readFileSync(`/proc/${pid}/status`, 'utf8')).toMatch(/^Uid:\s+1000\s/m);
  });

  it('--preserve-fds 2 passes exactly fds 3 and 4', () => {
    const dir = bundle((c) => {
      c.process.args = ['sh', '-c', 'ls /proc/self/fd; readlink /proc/self/fd/3; readlink /proc/self/fd/4'];
    });
    const a = openSync('/etc/hostname', 'r');
    const b = openSync('/dev/null', 'r');
    try {
      const r = runtime(root, ['run', '--preserve-fds', '2', '--bundle', dir, 'c4'], {
        stdio: ['ignore', 'pipe', 'pipe', a, b, 'ignore'],
      });
      expect(r.code, r.stderr).toBe(0);
      const lines = r.stdout.trim().split('\n');
      // 0-2, the two preserved, and ls's own directory fd (5): nothing else.
      expect(lines.slice(0, -2).sort()).toEqual(['0', '1', '2', '3', '4', '5']);
      expect(lines.slice(-2)).toEqual(['/etc/hostname', '/dev/null']);
    } finally {
      closeSync(a);
      closeSync(b);
    }
  });
});

describe('--console-socket', () => {
  it("sends the pty master, which reaches the container's terminal", async () => {
    const dir = bundle((c) => {
      c.process.terminal = true;
      c.process.args = ['sh', '-c', 'tty; echo terminal-ok; sleep 1'];
    });
    const socketPath = join(dir, 'console.sock');
    let master: number | null = null;
    const server = createServer({ pauseOnConnect: true }, (socket: Socket) => {
      const fd = (socket as unknown as { _handle: { fd: number } })._handle.fd;
      const poll = () => {
        master = receiveFd(fd);
        if (master === null) setTimeout(poll, 10);
        else socket.destroy();
      };
      poll();
    });
    await new Promise<void>((resolve) => server.listen(socketPath, resolve));
    try {
      const r = runtime(root, ['run', '-d', '--console-socket', socketPath, '--bundle', dir, 'c5']);
      expect(r.code, r.stderr).toBe(0);
      await waitFor(() => master !== null);
      let out = '';
      const buf = Buffer.alloc(4096);
      while (!out.includes('terminal-ok')) {
        const n = readSync(master!, buf);
        if (n === 0) break;
        out += buf.subarray(0, n).toString();
      }
      expect(out).toMatch(/\/dev\/pts\/\d+\r?\n/);
      expect(out).toContain('terminal-ok');
    } finally {
      if (master !== null) close(master);
      server.close();
    }
  });
});

describe('hooks', () => {
  it('run in order with the state on stdin; a failing prestart aborts create with nothing left', () => {
    const log = mkdtempSync(join(tmpdir(), 'box-e2e-hooks-'));
    try {
      const hook = (kind: string, path = `/log/${kind}`) => ({
        path: '/bin/sh',
        args: [
          'sh',
          '-c',
          `grep -o '"status":"[a-z]*"' > ${path}; echo ${kind} >> ${path.replace(kind, 'order')}`,
        ],
      });
      const dir = bundle((c) => {
        c.process.args = ['sleep', '30'];
        c.mounts.push({ destination: '/log', type: 'bind', source: log, options: ['rbind', 'rw'] });
        c.hooks = {
          // In the runtime's namespaces the host's paths; in the container's, its own /log.
          createRuntime: [hook('createRuntime', `${log}/createRuntime`)],
          prestart: [hook('prestart', `${log}/prestart`)],
          // Before pivot_root, with the container's mounts done: its /proc is mounted in the
          // rootfs (and shows its own pid 1), which is still reached through the host's path.
          createContainer: [
            {
              path: '/bin/sh',
              args: [
                'sh',
                '-c',
                `s=$(cat); echo "$s" | grep -o '"status":"[a-z]*"' > ${log}/createContainer; ` +
                  `echo createContainer >> ${log}/order; ` +
                  `b=$(echo "$s" | grep -o '"bundle":"[^"]*"' | cut -d'"' -f4); ` +
                  `[ -e $b/rootfs/proc/1/status ] && echo mounted > ${log}/createContainer-rootfs`,
              ],
            },
          ],
          startContainer: [hook('startContainer')],
          poststart: [hook('poststart', `${log}/poststart`)],
          poststop: [hook('poststop', `${log}/poststop`)],
        };
      });
      expect(runtime(root, ['create', '--bundle', dir, 'h1']).code).toBe(0);
      expect(runtime(root, ['start', 'h1']).code).toBe(0);
      expect(runtime(root, ['delete', '--force', 'h1']).code).toBe(0);
      expect(readFileSync(join(log, 'order'), 'utf8').trim().split('\n')).toEqual([
        'createRuntime',
        'prestart',
        'createContainer',
        'startContainer',
        'poststart',
        'poststop',
      ]);
      const seen = (kind: string) => readFileSync(join(log, kind), 'utf8').trim();
      expect(seen('createContainer-rootfs')).toBe('mounted');
      expect(seen('createRuntime')).toBe('"status":"creating"');
      expect(seen('startContainer')).toBe('"status":"created"');
      expect(seen('poststart')).toBe('"status":"running"');
      expect(seen('poststop')).toBe('"status":"stopped"');

      const failing = bundle((c) => {
        c.process.args = ['sleep', '30'];
        c.hooks = { prestart: [{ path: '/bin/false', args: ['false'] }] };
      });
      const r = runtime(root, ['create', '--bundle', failing, 'h2']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/prestart hook \/bin\/false failed: exit status 1/);
      expect(runtime(root, ['list', '-q']).stdout).toBe('');
      expect(runtimeLeftovers(root)).toEqual([]);
      // One that fails in the container's namespaces, before pivot_root: the same.
      const failingInside = bundle((c) => {
        c.process.args = ['sleep', '30'];
        c.hooks = { createContainer: [{ path: '/bin/sh', args: ['sh', '-c', 'exit 3'] }] };
      });
      const inside = runtime(root, ['create', '--bundle', failingInside, 'h3']);
      expect(inside.code).toBe(1);
      expect(inside.stderr).toMatch(/createContainer hook \/bin\/sh failed: exit status 3/);
      expect(runtime(root, ['list', '-q']).stdout).toBe('');
      expect(runtimeLeftovers(root)).toEqual([]);
    } finally {
      rmSync(log, { recursive: true, force: true });
    }
  });
});

describe('the rest of the config', () => {
  it("tmpcopyup (podman's --tmpfs, --read-only) where the image has nothing: a plain tmpfs", () => {
    const dir = bundle((c) => {
      c.process.args = [
        'sh',
        '-c',
        'busybox awk \'$2 == "/run" || $2 == "/fresh" { print $2, $3 }\' /proc/mounts; ls -A /run /fresh',
      ];
      c.mounts = [
        ...(c.mounts ?? []),
        {
          destination: '/run',
          type: 'tmpfs',
          source: 'tmpfs',
          options: ['rw', 'nosuid', 'nodev', 'tmpcopyup'],
        },
        { destination: '/fresh', type: 'tmpfs', source: 'tmpfs', options: ['ro', 'tmpcopyup'] },
      ];
    });
    mkdirSync(join(dir, 'rootfs/run'));
    const r = runtime(root, ['run', '--bundle', dir, 'u1']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('/run tmpfs\n/fresh tmpfs\n/fresh:\n\n/run:\n');
    expect(r.code).toBe(0);
  });

  it('tmpcopyup where the image has files: the tmpfs starts with their copy (owners, modes, times, links, holes), made before the mounts below it', () => {
    const hostDir = mkdtempSync(join(tmpdir(), 'box-e2e-copyup-host-'));
    writeFileSync(join(hostDir, 'kept'), 'host\n');
    try {
      const dir = bundle((c) => {
        c.process.args = [
          'sh',
          '-c',
          [
            'cd /run',
            'busybox stat -c "%n %F %a %u:%g %Y %h" . app app/conf app/hard app/link app/fifo app/locked app/shared',
            'busybox stat -c "%n %i" app/conf app/hard',
            'cat app/conf; readlink app/link',
            // The sparse file: its size, its one block of data, and no more blocks than that.
            'busybox stat -c "%n %s %b" app/sparse; busybox dd if=app/sparse bs=1 skip=300000000 count=4 2>/dev/null; echo',
            'ls /run/app/bound',
            'echo new > /run/app/new && cat /run/app/new',
            'busybox awk \'$2 == "/run" { print $3 } $2 == "/ro" { print $4 }\' /proc/mounts',
            'cat /ro/file; (echo x > /ro/other) 2>/dev/null || echo read-only',
          ].join('; '),
        ];
        c.mounts = [
          ...(c.mounts ?? []),
          { destination: '/run', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'tmpcopyup'] },
          // Below the tmpfs, mounted after the copy: the copy never writes into its host source.
          { destination: '/run/app/bound', type: 'bind', source: hostDir, options: ['rbind', 'rw'] },
          // Filled, then read-only; a flag of the file system (sync) is set through fsconfig.
          { destination: '/ro', type: 'tmpfs', source: 'tmpfs', options: ['ro', 'sync', 'tmpcopyup'] },
        ];
      });
      const app = join(dir, 'rootfs/run/app');
      mkdirSync(join(app, 'locked/inner'), { recursive: true });
      mkdirSync(join(app, 'shared'));
      mkdirSync(join(app, 'bound'));
      writeFileSync(join(app, 'bound/image-file'), 'hidden by the bind mount\n');
      writeFileSync(join(app, 'conf'), 'copied\n');
      execFileSync('chown', ['1000:1001', join(app, 'conf')]);
      execFileSync('chmod', ['0640', join(app, 'conf')]);
      execFileSync('touch', ['-h', '-d', '2001-02-03 04:05:06 UTC', join(app, 'conf')]);
      execFileSync('ln', [join(app, 'conf'), join(app, 'hard')]);
      // An absolute link to a host file: copied as a link, never followed.
      symlinkSync('/etc/shadow', join(app, 'link'));
      execFileSync('mkfifo', [join(app, 'fifo')]);
      execFileSync('truncate', ['-s', '1G', join(app, 'sparse')]);
      execFileSync('dd', [`of=${join(app, 'sparse')}`, 'bs=1', 'seek=300000000', 'conv=notrunc'], {
        input: 'data',
        stdio: ['pipe', 'ignore', 'ignore'],
      });
      execFileSync('chmod', ['2775', join(app, 'shared')]);
      execFileSync('chmod', ['0500', join(app, 'locked')]);
      execFileSync('chmod', ['0750', join(dir, 'rootfs/run')]);
      mkdirSync(join(dir, 'rootfs/ro'));
      writeFileSync(join(dir, 'rootfs/ro/file'), 'read-only copy\n');
      const r = runtime(root, ['run', '--bundle', dir, 'u2']);
      expect(r.stderr).toBe('');
      const lines = r.stdout.split('\n');
      expect(lines.slice(0, 8)).toEqual([
        // The tmpfs's root takes the covered directory's mode, as runc's.
        expect.stringMatching(/^\. directory 750 0:0 \d+ \d+$/),
        expect.stringMatching(/^app directory 755 0:0 \d+ \d+$/),
        'app/conf regular file 640 1000:1001 981173106 2',
        'app/hard regular file 640 1000:1001 981173106 2',
        expect.stringMatching(/^app\/link symbolic link 777 0:0 \d+ 1$/),
        expect.stringMatching(/^app\/fifo fifo 644 0:0 \d+ 1$/),
        expect.stringMatching(/^app\/locked directory 500 0:0 \d+ 3$/),
        expect.stringMatching(/^app\/shared directory 2775 0:0 \d+ 2$/),
      ]);
      // One inode for the two names of a hard link.
      const [conf, hard] = lines.slice(8, 10).map((l) => l.split(' ')[1]);
      expect(conf).toBe(hard);
      expect(lines.slice(10)).toEqual([
        'copied',
        '/etc/shadow',
        expect.stringMatching(/^app\/sparse 1073741824 (8|16)$/),
        'data',
        'kept',
        'new',
        'tmpfs',
        expect.stringMatching(/^ro,sync,.*mode=755/),
        'read-only copy',
        'read-only',
        '',
      ]);
      expect(r.code).toBe(0);
      // The bind mount's host source is as it was: nothing of the image was written there.
      expect(readdirSync(hostDir)).toEqual(['kept']);
    } finally {
      rmSync(hostDir, { recursive: true, force: true });
    }
  });

  it("a mount below a new file system (the config's /dev tmpfs) goes where its path says, not where the image's hidden /dev/shm link points", () => {
    const dir = bundle((c) => {
      c.process.args = [
        'sh',
        '-c',
        'busybox awk \'$2 == "/etc" || $2 == "/dev/shm" { print $2, $3 }\' /proc/mounts; cat /etc/marker',
      ];
    });
    expect(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')).mounts).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ destination: '/dev', type: 'tmpfs' }),
        expect.objectContaining({ destination: '/dev/shm', type: 'tmpfs' }),
      ]),
    );
    writeFileSync(join(dir, 'rootfs/etc/marker'), "the image's /etc\n");
    symlinkSync('/etc', join(dir, 'rootfs/dev/shm'));
    const r = runtime(root, ['run', '--bundle', dir, 'u5']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe("/dev/shm tmpfs\nthe image's /etc\n");
    expect(r.code).toBe(0);
  });

  it("tmpcopyup's copy is charged to the container's memory cgroup: counted in its usage, and fails past its limit or past the tmpfs's size", () => {
    const cgroup = `box-e2e-copyup-${process.pid}`;
    const withRun = (size: number, limit: number) => {
      const dir = bundle((c) => {
        c.process.args = ['sleep', '30'];
        c.linux.cgroupsPath = `/${cgroup}`;
        c.linux.resources = { memory: { limit } };
        c.mounts = [
          ...(c.mounts ?? []),
          { destination: '/run', type: 'tmpfs', source: 'tmpfs', options: ['tmpcopyup'] },
        ];
      });
      mkdirSync(join(dir, 'rootfs/run'));
      writeFileSync(join(dir, 'rootfs/run/big'), Buffer.alloc(size, 1));
      return dir;
    };
    const MiB = 1 << 20;
    const fits = withRun(16 * MiB, 64 * MiB);
    const created = runtime(root, ['create', '--bundle', fits, 'm1']);
    expect(created.code, created.stderr).toBe(0);
    const usage = Number(readFileSync(`/sys/fs/cgroup/memory/${cgroup}/memory.usage_in_bytes`, 'utf8'));
    expect(usage).toBeGreaterThanOrEqual(16 * MiB);
    expect(runtime(root, ['delete', '--force', 'm1']).code).toBe(0);
    const tooBig = withRun(64 * MiB, 32 * MiB);
    const r = runtime(root, ['run', '--bundle', tooBig, 'm2']);
    expect(r.stderr).toBe(
      "the container's memory limit was reached while it was set up (the OOM killer ended it)\n",
    );
    expect(r.code).toBe(1);
    // Past the tmpfs's size: the last sendfile is short, which must not pass for a whole copy.
    const small = withRun(2 * MiB, 64 * MiB);
    const config = JSON.parse(readFileSync(join(small, 'config.json'), 'utf8'));
    config.mounts.at(-1).options.push('size=1m');
    writeFileSync(join(small, 'config.json'), JSON.stringify(config));
    const full = runtime(root, ['run', '--bundle', small, 'm3']);
    expect(full.stderr).toBe(
      'copy /run into the tmpfs (checking it fits): ENOSPC (no space left on device)\n',
    );
    expect(full.code).toBe(1);
    expect(runtime(root, ['list', '-q']).stdout).toBe('');
    expect(runtimeLeftovers(root)).toEqual([]);
    for (const hierarchy of readdirSync('/sys/fs/cgroup'))
      expect(existsSync(join('/sys/fs/cgroup', hierarchy, cgroup)), hierarchy).toBe(false);
  });

  it('tmpcopyup below a mount made before it, over a file owned by an id the user namespace does not map, or on /dev: one line, nothing made', () => {
    const hostDir = mkdtempSync(join(tmpdir(), 'box-e2e-copyup-host-'));
    try {
      const below = bundle((c) => {
        c.process.args = ['true'];
        c.mounts = [
          ...(c.mounts ?? []),
          { destination: '/run/app', type: 'bind', source: hostDir, options: ['rbind'] },
          { destination: '/run', type: 'tmpfs', source: 'tmpfs', options: ['tmpcopyup'] },
        ];
      });
      mkdirSync(join(below, 'rootfs/run/app'), { recursive: true });
      let r = runtime(root, ['run', '--bundle', below, 'u3']);
      expect(r.stderr).toBe('tmpcopyup on /run: /run/app is mounted below it before it\n');
      expect(r.code).toBe(1);
      const unmapped = bundle((c) => {
        c.process.args = ['true'];
        c.linux.namespaces.push({ type: 'user' });
        c.linux.uidMappings = [{ containerID: 0, hostID: 0, size: 100 }];
        c.linux.gidMappings = [{ containerID: 0, hostID: 0, size: 100 }];
        c.mounts = [
          ...(c.mounts ?? []),
          { destination: '/run', type: 'tmpfs', source: 'tmpfs', options: ['tmpcopyup'] },
        ];
      });
      mkdirSync(join(unmapped, 'rootfs/run'));
      writeFileSync(join(unmapped, 'rootfs/run/pid'), '1\n');
      execFileSync('chown', ['5000', join(unmapped, 'rootfs/run/pid')]);
      r = runtime(root, ['run', '--bundle', unmapped, 'u4']);
      expect(r.stderr).toBe(
        "tmpcopyup on /run: /run/pid is owned by host uid 5000, which the container's user namespace does not map\n",
      );
      expect(r.code).toBe(1);
      // The container's /dev is box's to make: a copy of the image's would be followed.
      const dev = bundle((c) => {
        c.process.args = ['true'];
        for (const m of c.mounts ?? [])
          if (m.destination === '/dev') m.options = [...(m.options ?? []), 'tmpcopyup'];
      });
      symlinkSync('/etc/passwd', join(dev, 'rootfs/dev/null'));
      r = runtime(root, ['run', '--bundle', dev, 'u6']);
      expect(r.stderr).toBe("tmpcopyup on /dev: the container's /dev is made by box, not copied\n");
      expect(r.code).toBe(1);
      expect(runtime(root, ['list', '-q']).stdout).toBe('');
      expect(runtimeLeftovers(root)).toEqual([]);
      expect(readdirSync(hostDir)).toEqual([]);
    } finally {
      rmSync(hostDir, { recursive: true, force: true });
    }
  });

  it('oomScoreAdj and a dozen sysctls in a user namespace: set (the child has only 16 slots for its fds)', () => {
    const sysctls: Record<string, string> = {
      'net.ipv4.tcp_keepalive_time': '600',
      'net.ipv4.tcp_keepalive_intvl': '30',
      'net.ipv4.tcp_keepalive_probes': '7',
      'net.ipv4.tcp_fin_timeout': '30',
      'net.ipv4.tcp_syncookies': '1',
      'net.ipv4.ip_unprivileged_port_start': '80',
      'net.ipv4.ping_group_range': '0 0',
      'net.ipv4.tcp_retries2': '8',
      'net.ipv4.tcp_syn_retries': '5',
      'net.ipv4.tcp_synack_retries': '4',
      'net.ipv4.tcp_rfc1337': '1',
      'net.ipv4.tcp_sack': '1',
    };
    const dir = bundle((c) => {
      c.process.args = ['cat', '/proc/self/oom_score_adj', '/proc/sys/net/ipv4/tcp_keepalive_probes'];
      c.process.oomScoreAdj = 100;
      c.linux.sysctl = sysctls;
      c.linux.namespaces.push({ type: 'user' });
      // Not the host's root: the child's /proc/self files, owned by the host's, are not its own.
      c.linux.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
      c.linux.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
    });
    // The container's root (host uid 100000) passes through the bundle to its rootfs.
    chmodSync(dir, 0o755);
    const r = runtime(root, ['run', '--bundle', dir, 'o1']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('100\n7\n');
    expect(r.code).toBe(0);
  });

  it("an exec'd process gets the container's oomScoreAdj (as runc's), also in a user namespace, not its caller's", () => {
    const dir = bundle((c) => {
      c.process.args = ['sleep', '30'];
      c.process.oomScoreAdj = 300;
      c.linux.namespaces.push({ type: 'user' });
      c.linux.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
      c.linux.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
    });
    chmodSync(dir, 0o755);
    expect(runtime(root, ['run', '-d', '--bundle', dir, 'x1']).code).toBe(0);
    // Inherited from box-runtime's caller otherwise (containerd's shim runs at -998).
    expect(readFileSync('/proc/self/oom_score_adj', 'utf8')).not.toBe('300\n');
    const exec = runtime(root, ['exec', 'x1', 'cat', '/proc/self/oom_score_adj']);
    expect(exec.stderr).toBe('');
    expect(exec.stdout).toBe('300\n');
    // Whatever a --process file says (runc's exec, too, takes the container's).
    const file = join(dir, 'process.json');
    writeFileSync(
      file,
      JSON.stringify({ args: ['cat', '/proc/self/oom_score_adj'], cwd: '/', oomScoreAdj: -500 }),
    );
    const fromFile = runtime(root, ['exec', '--process', file, 'x1']);
    expect(fromFile.stderr).toBe('');
    expect(fromFile.stdout).toBe('300\n');
    expect(runtime(root, ['delete', '--force', 'x1']).code).toBe(0);
  });

  it("a device's fileMode with file type bits (podman's): the node gets its permission bits, its type from `type`; a listed default node is made once; the image's /dev is not followed", () => {
    const dir = bundle((c) => {
      c.process.args = [
        'sh',
        '-c',
        'busybox stat -c "%F %a %t:%T" /dev/boxnull /dev/boxnull2 /dev/full; readlink /dev/ptmx',
      ];
      c.linux.devices = [
        // S_IFCHR | 0640, as podman sends a host node's st_mode.
        { path: '/dev/boxnull', type: 'c', major: 1, minor: 3, fileMode: 0o20640, uid: 0, gid: 0 },
        // S_IFBLK bits on a "c" device: `type` decides.
        { path: '/dev/boxnull2', type: 'c', major: 1, minor: 3, fileMode: 0o60600, uid: 0, gid: 0 },
        // One of the nodes every container gets, listed as podman's --privileged does: once.
        { path: '/dev/full', type: 'c', major: 1, minor: 7, fileMode: 0o20640, uid: 0, gid: 0 },
        // As runc, /dev/ptmx stays the link to the container's devpts.
        { path: '/dev/ptmx', type: 'c', major: 5, minor: 2, fileMode: 0o20666, uid: 0, gid: 0 },
      ];
    });
    // The image's own /dev (hidden by the tmpfs) sends that path elsewhere: not followed.
    symlinkSync('/etc/placed', join(dir, 'rootfs/dev/boxnull'));
    const r = runtime(root, ['run', '--bundle', dir, 'd1']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(
      'character special file 640 1:3\ncharacter special file 600 1:3\ncharacter special file 640 1:7\npts/ptmx\n',
    );
    expect(r.code).toBe(0);
    expect(existsSync(join(dir, 'rootfs/etc/placed'))).toBe(false);
  });

  it("the container's cgroup in every hierarchy, name=systemd's and the hybrid cgroup2 one too; /sys/fs/cgroup as runc shows it", () => {
    // Without a cgroup namespace, /proc/self/cgroup names each hierarchy's path. A process left
    // in its caller's cgroup in name=systemd or cgroup2 belongs, for systemd, to its caller's
    // unit (containerd.service, a conmon scope): stopping that unit would kill the container.
    const cgroup = `box-e2e-cg-${process.pid}`;
    const dir = bundle((c) => {
      c.process.args = ['sh', '-c', 'cat /proc/self/cgroup; ls /sys/fs/cgroup'];
      c.linux.namespaces = c.linux.namespaces.filter((ns: { type: string }) => ns.type !== 'cgroup');
      c.linux.cgroupsPath = `/${cgroup}/c1`;
      // As `runc spec` has it.
      c.mounts.push({
        destination: '/sys/fs/cgroup',
        type: 'cgroup',
        source: 'cgroup',
        options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'],
      });
    });
    const box = runtime(root, ['run', '--bundle', dir, 'cg1']);
    expect(box.code, box.stderr).toBe(0);
    const lines = box.stdout.trim().split('\n');
    const cgroupLines = lines.filter((line) => /^\d+:/.test(line));
    expect(cgroupLines.length).toBeGreaterThanOrEqual(10);
    for (const line of cgroupLines) expect(line).toMatch(new RegExp(`^\\d+:[^:]*:/${cgroup}/c1$`));
    expect(cgroupLines).toContain(`9:name=systemd:/${cgroup}/c1`);
    expect(cgroupLines).toContain(`0::/${cgroup}/c1`);
    // runc, from the same bundle: the same cgroups, the same hierarchies shown (systemd's, not
    // the cgroup2 one).
    const runcRoot = mkdtempSync(join(tmpdir(), 'box-e2e-runc-root-'));
    try {
      const runc = execFileSync('runc', ['--root', runcRoot, 'run', '--bundle', dir, 'cg1'], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      expect(lines).toEqual(runc.trim().split('\n'));
      expect(lines).toContain('systemd');
      expect(lines).not.toContain('unified');
    } finally {
      rmSync(runcRoot, { recursive: true, force: true });
      // runc leaves the parent it made; box-runtime removed its own with the container.
      for (const hierarchy of readdirSync('/sys/fs/cgroup')) {
        const parent = join('/sys/fs/cgroup', hierarchy, cgroup);
        if (existsSync(parent)) execFileSync('rmdir', [parent]);
      }
    }
  });

  it("delete removes the config's cgroup, never its parents (kubelet's pod and QoS cgroups), as runc; box-runtime's own default parent goes", () => {
    const top = `box-e2e-kubepods-${process.pid}`;
    const hierarchies = readdirSync('/sys/fs/cgroup').filter((h) =>
      existsSync(join('/sys/fs/cgroup', h, 'cgroup.procs')),
    );
    // As kubelet makes them before the pod's containers: the QoS class's and the pod's.
    for (const h of hierarchies)
      mkdirSync(join('/sys/fs/cgroup', h, top, 'besteffort/pod1'), { recursive: true });
    try {
      const dir = bundle((c) => {
        c.process.args = ['true'];
        c.linux.cgroupsPath = `/${top}/besteffort/pod1/c1`;
      });
      expect(runtime(root, ['run', '--bundle', dir, 'k1']).code).toBe(0);
      for (const h of hierarchies) {
        expect(existsSync(join('/sys/fs/cgroup', h, top, 'besteffort/pod1/c1')), h).toBe(false);
        expect(existsSync(join('/sys/fs/cgroup', h, top, 'besteffort/pod1')), h).toBe(true);
      }
    } finally {
      for (const h of hierarchies)
        for (const level of ['besteffort/pod1', 'besteffort', ''])
          if (existsSync(join('/sys/fs/cgroup', h, top, level)))
            execFileSync('rmdir', [join('/sys/fs/cgroup', h, top, level)]);
    }
    // No cgroupsPath: box-runtime/ID, whose parent box-runtime is box-runtime's own.
    const own = bundle((c) => {
      c.process.args = ['true'];
      delete c.linux.cgroupsPath;
    });
    expect(runtime(root, ['run', '--bundle', own, 'k2']).code).toBe(0);
    for (const h of hierarchies) expect(existsSync(join('/sys/fs/cgroup', h, 'box-runtime')), h).toBe(false);
  });

  it('domainname, personality and rootfsPropagation as the config says', () => {
    const script =
      'cat /proc/sys/kernel/domainname; busybox uname -m; busybox awk \'$5 == "/"\' /proc/self/mountinfo';
    const dir = bundle((c) => {
      c.process.args = ['sh', '-c', script];
      c.domainname = 'example.org';
      c.linux.personality = { domain: 'LINUX32' };
    });
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    const withPropagation = (propagation?: string) => {
      writeFileSync(
        join(dir, 'config.json'),
        JSON.stringify({ ...config, linux: { ...config.linux, rootfsPropagation: propagation } }),
      );
      const r = runtime(root, ['run', '--bundle', dir, 'p1']);
      expect(r.code, r.stderr).toBe(0);
      return r.stdout.trim().split('\n');
    };
    // The rootfs its own shared mount on the host (this machine's / is private), so that what
    // its copy in the container's mount namespace follows is visible in its mountinfo.
    const rootfs = join(dir, 'rootfs');
    execFileSync('mount', ['--bind', rootfs, rootfs]);
    try {
      execFileSync('mount', ['--make-shared', rootfs]);
      const [domain, machine, plain] = withPropagation();
      expect(domain).toBe('example.org');
      expect(machine).toBe('i686');
      // Private by default: nothing propagates either way.
      expect(plain).not.toMatch(/ (master|shared):/);
      // A slave of the host's mount: host mounts still propagate in, none out.
      const slave = withPropagation('slave')[2];
      expect(slave).toMatch(/ master:\d+/);
      expect(slave).not.toMatch(/ shared:/);
      // Shared inside the container, and still only a slave of the host's.
      expect(withPropagation('shared')[2]).toMatch(/ shared:\d+ master:\d+/);
    } finally {
      execFileSync('umount', [rootfs]);
    }
  });

  it("ambient capabilities: raised when inheritable and permitted, left out otherwise (as runc's refusals)", () => {
    const dir = bundle((c) => {
      c.process.args = ['grep', 'CapAmb', '/proc/self/status'];
      c.process.capabilities.ambient = ['CAP_KILL', 'CAP_NET_BIND_SERVICE'];
      c.process.capabilities.inheritable = ['CAP_NET_BIND_SERVICE'];
    });
    const r = runtime(root, ['run', '--bundle', dir, 'a1']);
    expect(r.code, r.stderr).toBe(0);
    // Only CAP_NET_BIND_SERVICE (10): CAP_KILL is not inheritable.
    expect(r.stdout.trim()).toMatch(/^CapAmb:\s+0*400$/);
  });

  it('exec adds --env and --cap to the container process, passes --preserve-fds; ps prints ps -ef lines', () => {
    const dir = bundle((c) => {
      c.process.args = ['sleep', '30'];
      c.process.env = ['PATH=/bin', 'A=container'];
    });
    expect(runtime(root, ['run', '-d', '--bundle', dir, 'e1']).code).toBe(0);
    const env = runtime(root, [
      'exec',
      '--env',
      'A=exec',
      '--env',
      'B=2',
      'e1',
      'sh',
      '-c',
      'echo $PATH $A $B',
    ]);
    expect(env.stdout.trim()).toBe('/bin exec 2');
    const caps = (extra: string[]) =>
      runtime(root, ['exec', ...extra, 'e1', 'grep', 'CapEff', '/proc/self/status']).stdout.trim();
    const withAdmin = BigInt(`0x${caps(['--cap', 'CAP_SYS_ADMIN']).split(/\s+/)[1]}`);
    const without = BigInt(`0x${caps([]).split(/\s+/)[1]}`);
    expect(withAdmin & (1n << 21n)).toBe(1n << 21n); // CAP_SYS_ADMIN
    expect(without & (1n << 21n)).toBe(0n);
    expect(withAdmin & without).toBe(without); // added to, not replacing, the container's
    const fd = openSync('/etc/hostname', 'r');
    try {
      const r = runtime(root, ['exec', '--preserve-fds', '1', 'e1', 'readlink', '/proc/self/fd/3'], {
        stdio: ['ignore', 'pipe', 'pipe', fd],
      });
      expect([r.code, r.stdout.trim()]).toEqual([0, '/etc/hostname']);
    } finally {
      closeSync(fd);
    }
    const pid = JSON.parse(runtime(root, ['state', 'e1']).stdout).pid as number;
    const ps = runtime(root, ['ps', 'e1']).stdout.trim().split('\n');
    expect(ps[0]).toMatch(/^UID\s+PID\s+PPID/);
    expect(ps.slice(1).map((line) => Number(line.trim().split(/\s+/)[1]))).toEqual([pid]);
  });
});

describe('bad input: exit 1, one line naming it, nothing made', () => {
  it.each([
    ['wrong type', (c: Config) => (c.process.args = 'sh'), /process\.args: must be array/],
    [
      'unknown namespace',
      (c: Config) => c.linux.namespaces.push({ type: 'time2' }),
      /linux\.namespaces\[\d\]\.type/,
    ],
    [
      'unknown capability',
      (c: Config) => c.process.capabilities.bounding.push('CAP_FLY'),
      /unknown capability "CAP_FLY"/,
    ],
    [
      'bad mount',
      (c: Config) => c.mounts.push({ destination: 'relative', type: 'tmpfs' }),
      /mount destination must be absolute/,
    ],
    ['no ociVersion', (c: Config) => delete c.ociVersion, /ociVersion: missing/],
    ['time offsets', (c: Config) => (c.linux.timeOffsets = { monotonic: { secs: 1 } }), /timeOffsets/],
    ['intelRdt', (c: Config) => (c.linux.intelRdt = { closID: 'x' }), /linux\.intelRdt is not supported/],
    [
      'personality flags',
      (c: Config) => (c.linux.personality = { domain: 'LINUX', flags: ['x'] }),
      /personality\.flags are not supported/,
    ],
    ['bad rootfsPropagation', (c: Config) => (c.linux.rootfsPropagation = 'sideways'), /rootfsPropagation/],
    [
      'domainname without a uts namespace',
      (c: Config) => {
        c.domainname = 'example.org';
        delete c.hostname;
        c.linux.namespaces = c.linux.namespaces.filter((n: { type: string }) => n.type !== 'uts');
      },
      /domainname needs a new uts namespace/,
    ],
  ])('%s', (_, edit, message) => {
    const dir = bundle(edit);
    const r = runtime(root, ['create', '--bundle', dir, 'bad']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(message as RegExp);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(runtimeLeftovers(root)).toEqual([]);
  });

  it('a missing bundle, an id in use, start of a running one, exec in a stopped one, a bad id', async () => {
    const missing = runtime(root, ['create', '--bundle', '/nonexistent-bundle', 'x1']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/config\.json not found/);
    const dir = bundle((c) => {
      c.process.args = ['sleep', '30'];
    });
    expect(runtime(root, ['run', '-d', '--bundle', dir, 'x2']).code).toBe(0);
    const twice = runtime(root, ['create', '--bundle', dir, 'x2']);
    expect([twice.code, twice.stderr.trim()]).toEqual([1, 'container with id exists: x2']);
    expect(runtime(root, ['start', 'x2']).stderr).toMatch(/cannot start an already running container/);
    runtime(root, ['kill', 'x2', '9']);
    await waitFor(() => status('x2') === 'stopped');
    expect(runtime(root, ['exec', 'x2', 'true']).stderr).toMatch(/cannot exec in a stopped container/);
    expect(runtime(root, ['state', '../x']).stderr).toMatch(/invalid container id/);
    expect(runtime(root, ['state', 'nope']).stderr.trim()).toBe('container does not exist: nope');
    expect(runtime(root, ['--systemd-cgroup', 'state', 'x2']).stderr).toMatch(
      /--systemd-cgroup is not supported/,
    );
  });
});

describe('log formats', () => {
  it("writes runc's JSON error records to --log", () => {
    const log = join(root, '..', `box-e2e-runtime-${process.pid}.log`);
    try {
      const r = runtime(root, ['--log', log, '--log-format', 'json', 'state', 'nope']);
      expect(r.code).toBe(1);
      const record = JSON.parse(readFileSync(log, 'utf8').trim());
      expect(record).toMatchObject({ level: 'error', msg: 'container does not exist: nope' });
    } finally {
      rmSync(log, { force: true });
    }
  });
});

describe("box-runtime's and box's builds", () => {
  // A cache V8 rejects is silently compiled from source: the program works, only slower. So the
  // builds' caches are checked here, each against its chunk as the loader wraps it.
  it.each([
    ['box-runtime', dirname(runtimeBin), 'box-runtime.js'],
    ['box', dirname(boxBin), 'box.js'],
  ])('%s ships a V8 code cache for each of its chunks that this Node.js accepts', (_name, dir, entry) => {
    const check = `
      const { readdirSync, readFileSync } = require('node:fs');
      const { wrap } = require('node:module');
      const { Script } = require('node:vm');
      const dir = ${JSON.stringify(dir)};
      const caches = readdirSync(dir).filter((f) => f.endsWith('.cache'));
      const chunks = readdirSync(dir).filter((f) => f.endsWith('.js') && f !== ${JSON.stringify(entry)});
      const rejected = caches.filter((f) => new Script(wrap(readFileSync(dir + '/' + f.slice(0, -6) + '.js', 'utf8')), { cachedData: readFileSync(dir + '/' + f) }).cachedDataRejected);
      console.log(JSON.stringify({ caches: caches.length, chunks: chunks.length, rejected }));`;
    const result = JSON.parse(execFileSync(process.execPath, ['-e', check], { encoding: 'utf8' })) as {
      caches: number;
      chunks: number;
      rejected: string[];
    };
    expect(result.rejected).toEqual([]);
    expect(result.chunks).toBeGreaterThan(5);
    expect(result.caches).toBe(result.chunks);
  });

  it("box-runtime's caches hold every function compiled, box's only what compiling a chunk compiles", () => {
    // A cache made right after compiling holds the chunk's top-level code; one made with every
    // function compiled (tsup.config.ts) is larger, for each chunk with functions in it.
    const check = (dir: string) => `
      const { readdirSync, readFileSync, statSync } = require('node:fs');
      const { wrap } = require('node:module');
      const { Script } = require('node:vm');
      const dir = ${JSON.stringify(dir)};
      let shipped = 0, lazy = 0;
      for (const f of readdirSync(dir).filter((f) => f.endsWith('.cache'))) {
        shipped += statSync(dir + '/' + f).size;
        lazy += new Script(wrap(readFileSync(dir + '/' + f.slice(0, -6) + '.js', 'utf8'))).createCachedData().length;
      }
      console.log(JSON.stringify({ shipped, lazy }));`;
    const sizes = (dir: string) =>
      JSON.parse(execFileSync(process.execPath, ['-e', check(dir)], { encoding: 'utf8' })) as {
        shipped: number;
        lazy: number;
      };
    const runtime = sizes(dirname(runtimeBin));
    expect(runtime.shipped).toBeGreaterThan(2 * runtime.lazy);
    const box = sizes(dirname(boxBin));
    expect(box.shipped).toBeLessThan(1.1 * box.lazy);
  });
});
