/**
 * What a docker user gives `run` and `create` (the docker CLI issue), as docker answers it:
 * labels and the filters on them, stop signals and timeouts, missing bind sources and working
 * directories, foreign platforms. One row per habit.
 */
import {
  existsSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { box, boxOk, useBoxRoot } from '../helpers/box.js';

const env = useBoxRoot({ removeContainers: true });
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'box-e2e-create-habits-'));
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('--label and --label-file', () => {
  it("labels over the image's: inspect's Config.Labels, ps's {{.Labels}} and {{.Label}}, ps --filter label", () => {
    boxOk(env.root, ['create', '--name', 'label-base', 'busybox', 'true']);
    boxOk(env.root, [
      'commit',
      '-c',
      'LABEL tier=image',
      '-c',
      'LABEL from.image=yes',
      'label-base',
      'labelled:1',
    ]);
    boxOk(env.root, ['rm', 'label-base']);
    const file = join(dir, 'labels');
    writeFileSync(file, '# comment\n\nteam=storage\nbare\nowner=file\n');
    boxOk(env.root, [
      'create',
      '--name',
      'lab-a',
      '--label-file',
      file,
      '--label',
      'owner=flag',
      '-l',
      'tier=web',
      'labelled:1',
      'true',
    ]);
    boxOk(env.root, ['create', '--name', 'lab-b', '--label', 'tier=db', 'busybox', 'true']);
    expect(JSON.parse(boxOk(env.root, ['inspect', '-f', '{{json .Config.Labels}}', 'lab-a']))).toEqual({
      'from.image': 'yes',
      tier: 'web',
      team: 'storage',
      bare: '',
      owner: 'flag',
    });
    expect(boxOk(env.root, ['inspect', '-f', '{{json .Config.Labels}}', 'lab-b'])).toBe('{"tier":"db"}');
    expect(boxOk(env.root, ['ps', '-a', '--filter', 'name=lab-a', '--format', '{{.Labels}}'])).toBe(
      'bare=,from.image=yes,owner=flag,team=storage,tier=web',
    );
    expect(
      boxOk(env.root, ['ps', '-a', '--filter', 'name=lab-', '--format', '{{.Names}} {{.Label "tier"}}'])
        .split('\n')
        .sort(),
    ).toEqual(['lab-a web', 'lab-b db']);
    const names = (...filters: string[]) =>
      boxOk(env.root, ['ps', '-a', '--format', '{{.Names}}', ...filters.flatMap((f) => ['--filter', f])])
        .split('\n')
        .filter(Boolean)
        .sort();
    expect(names('label=tier')).toEqual(['lab-a', 'lab-b']);
    expect(names('label=tier=db')).toEqual(['lab-b']);
    expect(names('label=bare')).toEqual(['lab-a']);
    // Every label filter must match.
    expect(names('label=tier', 'label=team=storage')).toEqual(['lab-a']);
    expect(names('label=tier=db', 'label=team')).toEqual([]);
  });

  it('a label with an empty name or a missing --label-file: one line, exit 125, nothing made', () => {
    const empty = box(env.root, ['create', '--label', '=x', 'busybox', 'true']);
    expect([empty.code, empty.stderr.trim()]).toEqual([
      125,
      `box: invalid argument "=x" for "-l, --label" flag: invalid label '=x': empty name`,
    ]);
    const missing = box(env.root, ['run', '--rm', '--label-file', join(dir, 'nope'), 'busybox', 'true']);
    expect([missing.code, missing.stderr.trim()]).toEqual([
      125,
      `box: open ${join(dir, 'nope')}: no such file or directory`,
    ]);
    expect(boxOk(env.root, ['ps', '-aq'])).toBe('');
  });
});

