/**
 * The security profile seen from inside containers, the way an attacker would look: which
 * system calls docker's default seccomp profile lets through (and that each switch turns it
 * on and off), capabilities, --privileged, no-new-privileges against a setuid binary, ulimits,
 * sysctls, devices, --init, and bad input refused with nothing made. The probe
 * (fixtures/probe.c) issues system calls busybox has no applet for.
 */
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { box, boxOk, useBoxRoot } from '../helpers/box.js';
import { importProbeImage, PROBE_IMAGE } from '../helpers/probe.js';

const env = useBoxRoot({ removeContainers: true });
let removeBuild: () => void;
const profiles = join(tmpdir(), `box-e2e-seccomp-${process.pid}`);

beforeAll(() => {
  removeBuild = importProbeImage(env.root);
  writeFileSync(
    `${profiles}-deny-mkdir.json`,
    JSON.stringify({
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 122 }],
    }),
  );
  writeFileSync(
    `${profiles}-deny-mount-ptrace.json`,
    JSON.stringify({
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [{ names: ['mount', 'ptrace'], action: 'SCMP_ACT_ERRNO' }],
    }),
  );
});

afterAll(() => {
  box(env.root, ['rmi', '-f', PROBE_IMAGE]);
  removeBuild?.();
  for (const name of ['deny-mkdir', 'deny-mount-ptrace', 'bad', 'unknown-syscall', 'fake-setuid'])
    rmSync(`${profiles}-${name}.json`, { force: true });
});

/** `box run --rm [flags] probe COMMAND...` */
function run(flags: string[], ...command: string[]) {
  return box(env.root, ['run', '--rm', ...flags, PROBE_IMAGE, ...command]);
}

/** What the probe printed for a system call: "ok N" or "errno N". */
function probe(flags: string[], ...call: (string | number)[]): string {
  const r = run(flags, '/probe', 'syscall', ...call.map(String));
  expect(r.stderr).toBe('');
  return r.stdout.trim();
}

const UNCONFINED = ['--security-opt', 'seccomp=unconfined'];
const SYS = { ptrace: 101, mount: 165, keyctl: 250, unshare: 272, mkdir: 83 };
const CLONE_NEWUSER_NEWNS = '0x10020000';

describe("seccomp: docker's default profile, and seccomp=unconfined", () => {
  it('a new user and mount namespace, and a tmpfs in it: refused by default, possible unconfined', () => {
    expect(probe([], SYS.unshare, CLONE_NEWUSER_NEWNS)).toBe('errno 1');
    const script = 'mount -t tmpfs none /tmp && echo mounted';
    const confined = run([], 'unshare', '-U', '-m', '-r', 'sh', '-c', script);
    expect(confined.stdout).not.toContain('mounted');
    expect(confined.stderr).toMatch(/Operation not permitted/);
    expect(probe(UNCONFINED, SYS.unshare, CLONE_NEWUSER_NEWNS)).toBe('ok 0');
    const free = run(UNCONFINED, 'unshare', '-U', '-m', '-r', 'sh', '-c', script);
    expect(free.stdout.trim(), free.stderr).toBe('mounted');
  });

  it('keyctl: refused by default, allowed unconfined', () => {
    // keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, create)
    expect(probe([], SYS.keyctl, 0, -3, 1)).toBe('errno 1');
    expect(probe(UNCONFINED, SYS.keyctl, 0, -3, 1)).toMatch(/^ok \d+$/);
  });

  it('mount: refused by default; with CAP_SYS_ADMIN the profile lets it through (as docker), a profile that denies it still refuses', () => {
    const mount = ['mount', '-t', 'tmpfs', 'none', '/tmp'];
    expect(run([], ...mount).code).not.toBe(0);
    // The kernel's own refusal (no CAP_SYS_ADMIN) is EPERM too: unconfined alone is not enough.
    expect(run(UNCONFINED, ...mount).code).not.toBe(0);
    const admin = run(['--cap-add', 'SYS_ADMIN'], 'sh', '-c', 'mount -t tmpfs none /tmp && echo mounted');
    expect(admin.stdout.trim(), admin.stderr).toBe('mounted');
    const denied = run(
      ['--cap-add', 'SYS_ADMIN', '--security-opt', `seccomp=${profiles}-deny-mount-ptrace.json`],
      ...mount,
    );
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toMatch(/Operation not permitted|permission denied/i);
  });

  it('ptrace as docker on a kernel from 4.8: allowed; a profile that denies it refuses it', () => {
    expect(run([], '/probe', 'ptrace-child').stdout.trim()).toBe('ok 0');
    const denied = run(
      ['--security-opt', `seccomp=${profiles}-deny-mount-ptrace.json`],
      '/probe',
      'ptrace-child',
    );
    expect(denied.stdout.trim()).toBe('errno 1');
  });

  it("a custom profile that denies mkdir makes mkdir fail with the profile's errno", () => {
    const r = run(['--security-opt', `seccomp=${profiles}-deny-mkdir.json`], 'mkdir', '/tmp/x');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/Disk quota exceeded/);
    expect(probe(['--security-opt', `seccomp=${profiles}-deny-mkdir.json`], SYS.mkdir, 0)).toBe('errno 122');
  });

  it('the filter is on by default and off with unconfined or --privileged', () => {
    const mode = (flags: string[]) =>
      run(flags, 'grep', '^Seccomp:', '/proc/self/status').stdout.split(/\s+/)[1];
    expect(mode([])).toBe('2');
    expect(mode(UNCONFINED)).toBe('0');
    expect(mode(['--privileged'])).toBe('0');
  });

  it('box exec runs under the container’s profile too', () => {
    const id = boxOk(env.root, ['run', '-d', PROBE_IMAGE, 'sleep', '30']);
    const r = box(env.root, ['exec', id, '/probe', 'syscall', String(SYS.keyctl), '0', '-3', '1']);
    expect(r.stdout.trim()).toBe('errno 1');
    boxOk(env.root, ['rm', '-f', id]);
  });
});

