import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { box, boxOk, useBoxRoot } from '../helpers/box.js';

const env = useBoxRoot({ removeContainers: true });
let host: string;

beforeAll(() => {
  host = mkdtempSync(join(tmpdir(), 'box-volumes-'));
});
afterAll(() => {
  rmSync(host, { recursive: true, force: true });
});

const ok = (args: string[]) => boxOk(env.root, args);

describe('volumes and mounts', () => {
  it('named volumes are made on first use and persist across containers', () => {
    ok(['run', '--rm', '-v', 'data:/data', 'busybox', 'sh', '-c', 'echo kept > /data/f']);
    expect(ok(['run', '--rm', '-v', 'data:/mnt/other', 'busybox', 'cat', '/mnt/other/f'])).toBe('kept');
    expect(ok(['volume', 'ls', '-q'])).toBe('data');
    const info = JSON.parse(ok(['volume', 'inspect', 'data']))[0];
    expect(info).toMatchObject({ Name: 'data', Driver: 'local' });
    expect(readFileSync(join(info.Mountpoint, 'f'), 'utf8')).toBe('kept\n');
    ok(['volume', 'rm', 'data']);
    expect(ok(['volume', 'ls', '-q'])).toBe('');
  });

  it('binds host paths, read-only with :ro, and many at once', () => {
    writeFileSync(join(host, 'in'), 'from host\n');
    mkdirSync(join(host, 'rw'), { recursive: true });
    const r = box(env.root, [
      'run',
      '--rm',
      '-v',
      `${host}:/ro:ro`,
      '-v',
      `${join(host, 'rw')}:/rw`,
      '--mount',
      `type=bind,source=${join(host, 'in')},target=/etc/in.txt,readonly`,
      'busybox',
      'sh',
      '-c',
      'cat /ro/in /etc/in.txt; echo w > /rw/out; touch /ro/nope',
    ]);
    expect(r.stdout).toBe('from host\nfrom host\n');
    expect(r.stderr).toContain('Read-only file system');
    expect(readFileSync(join(host, 'rw/out'), 'utf8')).toBe('w\n');
    expect(existsSync(join(host, 'nope'))).toBe(false);
  });

  it('tmpfs mounts and a read-only root', () => {
    const r = box(env.root, [
      'run',
      '--rm',
      '--read-only',
      '--tmpfs',
      '/run:size=1m',
      '--mount',
      'type=tmpfs,target=/cache,tmpfs-size=2m',
      'busybox',
      'sh',
      '-c',
      'echo a > /run/a && echo b > /cache/b && cat /run/a /cache/b; touch /root/x; grep -E " /run | /cache " /proc/mounts',
    ]);
    expect(r.stdout).toMatch(/^a\nb\n/);
    expect(r.stdout).toMatch(/tmpfs \/run tmpfs .*size=1024k/);
    expect(r.stdout).toMatch(/tmpfs \/cache tmpfs .*size=2048k/);
    expect(r.stderr).toContain('Read-only file system');
  });

  it("a mount of the user's replaces box's default there: -v /dev:/dev takes /dev and all below it, --tmpfs /dev/shm its shm", () => {
    const dev = box(env.root, [
      'run',
      '--rm',
      '-v',
      '/dev:/dev',
      'busybox',
      'sh',
      '-c',
      'test -c /dev/null && test -e /dev/tty1 && grep -c " /dev" /proc/self/mountinfo',
    ]);
    expect(dev.stderr).toBe('');
    expect(dev.code).toBe(0);
    // The host's /dev (with its own pts, shm, mqueue below it, as the host mounts them), not box's tmpfs.
    const shown = box(env.root, [
      'run',
      '--rm',
      '-v',
      '/dev:/dev',
      'busybox',
      'grep',
      ' /dev ',
      '/proc/self/mountinfo',
    ]);
    expect(shown.stdout).not.toMatch(/ \/dev \S+ - tmpfs /);
    const shm = boxOk(env.root, [
      'run',
      '--rm',
      '--tmpfs',
      '/dev/shm:size=1m',
      'busybox',
      'grep',
      '-c',
      ' /dev/shm ',
      '/proc/self/mountinfo',
    ]);
    expect(shm).toBe('1');
  });

  it('a symlink in the image cannot send a mount onto the host', () => {
    // An image whose /data is a symlink to / (and /escape to ../../..).
    const rootfs = join(host, 'evil-rootfs');
    mkdirSync(join(rootfs, 'bin'), { recursive: true });
    spawnSync('cp', ['/bin/busybox', join(rootfs, 'bin/busybox')]);
    for (const applet of ['sh', 'cat', 'ls', 'mount', 'grep'])
      symlinkSync('busybox', join(rootfs, 'bin', applet));
    for (const dir of ['proc', 'dev', 'sys', 'etc']) mkdirSync(join(rootfs, dir));
    symlinkSync('/etc', join(rootfs, 'data'));
    symlinkSync('../../../../tmp', join(rootfs, 'escape'));
    const tarball = join(host, 'evil.tar');
    expect(spawnSync('tar', ['-cf', tarball, '-C', rootfs, '.']).status).toBe(0);
    ok(['import', '-c', 'ENV PATH=/bin', tarball, 'evil']);
    writeFileSync(join(host, 'marker'), 'marker\n');
    const r = box(env.root, [
      'run',
      '--rm',
      '-v',
      `${host}:/data/x`,
      '-v',
      `${host}:/escape/y`,
      'evil',
      'sh',
      '-c',
      'cat /etc/x/marker /tmp/y/marker; grep -c " /etc/x \\| /tmp/y " /proc/mounts',
    ]);
    expect(r.code, r.stderr).toBe(0);
    // Both land inside the container (its /etc and /tmp), never on the host's.
    expect(r.stdout).toBe('marker\nmarker\n2\n');
    expect(existsSync('/etc/x')).toBe(false);
    expect(existsSync('/tmp/y')).toBe(false);
    ok(['rmi', 'evil']);
  });

  it('runs a command that lives on a -v mount or a named volume, by path and through PATH', () => {
    const tools = join(host, 'tools');
    mkdirSync(tools);
    writeFileSync(join(tools, 'hello'), '#!/bin/sh\necho "hello from $0 $*"\nexit 3\n', { mode: 0o755 });
    writeFileSync(join(tools, 'plain'), '#!/bin/sh\n', { mode: 0o644 });
    symlinkSync('/usr/bin/env', join(tools, 'host-env')); // the container has no /usr/bin/env
    const run = (args: string[]) => box(env.root, ['run', '--rm', ...args]);

    const byPath = run(['-v', `${tools}:/opt/tools:ro`, 'busybox', '/opt/tools/hello', 'a']);
    expect(byPath).toMatchObject({ code: 3, stdout: 'hello from /opt/tools/hello a\n' });
    const byName = run(['-v', `${tools}:/opt/tools`, '-e', 'PATH=/opt/tools:/bin', 'busybox', 'hello']);
    expect(byName).toMatchObject({ code: 3, stdout: 'hello from /opt/tools/hello \n' });
    expect(run(['-v', `${tools}:/opt/tools`, 'busybox', '/opt/tools/plain']).code).toBe(126);
    expect(run(['-v', `${tools}:/opt/tools`, 'busybox', '/opt/tools/missing']).code).toBe(127);
    // A symlink on the mount is followed inside the container, not on the host.
    expect(run(['-v', `${tools}:/opt/tools`, 'busybox', '/opt/tools/host-env']).code).toBe(127);

    ok([
      'run',
      '--rm',
      '-v',
      'scripts:/s',
      'busybox',
      'sh',
      '-c',
      'printf "#!/bin/sh\\necho in-volume\\n" > /s/go; chmod +x /s/go',
    ]);
    expect(run(['-v', 'scripts:/vol', 'busybox', '/vol/go'])).toMatchObject({
      code: 0,
      stdout: 'in-volume\n',
    });
    expect(run(['-v', 'scripts:/vol', '-w', '/vol', 'busybox', './go'])).toMatchObject({
      code: 0,
      stdout: 'in-volume\n',
    });
    ok(['volume', 'rm', 'scripts']);
  });

  it('anonymous volumes go with rm -v and --rm; a volume in use cannot be removed', () => {
    ok(['run', '--name', 'anon', '-v', '/scratch', 'busybox', 'true']);
    expect(ok(['volume', 'ls', '-q']).split('\n')).toHaveLength(1);
    ok(['run', '--name', 'user', '-v', 'busyvol:/v', 'busybox', 'true']);
    const r = box(env.root, ['volume', 'rm', 'busyvol']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/volume is in use by container\(s\) user/);
    ok(['rm', '-v', 'anon', 'user']);
    expect(ok(['volume', 'ls', '-q'])).toBe('busyvol');
    ok(['volume', 'rm', 'busyvol']);
    ok(['run', '--rm', '-v', '/scratch', 'busybox', 'true']);
    expect(ok(['volume', 'ls', '-q'])).toBe('');
  });

  it('rm -v keeps an anonymous volume another container uses, as docker keeps it', () => {
    ok(['create', '--name', 'maker', '-v', '/shared', 'busybox', 'true']);
    const volume = ok(['volume', 'ls', '-q']);
    expect(volume).toMatch(/^[0-9a-f]{64}$/);
    // A running container that uses it too: its files are that container's as well, and it
    // could change the tree while a removal walks it.
    const user = ok(['run', '-d', '--name', 'sharer', '-v', `${volume}:/data`, 'busybox', 'sleep', '60']);
    ok(['exec', user, 'sh', '-c', 'echo mine > /data/f']);
    ok(['rm', '-v', 'maker']);
    expect(ok(['volume', 'ls', '-q'])).toBe(volume);
    expect(ok(['exec', user, 'cat', '/data/f'])).toBe('mine');
    // Once nobody uses it, it goes as any unused anonymous volume.
    ok(['rm', '-f', 'sharer']);
    expect(ok(['volume', 'prune', '-f'])).toContain(volume);
    expect(ok(['volume', 'ls', '-q'])).toBe('');
  });

  it("a container's tree deeper than Node's rmSync can walk, in its layer and in a volume, goes with rm and volume rm", () => {
    // 2000 levels, each made relative to the last, as any process can.
    const deep = 'i=0; while [ $i -lt 2000 ]; do mkdir a && cd a || exit 1; i=$((i+1)); done; echo x > f';
    ok([
      'run',
      '--name',
      'deep',
      '-v',
      'deepvol:/v',
      'busybox',
      'sh',
      '-c',
      `cd / && (${deep}) && cd /v && (${deep})`,
    ]);
    ok(['rm', 'deep']);
    expect(box(env.root, ['inspect', 'deep']).code).toBe(1);
    expect(ok(['ps', '-aq'])).toBe('');
    ok(['volume', 'rm', 'deepvol']);
    expect(ok(['volume', 'ls', '-q'])).toBe('');
  });
});

describe('bad volume input: one line, exit 125, nothing made', () => {
  it.each([
    [['--mount', 'type=bind,source=/does/not/exist,target=/x'], /bind source path does not exist/],
    [['-v', 'relative/path:/x'], /is not absolute|invalid characters/],
    [['-v', `/tmp:relative`], /container path "relative" is not absolute/],
    [['-v', '/tmp:/x:bogus'], /invalid mode: bogus/],
    [['--mount', 'type=nfs,target=/x'], /unknown type "nfs"/],
    [['--mount', 'type=bind,target=/x'], /source is required/],
    [['--tmpfs', '/x:evil=1'], /invalid --tmpfs option/],
    [['-v', 'ok-vol:/a', '-v', '/tmp:/a'], /Duplicate mount point: \/a/],
  ])('%j', (flags, message) => {
    const r = box(env.root, ['run', '--rm', ...(flags as string[]), 'busybox', 'true']);
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(message);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(box(env.root, ['volume', 'ls', '-q']).stdout).toBe('');
  });
});