describe('images --filter', () => {
  it('dangling, label, reference (path.Match), before, since and until; an unknown key is refused', () => {
    // Three images made one after the other: labelled:1 (above), then two more.
    boxOk(env.root, ['create', '--name', 'img-base', 'busybox', 'true']);
    boxOk(env.root, ['commit', '-c', 'LABEL kind=second', 'img-base', 'second:1']);
    boxOk(env.root, ['commit', '-c', 'LABEL kind=untagged', 'img-base']);
    boxOk(env.root, ['rm', 'img-base']);
    const listed = (...filters: string[]) =>
      boxOk(env.root, [
        'images',
        '--format',
        '{{.Repository}}:{{.Tag}}',
        ...filters.flatMap((f) => ['--filter', f]),
      ])
        .split('\n')
        .filter(Boolean)
        .sort();
    expect(listed('dangling=true')).toEqual(['<none>:<none>']);
    expect(listed('dangling=false')).toEqual(['busybox:latest', 'labelled:1', 'second:1']);
    expect(listed('label=kind')).toEqual(['<none>:<none>', 'second:1']);
    expect(listed('label=kind=second')).toEqual(['second:1']);
    expect(listed('label=tier=image')).toEqual(['labelled:1']);
    expect(listed('reference=*:1')).toEqual(['labelled:1', 'second:1']);
    expect(listed('reference=busy*')).toEqual(['busybox:latest']);
    expect(listed('reference=lab*', 'reference=sec*')).toEqual(['labelled:1', 'second:1']);
    expect(listed('since=labelled:1', 'dangling=false')).toEqual(['second:1']);
    expect(listed('before=second:1')).toEqual(['busybox:latest', 'labelled:1']);
    // until: images made before a time (docker's forms); these were all made just now.
    expect(listed('until=2099-01-01', 'dangling=false')).toEqual([
      'busybox:latest',
      'labelled:1',
      'second:1',
    ]);
    expect(listed('until=1h')).toEqual([]);
    const badTime = box(env.root, ['images', '--filter', 'until=yesterday']);
    expect([badTime.code, badTime.stderr.trim()]).toEqual([
      125,
      'box: failed to parse value as time or duration: "yesterday"',
    ]);
    const bad = box(env.root, ['images', '--filter', 'colour=red']);
    expect([bad.code, bad.stderr.trim()]).toEqual([125, "box: invalid filter 'colour'"]);
  });
});