describe('capabilities and --privileged', () => {
  it('--cap-drop ALL --cap-add NET_BIND_SERVICE: that one capability', () => {
    const r = run(
      ['--cap-drop', 'ALL', '--cap-add', 'NET_BIND_SERVICE'],
      'grep',
      '^Cap',
      '/proc/self/status',
    );
    expect(r.stdout).toMatch(/CapEff:\s+0000000000000400/);
    expect(r.stdout).toMatch(/CapBnd:\s+0000000000000400/);
  });

  it("--privileged: every capability box holds, the host's devices, nothing masked, and mount works", () => {
    const own = /^CapPrm:\s*(\S+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))![1];
    const r = run(
      ['--privileged'],
      'sh',
      '-c',
      'grep ^CapEff /proc/self/status; ls -l /dev/kmsg; grep -c " /proc/keys " /proc/self/mountinfo; mount -t tmpfs none /tmp && echo mounted',
    );
    expect(r.stdout).toContain(`CapEff:\t${own}`);
    expect(r.stdout).toMatch(/^c.* 1,\s+11 .*\/dev\/kmsg$/m);
    expect(r.stdout).toMatch(/^0$/m);
    expect(r.stdout).toContain('mounted');
    const plain = run([], 'sh', '-c', 'ls /dev/kmsg; grep -c " /proc/keys " /proc/self/mountinfo');
    expect(plain.stdout.trim()).toBe('1');
    expect(plain.stderr).toMatch(/No such file/);
  });
});

describe('--security-opt no-new-privileges', () => {
  it('a setuid-root binary raises a user to root without it, and not with it', () => {
    expect(run(['-u', 'nobody'], '/probe-suid', 'euid').stdout.trim()).toBe('0');
    expect(
      run(['-u', 'nobody', '--security-opt', 'no-new-privileges'], '/probe-suid', 'euid').stdout.trim(),
    ).toBe('65534');
  });
});