describe('--stop-signal and --stop-timeout', () => {
  /** A container that says which signal reached it and exits with `code`. */
  const trapping = (signal: string, code: number) => [
    'sh',
    '-c',
    `trap "echo got-${signal}; exit ${code}" ${signal}; trap "" TERM; echo ready; while :; do sleep 0.1; done`,
  ];
  const waitReady = async (name: string) => {
    for (let i = 0; i < 100 && !boxOk(env.root, ['logs', name]).includes('ready'); i++)
      await new Promise((r) => setTimeout(r, 50));
  };

  it("stop and restart send the container's stop signal, or the image's StopSignal; inspect shows them", async () => {
    boxOk(env.root, [
      'run',
      '-d',
      '--name',
      'sig-usr1',
      '--stop-signal',
      'SIGUSR1',
      ...['busybox'],
      ...trapping('USR1', 3),
    ]);
    boxOk(env.root, ['create', '--name', 'sig-base', 'busybox', 'true']);
    boxOk(env.root, ['commit', '-c', 'STOPSIGNAL USR2', 'sig-base', 'stops-usr2:1']);
    boxOk(env.root, ['rm', 'sig-base']);
    boxOk(env.root, [
      'run',
      '-d',
      '--name',
      'sig-image',
      '--stop-timeout',
      '7',
      'stops-usr2:1',
      ...trapping('USR2', 4),
    ]);
    expect(
      boxOk(env.root, ['inspect', '-f', '{{.Config.StopSignal}} {{.Config.StopTimeout}}', 'sig-image']),
    ).toBe('USR2 7');
    expect(boxOk(env.root, ['inspect', '-f', '{{.Config.StopSignal}}', 'sig-usr1'])).toBe('SIGUSR1');
    await waitReady('sig-usr1');
    await waitReady('sig-image');
    boxOk(env.root, ['stop', 'sig-usr1', 'sig-image']);
    expect(boxOk(env.root, ['inspect', '-f', '{{.State.ExitCode}}', 'sig-usr1', 'sig-image'])).toBe('3\n4');
    expect(boxOk(env.root, ['logs', 'sig-usr1'])).toContain('got-USR1');
    // restart stops the same way.
    boxOk(env.root, ['start', 'sig-usr1']);
    await waitReady('sig-usr1');
    boxOk(env.root, ['restart', 'sig-usr1']);
    expect(
      boxOk(env.root, ['logs', 'sig-usr1'])
        .split('\n')
        .filter((l) => l === 'got-USR1'),
    ).toHaveLength(2);
    expect(boxOk(env.root, ['inspect', '-f', '{{.State.Running}}', 'sig-usr1'])).toBe('true');
    // Without them: neither key in Config, as docker leaves them out.
    boxOk(env.root, ['create', '--name', 'sig-none', 'busybox', 'true']);
    expect(boxOk(env.root, ['inspect', '-f', '{{json .Config}}', 'sig-none'])).not.toMatch(
      /StopSignal|StopTimeout/,
    );
  });

  it('--stop-timeout bounds the wait before SIGKILL; stop -t overrides it', async () => {
    boxOk(env.root, [
      'run',
      '-d',
      '--name',
      'slow-short',
      '--stop-timeout',
      '1',
      'busybox',
      ...trapping('USR1', 3),
    ]);
    boxOk(env.root, [
      'run',
      '-d',
      '--name',
      'slow-long',
      '--stop-timeout',
      '60',
      'busybox',
      ...trapping('USR1', 3),
    ]);
    await waitReady('slow-short');
    await waitReady('slow-long');
    let start = Date.now();
    boxOk(env.root, ['stop', 'slow-short']);
    const short = Date.now() - start;
    // TERM is ignored: SIGKILL after its own second, not after docker's default 10.
    expect(short).toBeGreaterThanOrEqual(1000);
    expect(short).toBeLessThan(9500);
    start = Date.now();
    boxOk(env.root, ['stop', '-t', '1', 'slow-long']);
    expect(Date.now() - start).toBeLessThan(8000);
    expect(boxOk(env.root, ['inspect', '-f', '{{.State.ExitCode}}', 'slow-short', 'slow-long'])).toBe(
      '137\n137',
    );
  });

  it('a signal that is none, or a timeout that is no number: one line, exit 125, nothing made', () => {
    const bad = box(env.root, ['run', '--rm', '--stop-signal', 'SIGNOPE', 'busybox', 'true']);
    expect([bad.code, bad.stderr.trim()]).toEqual([125, 'box: Invalid signal: SIGNOPE']);
    const timeout = box(env.root, ['create', '--stop-timeout', 'soon', 'busybox', 'true']);
    expect([timeout.code, timeout.stderr.trim()]).toEqual([
      125,
      'box: invalid argument "soon" for "--stop-timeout" flag: strconv.ParseInt: parsing "soon": invalid syntax',
    ]);
    expect(boxOk(env.root, ['ps', '-aq'])).toBe('');
  });
});

describe('-v and -w make what is missing', () => {
  it('-v HOSTPATH:CTR makes a missing host directory (0755); --mount refuses it, making nothing', () => {
    const source = join(dir, 'made-by-v', 'sub');
    expect(
      boxOk(env.root, [
        'run',
        '--rm',
        '-v',
        `${source}:/data`,
        'busybox',
        'sh',
        '-c',
        'echo hi > /data/f; echo ok',
      ]),
    ).toBe('ok');
    expect(statSync(source).isDirectory()).toBe(true);
    expect(statSync(source).mode & 0o777).toBe(0o755);
    expect(readFileSync(join(source, 'f'), 'utf8')).toBe('hi\n');
    const missing = join(dir, 'not-made-by-mount');
    const r = box(env.root, [
      'run',
      '--rm',
      '--mount',
      `type=bind,source=${missing},target=/data`,
      'busybox',
      'true',
    ]);
    expect([r.code, r.stderr.trim()]).toEqual([
      125,
      `box: invalid mount: bind source path does not exist: ${missing}`,
    ]);
    expect(existsSync(missing)).toBe(false);
    expect(boxOk(env.root, ['ps', '-aq'])).toBe('');
  });

  it('-w DIR makes a missing working directory inside the container, and only there', () => {
    expect(
      boxOk(env.root, ['run', '--rm', '-w', '/new/work/dir', 'busybox', 'sh', '-c', 'pwd; stat -c %a:%u .']),
    ).toBe('/new/work/dir\n755:0');
    // An image whose /escape is a symlink to a host path: it resolves inside the container's
    // root, and nothing is made on the host.
    const outside = join(dir, 'outside');
    boxOk(env.root, ['run', '--name', 'mk-link', 'busybox', 'ln', '-s', outside, '/escape']);
    boxOk(env.root, ['commit', 'mk-link', 'escaping:1']);
    boxOk(env.root, ['rm', 'mk-link']);
    expect(
      boxOk(env.root, [
        'run',
        '--rm',
        '-w',
        '/escape/sub',
        'escaping:1',
        'sh',
        '-c',
        `test -d ${outside}/sub && echo inside`,
      ]),
    ).toBe('inside');
    expect(existsSync(outside)).toBe(false);
  });
});

describe('--platform for a local image', () => {
  it('of another platform: refused with --pull never, exit 125, nothing made; pulled for that platform otherwise', () => {
    for (const command of ['run', 'create']) {
      const r = box(env.root, [command, '--platform', 'linux/arm64', '--pull', 'never', 'busybox', 'true']);
      expect([r.code, r.stderr.trim()]).toEqual([
        125,
        'box: image with reference busybox was found but does not match the specified platform: wanted linux/arm64, actual: linux/amd64',
      ]);
    }
    expect(boxOk(env.root, ['ps', '-aq'])).toBe('');
    // Its own platform, in any spelling, runs as before.
    expect(
      boxOk(env.root, [
        'run',
        '--rm',
        '--platform',
        'linux/x86_64',
        '--pull',
        'never',
        'busybox',
        'echo',
        'same',
      ]),
    ).toBe('same');
    expect(boxOk(env.root, ['run', '--rm', '--platform', 'linux/amd64', 'busybox', 'echo', 'same'])).toBe(
      'same',
    );
    // With --pull missing (the default) another platform counts as missing: box pulls it, here
    // from a loopback port where no registry listens, so the pull fails and nothing is made.
    boxOk(env.root, ['tag', 'busybox', '127.0.0.1:1/busybox:latest']);
    const pulled = box(env.root, ['run', '--rm', '--platform', 'linux/arm64', '127.0.0.1:1/busybox', 'true']);
    expect(pulled.code).toBe(125);
    expect(pulled.stderr).toContain("Unable to find image '127.0.0.1:1/busybox:latest' locally");
    boxOk(env.root, ['rmi', '127.0.0.1:1/busybox:latest']);
    const bad = box(env.root, ['run', '--rm', '--platform', 'linux', '--pull', 'never', 'busybox', 'true']);
    expect([bad.code, bad.stderr.trim()]).toEqual([
      125,
      'box: "linux" is not a platform (os/arch[/variant])',
    ]);
    expect(boxOk(env.root, ['ps', '-aq'])).toBe('');
  });
});