describe('--ulimit, --sysctl, --oom-score-adj, --group-add, --shm-size', () => {
  it('--ulimit nofile=1024:2048 sets the soft and hard limits', () => {
    expect(run(['--ulimit', 'nofile=1024:2048'], 'sh', '-c', 'ulimit -n; ulimit -Hn').stdout).toBe(
      '1024\n2048\n',
    );
  });

  it('--sysctl net.ipv4.ip_forward=1 changes the container only', () => {
    const host = readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8');
    const value = host.trim() === '1' ? '0' : '1';
    const r = run(['--sysctl', `net.ipv4.ip_forward=${value}`], 'cat', '/proc/sys/net/ipv4/ip_forward');
    expect(r.stdout.trim(), r.stderr).toBe(value);
    expect(readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8')).toBe(host);
    expect(run(['--sysctl', 'kernel.shmmax=1048576'], 'cat', '/proc/sys/kernel/shmmax').stdout.trim()).toBe(
      '1048576',
    );
  });

  it('--oom-score-adj, --group-add and --shm-size', () => {
    expect(run(['--oom-score-adj', '500'], 'cat', '/proc/self/oom_score_adj').stdout.trim()).toBe('500');
    // The process the container starts from keeps its own: the kernel gives a value written for
    // one process to all that share its memory, so a child sharing box's gave box the container's.
    const id = boxOk(env.root, ['run', '-d', '--oom-score-adj', '700', PROBE_IMAGE, 'sleep', '30']).trim();
    const pid = boxOk(env.root, ['inspect', '-f', '{{.State.Pid}}', id]).trim();
    const parent = /^PPid:\s+(\d+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    expect(readFileSync(`/proc/${pid}/oom_score_adj`, 'utf8')).toBe('700\n');
    expect(readFileSync(`/proc/${parent}/oom_score_adj`, 'utf8')).toBe(
      readFileSync('/proc/self/oom_score_adj', 'utf8'),
    );
    // An exec'd process gets the container's too (as under docker), and box's service still
    // keeps its own.
    expect(boxOk(env.root, ['exec', id, 'cat', '/proc/self/oom_score_adj']).trim()).toBe('700');
    expect(readFileSync(`/proc/${parent}/oom_score_adj`, 'utf8')).toBe(
      readFileSync('/proc/self/oom_score_adj', 'utf8'),
    );
    boxOk(env.root, ['rm', '-f', id]);
    expect(run(['--group-add', 'audio', '--group-add', '1234'], 'id', '-G').stdout.trim()).toBe('0 29 1234');
    const df = run(['--shm-size', '2m'], 'sh', '-c', 'grep " /dev/shm " /proc/self/mounts').stdout;
    expect(df).toMatch(/size=2048k/);
  });
});

describe('--device and --device-cgroup-rule', () => {
  it('--device makes the node and allows it; without it the node is absent', () => {
    const r = run(
      ['--device', '/dev/fuse:/dev/myfuse'],
      'sh',
      '-c',
      'ls -l /dev/myfuse; cat /dev/myfuse; echo $?',
    );
    expect(r.stdout).toMatch(/^c.* 10,\s+229 .*\/dev\/myfuse$/m);
    // Reading /dev/fuse unmounted fails with EPERM from the driver, not from the cgroup (EPERM
    // too): read-only permission then refuses the open itself.
    const ro = run(['--device', '/dev/fuse:/dev/myfuse:r'], 'sh', '-c', 'echo x > /dev/myfuse');
    expect(ro.stderr).toMatch(/Operation not permitted/);
    expect(run([], 'ls', '/dev/fuse').code).not.toBe(0);
  });

  it('--device-cgroup-rule allows a node made in the container', () => {
    // /dev/fuse's numbers: a node anyone may open, unless the devices cgroup says no.
    const script = 'mknod /tmp/fuse c 10 229 && head -c 0 /tmp/fuse && echo readable';
    const denied = run([], 'sh', '-c', script);
    expect(denied.stdout).not.toContain('readable');
    expect(denied.stderr).toMatch(/Operation not permitted/);
    expect(run(['--device-cgroup-rule', 'c 10:229 r'], 'sh', '-c', script).stdout.trim()).toBe('readable');
  });
});

describe('--init', () => {
  /** Zombies in a container, read from its /proc through box exec. */
  function zombies(id: string): number {
    const r = box(env.root, ['exec', id, 'sh', '-c', 'cat /proc/[0-9]*/stat']);
    return (r.stdout.match(/\) Z /g) ?? []).length;
  }

  it('reaps an orphaned zombie that a PID 1 which never waits leaves behind', async () => {
    const script = '(sleep 0.2 &); exec sleep 30';
    const plain = boxOk(env.root, ['run', '-d', PROBE_IMAGE, 'sh', '-c', script]);
    const init = boxOk(env.root, ['run', '-d', '--init', PROBE_IMAGE, 'sh', '-c', script]);
    await new Promise((r) => setTimeout(r, 1000));
    expect(zombies(plain)).toBe(1);
    expect(zombies(init)).toBe(0);
    const cmdline = box(env.root, ['exec', init, 'cat', '/proc/1/cmdline']).stdout.split('\0');
    expect(cmdline[0]).toContain('init');
    boxOk(env.root, ['rm', '-f', plain, init]);
  });

  it('passes the exit status through and forwards signals', () => {
    expect(run(['--init'], 'sh', '-c', 'exit 7').code).toBe(7);
    const id = boxOk(env.root, [
      'run',
      '-d',
      '--init',
      PROBE_IMAGE,
      'sh',
      '-c',
      'trap "exit 3" TERM; while true; do sleep 0.1; done',
    ]);
    boxOk(env.root, ['stop', '-t', '10', id]);
    expect(boxOk(env.root, ['inspect', '-f', '{{.State.ExitCode}}', id])).toBe('3');
    boxOk(env.root, ['rm', id]);
  });
});

describe('box inspect', () => {
  it('shows the effective settings', () => {
    const id = boxOk(env.root, [
      'create',
      '--security-opt',
      'seccomp=unconfined',
      '--ulimit',
      'nofile=100:200',
      '--sysctl',
      'net.ipv4.ip_forward=1',
      '--oom-score-adj',
      '10',
      '--group-add',
      'audio',
      '--init',
      '--shm-size',
      '1m',
      '--device',
      '/dev/fuse',
      '--device-cgroup-rule',
      'c 1:11 r',
      PROBE_IMAGE,
      'true',
    ]);
    const host = JSON.parse(boxOk(env.root, ['inspect', '-f', '{{json .HostConfig}}', id]));
    expect(host).toMatchObject({
      Privileged: false,
      SecurityOpt: ['seccomp=unconfined'],
      Ulimits: [{ Name: 'nofile', Soft: 100, Hard: 200 }],
      Sysctls: { 'net.ipv4.ip_forward': '1' },
      OomScoreAdj: 10,
      GroupAdd: ['audio'],
      Init: true,
      ShmSize: 1048576,
      Devices: [{ PathOnHost: '/dev/fuse', PathInContainer: '/dev/fuse', CgroupPermissions: 'rwm' }],
      DeviceCgroupRules: ['c 1:11 r'],
    });
    boxOk(env.root, ['rm', id]);
  });
});

describe('bad input: one line naming it, exit 125, nothing made', () => {
  beforeAll(() => {
    writeFileSync(`${profiles}-bad.json`, '{"defaultAction": "SCMP_ACT_ALLOW",');
    writeFileSync(
      `${profiles}-fake-setuid.json`,
      JSON.stringify({
        defaultAction: 'SCMP_ACT_ALLOW',
        syscalls: [{ names: ['setresuid', 'capset'], action: 'SCMP_ACT_ERRNO', errnoRet: 0 }],
      }),
    );
    writeFileSync(
      `${profiles}-unknown-syscall.json`,
      JSON.stringify({
        defaultAction: 'SCMP_ACT_ALLOW',
        syscalls: [{ names: ['mkdirr'], action: 'SCMP_ACT_ERRNO' }],
      }),
    );
  });

  it.each([
    [['--cap-add', 'CAP_FLY'], /unknown capability: "CAP_FLY"/],
    [
      ['--security-opt', `seccomp=${profiles}-unknown-syscall.json`],
      /syscalls\[0\]\.names\[0\].*unknown syscall "mkdirr"/,
    ],
    [['--security-opt', `seccomp=${profiles}-bad.json`], /seccomp profile .*bad\.json/],
    [['--security-opt', `seccomp=${profiles}-fake-setuid.json`], /errnoRet 0 for "setresuid"/],
    [['--security-opt', `seccomp=${profiles}-missing.json`], /no such file or directory/],
    [['--sysctl', 'kernel.panic=1'], /sysctl "kernel.panic" is not in a separate kernel namespace/],
    [['--sysctl', 'net.ipv4/../../x=1'], /invalid sysctl name/],
    [
      ['--device', '/dev/does-not-exist'],
      /error gathering device information .*"\/dev\/does-not-exist": no such file/,
    ],
    [['--device-cgroup-rule', 'c 1:3'], /invalid device cgroup format 'c 1:3'/],
    [['--ulimit', 'nofile=1024:999999999'], /--ulimit nofile: hard limit 999999999 is above/],
    [['--ulimit', 'flies=1'], /invalid ulimit type: flies/],
    [['--oom-score-adj', '1001'], /range for oom score adj is \[-1000, 1000\]/],
    [['--oom-score-adj', '-10'], /CAP_SYS_RESOURCE/],
    [['--group-add', 'wheel'], /Unable to find group wheel/],
  ])('%j', (flags, message) => {
    const r = box(env.root, ['run', '--rm', ...(flags as string[]), PROBE_IMAGE, 'true']);
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(message as RegExp);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(readdirSync(join(env.root, 'containers'))).toEqual([]);
  });
});