describe('--pid, --uts and --ipc', () => {
  const ns = (type: string) => readlinkSync(`/proc/self/ns/${type}`);
  const run = (...args: string[]) => boxOk(env.root, ['run', '--rm', '--network', 'none', ...args]);
  const modes = (...args: string[]) => {
    const id = boxOk(env.root, ['create', '--network', 'none', ...args, 'busybox', 'true']);
    try {
      return boxOk(env.root, [
        'inspect',
        '-f',
        '{{.HostConfig.UTSMode}}|{{.HostConfig.IpcMode}}|{{.Config.Hostname}}|{{.HostConfig.PidMode}}',
        id,
      ]);
    } finally {
      boxOk(env.root, ['rm', id]);
    }
  };

  it("--pid host: the host's processes in its /proc; what it leaves running ends with it", () => {
    const script = `readlink /proc/self/ns/pid; test -d /proc/${process.pid} && echo seen || echo unseen`;
    expect(run('--pid', 'host', 'busybox', 'sh', '-c', script).split('\n')).toEqual([ns('pid'), 'seen']);
    const [own, seen] = run('busybox', 'sh', '-c', script).split('\n');
    expect([own === ns('pid'), seen]).toEqual([false, 'unseen']);
    // No PID namespace ends with it to take the background process along: its cgroup does.
    const id = boxOk(env.root, [
      'run',
      '-d',
      '--network',
      'none',
      '--pid',
      'host',
      'busybox',
      'sh',
      '-c',
      'sleep 1000 & echo $!; sleep 1',
    ]);
    try {
      expect(boxOk(env.root, ['wait', id])).toBe('0');
      const left = Number(boxOk(env.root, ['logs', id]));
      expect(left).toBeGreaterThan(1);
      expect(existsSync(`/proc/${left}`) && readFileSync(`/proc/${left}/cmdline`, 'utf8')).not.toBe(
        'sleep\u00001000\u0000',
      );
    } finally {
      boxOk(env.root, ['rm', '-f', id]);
    }
    expect(modes('--pid', 'host').split('|')[3]).toBe('host');
  });

  it("--uts host: the host's UTS namespace and name, which the container cannot change", () => {
    const script =
      'readlink /proc/1/ns/uts; hostname; cat /etc/hostname; hostname evil 2>/dev/null; echo set=$?';
    expect(run('--uts', 'host', 'busybox', 'sh', '-c', script).split('\n')).toEqual([
      ns('uts'),
      hostname(),
      hostname(),
      'set=1',
    ]);
    expect(hostname()).not.toBe('evil');
    // Without it, a namespace and a name of its own.
    const [own, name] = run('busybox', 'sh', '-c', 'readlink /proc/1/ns/uts; hostname').split('\n');
    expect(own).not.toBe(ns('uts'));
    expect(name).not.toBe(hostname());
    expect(modes('--uts', 'host')).toBe(`host|private|${hostname()}|`);
  });

  it("--ipc host shares the host's IPC namespace and /dev/shm; none has no /dev/shm; private its own", () => {
    const shared = `/dev/shm/box-e2e-ipc-${process.pid}`;
    writeFileSync(shared, 'from the host');
    try {
      const script = `readlink /proc/1/ns/ipc; grep -c " /dev/shm " /proc/mounts; cat ${shared} 2>/dev/null || echo none`;
      expect(run('--ipc', 'host', 'busybox', 'sh', '-c', script).split('\n')).toEqual([
        ns('ipc'),
        '1',
        'from the host',
      ]);
      for (const mode of [[], ['--ipc', 'private'], ['--ipc', 'none']]) {
        const [own, shm, file] = run(...mode, 'busybox', 'sh', '-c', script).split('\n');
        expect({ mode, own: own === ns('ipc'), shm, file }).toEqual({
          mode,
          own: false,
          shm: mode[1] === 'none' ? '0' : '1',
          file: 'none',
        });
      }
    } finally {
      rmSync(shared, { force: true });
    }
    expect(modes('--ipc', 'host').split('|')[1]).toBe('host');
    expect(modes('--ipc', 'none').split('|')[1]).toBe('none');
    expect(modes().split('|').slice(0, 2)).toEqual(['', 'private']);
  });

  it('another mode, or --hostname with --uts host: one line, exit 125, nothing made', () => {
    const cases: [string[], string][] = [
      [['--pid', 'container:web'], 'box: --pid: invalid PID mode "container:web": only "host" is supported'],
      [['--uts', 'private'], 'box: --uts: invalid UTS mode "private": only "host" is supported'],
      [
        ['--ipc', 'container:web'],
        'box: --ipc: invalid IPC mode "container:web": "private", "none" or "host" (sharing another container\'s is not supported)',
      ],
      [['--uts', 'host', '--hostname', 'h'], 'box: conflicting options: hostname and the UTS mode'],
    ];
    for (const [flags, message] of cases) {
      const bad = box(env.root, ['run', '--rm', '--network', 'none', ...flags, 'busybox', 'true']);
      expect([bad.code, bad.stderr.trim()]).toEqual([125, message]);
    }
    expect(boxOk(env.root, ['ps', '-aq'])).toBe('');
  });
});
