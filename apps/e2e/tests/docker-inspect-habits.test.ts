/**
 * `inspect` and `events` as a docker user reads them: docker's ContainerJSON and ImageInspect
 * (for what box has) and docker's event stream (the docker CLI issue).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { box, boxAsync, boxBin, boxOk, useBoxRoot, waitFor } from '../helpers/box.js';

const env = useBoxRoot({ removeContainers: true });
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'box-e2e-inspect-'));
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A host port unlikely to be taken by anything else on this machine. */
const hostPort = 20000 + Math.floor(Math.random() * 20000);

describe('inspect CONTAINER: docker ContainerJSON', () => {
  it('-v, --read-only, -c, --cpuset-cpus, -m, --restart, -p: each in docker’s place', () => {
    const id = boxOk(env.root, [
      'create',
      '--name',
      'shaped',
      '-v',
      `${dir}:/data:ro`,
      '-v',
      'cache:/cache',
      '-v',
      '/anon',
      '--tmpfs',
      '/run:size=64k',
      '--read-only',
      '-c',
      '512',
      '--cpuset-cpus',
      '0',
      '-m',
      '64m',
      '--restart',
      'on-failure:3',
      '-p',
      `127.0.0.1:${hostPort}:80`,
      '-e',
      'GREETING=hi',
      'busybox',
      'sleep',
      '60',
    ]);
    const [doc] = JSON.parse(boxOk(env.root, ['inspect', 'shaped']));
    expect(Object.keys(doc)).toEqual([
      'Id',
      'Created',
      'Path',
      'Args',
      'State',
      'Image',
      'ResolvConfPath',
      'HostnamePath',
      'HostsPath',
      'LogPath',
      'Name',
      'RestartCount',
      'Driver',
      'Platform',
      'HostConfig',
      'GraphDriver',
      'Mounts',
      'Config',
      'NetworkSettings',
    ]);
    expect([doc.Id, doc.Name, doc.Path, doc.Args]).toEqual([id, '/shaped', 'sleep', ['60']]);
    expect(doc.Image).toBe(boxOk(env.root, ['image', 'inspect', '-f', '{{.Id}}', 'busybox']));
    expect(doc.State).toMatchObject({ Status: 'created', Running: false, Pid: 0, ExitCode: 0 });
    expect(doc.HostConfig).toMatchObject({
      Binds: [`${dir}:/data:ro`, 'cache:/cache'],
      Tmpfs: { '/run': 'size=64k' },
      ReadonlyRootfs: true,
      CpuShares: 512,
      CpusetCpus: '0',
      Memory: 64 * 1024 * 1024,
      RestartPolicy: { Name: 'on-failure', MaximumRetryCount: 3 },
      PortBindings: { '80/tcp': [{ HostIp: '127.0.0.1', HostPort: String(hostPort) }] },
      NetworkMode: 'bridge',
      AutoRemove: false,
    });
    expect(doc.Config).toMatchObject({
      Image: 'busybox',
      Cmd: ['sleep', '60'],
      Entrypoint: null,
      Volumes: { '/anon': {} },
      ExposedPorts: { '80/tcp': {} },
      AttachStdout: true,
      OpenStdin: false,
      Tty: false,
    });
    expect(doc.Config.Env).toContain('GREETING=hi');
    expect(
      doc.Mounts.map((m: { Type: string; Destination: string }) => `${m.Type}:${m.Destination}`),
    ).toEqual(['bind:/data', 'volume:/cache', 'volume:/anon']);
    // Nothing made up for what box does not have.
    for (const absent of ['AppArmorProfile', 'ExecIDs', 'MountLabel', 'ProcessLabel'])
      expect(doc).not.toHaveProperty(absent);
    expect(doc.HostConfig).not.toHaveProperty('Runtime');

    const f = (template: string) => boxOk(env.root, ['inspect', '-f', template, 'shaped']);
    expect(f('{{json .Mounts}}')).toBe(JSON.stringify(doc.Mounts));
    expect(JSON.parse(f('{{json .Mounts}}'))[0]).toEqual({
      Type: 'bind',
      Source: dir,
      Destination: '/data',
      Mode: 'ro',
      RW: false,
      Propagation: 'rprivate',
    });
    expect(f('{{.HostConfig.Binds}}')).toBe(`[${dir}:/data:ro cache:/cache]`);
    expect(f('{{.HostConfig.PortBindings}}')).toBe(`map[80/tcp:[{127.0.0.1 ${hostPort}}]]`);
    expect(f('{{.Config.Volumes}}')).toBe('map[/anon:{}]');
    expect(f('{{.State.Status}} {{.HostConfig.ReadonlyRootfs}} {{.HostConfig.Memory}}')).toBe(
      'created true 67108864',
    );
    expect(f('{{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}')).toBe(
      'on-failure:3',
    );
  });

  it('a running container: State, NetworkSettings.IPAddress as inside, Ports with the host port', () => {
    boxOk(env.root, ['run', '-d', '--name', 'live', '-p', `127.0.0.1::80`, 'busybox', 'sleep', '60']);
    const f = (template: string) => boxOk(env.root, ['inspect', '-f', template, 'live']);
    expect(f('{{.State.Status}} {{.State.Running}}')).toBe('running true');
    expect(Number(f('{{.State.Pid}}'))).toBeGreaterThan(0);
    const ip = f('{{.NetworkSettings.IPAddress}}');
    expect(ip).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    expect(f('{{.NetworkSettings.Networks.bridge.IPAddress}}')).toBe(ip);
    expect(f('{{range $name, $e := .NetworkSettings.Networks}}{{$name}} {{end}}')).toBe('bridge');
    const inside = boxOk(env.root, ['exec', 'live', 'ip', '-4', '-o', 'addr', 'show', 'eth0']);
    expect(inside).toContain(` ${ip}/`);
    const port = f('{{(index (index .NetworkSettings.Ports "80/tcp") 0).HostPort}}');
    expect(boxOk(env.root, ['port', 'live', '80'])).toBe(`127.0.0.1:${port}`);
    expect(f('{{.State.StartedAt}}')).not.toBe('0001-01-01T00:00:00Z');
    boxOk(env.root, ['rm', '-f', 'live']);
  });

  it('an unknown field: docker’s message, exit 125; a field docker leaves out when empty: its zero value', () => {
    boxOk(env.root, ['create', '--name', 'plain', 'busybox', 'true']);
    expect(
      boxOk(env.root, [
        'inspect',
        '-f',
        '{{.HostConfig.Init}} {{.HostConfig.Tmpfs}} {{len .HostConfig.Mounts}}',
        'plain',
      ]),
    ).toBe('<nil> map[] 0');
    expect(JSON.parse(boxOk(env.root, ['inspect', 'plain']))[0].HostConfig).not.toHaveProperty('Init');
    const r = box(env.root, ['inspect', '-f', '{{.HostConfig.Nope}}', 'plain']);
    expect([r.code, r.stderr.trim()]).toEqual([
      125,
      'box: template parsing error: template: :1:13: executing "" at <.HostConfig.Nope>: map has no entry for key "Nope"',
    ]);
  });
});

describe('inspect IMAGE: docker ImageInspect', () => {
  it('image inspect and inspect IMAGE: Id, RepoTags, RootFS, Os and Architecture; nothing invented', () => {
    const [doc] = JSON.parse(boxOk(env.root, ['image', 'inspect', 'busybox']));
    expect(JSON.parse(boxOk(env.root, ['inspect', 'busybox']))).toEqual([doc]);
    expect(doc.Id).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(doc.RepoTags).toEqual(['busybox:latest']);
    expect(doc).toMatchObject({ Os: 'linux', Architecture: 'amd64', RootFS: { Type: 'layers' } });
    expect(doc.RootFS.Layers.length).toBeGreaterThan(0);
    expect(doc.Config.Cmd).toEqual(['sh']);
    for (const absent of ['DockerVersion', 'GraphDriver', 'ContainerConfig'])
      expect(doc).not.toHaveProperty(absent);
    expect(
      boxOk(env.root, [
        'image',
        'inspect',
        '-f',
        '{{.Os}}/{{.Architecture}} {{len .RootFS.Layers}}',
        'busybox',
      ]),
    ).toBe(`linux/amd64 ${doc.RootFS.Layers.length}`);
  });
});

describe('events', () => {
  /** Unix seconds a moment ago, and a moment ahead: a window around what a test does. */
  const secondsFromNow = (s: number) => String(Math.floor(Date.now() / 1000) + s);
  const LINE =
    /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}(Z|[+-]\d\d:\d\d) container (\w+) ([0-9a-f]{64}) \((.*)\)$/;

  it('--since/--until: docker’s lines for create, start, die, destroy; then it ends by itself', () => {
    const since = secondsFromNow(-1);
    expect(box(env.root, ['run', '--rm', '--name', 'evt', 'busybox', 'sh', '-c', 'exit 3']).code).toBe(3);
    const r = box(env.root, [
      'events',
      '--since',
      since,
      '--until',
      secondsFromNow(2),
      '--filter',
      'container=evt',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    const parsed = lines.map((l) => LINE.exec(l));
    expect(parsed.every(Boolean), r.stdout).toBe(true);
    expect(parsed.map((m) => m![2])).toEqual(['create', 'start', 'die', 'destroy']);
    expect(new Set(parsed.map((m) => m![3])).size).toBe(1);
    expect(parsed[2]![4]).toBe('exitCode=3, image=busybox, name=evt');
    expect(parsed[0]![4]).toBe('image=busybox, name=evt');
  });

  it('--filter (one key OR-ed, keys AND-ed), --format TEMPLATE and json, system events', () => {
    const since = secondsFromNow(-1);
    boxOk(env.root, ['run', '--rm', '--name', 'evf1', 'busybox', 'true']);
    boxOk(env.root, ['run', '--rm', '--name', 'evf2', 'busybox', 'true']);
    const until = secondsFromNow(2);
    const events = (...args: string[]) =>
      boxOk(env.root, ['events', '--since', since, '--until', until, ...args]);
    expect(
      events(
        '--filter',
        'container=evf1',
        '--filter',
        'container=evf2',
        '--filter',
        'event=start',
        '--format',
        '{{.Action}} {{.Actor.Attributes.name}}',
      ),
    ).toBe('start evf1\nstart evf2');
    expect(events('--filter', 'type=image')).toBe('');
    expect(
      events(
        '--filter',
        'image=busybox:latest',
        '--filter',
        'event=die',
        '--format',
        '{{.Actor.Attributes.name}}',
      ),
    ).toBe('evf1\nevf2');
    const json = events('--filter', 'container=evf2', '--filter', 'event=destroy', '--format', 'json');
    const message = JSON.parse(json);
    expect(Object.keys(message)).toEqual([
      'status',
      'id',
      'from',
      'Type',
      'Action',
      'Actor',
      'scope',
      'time',
      'timeNano',
    ]);
    expect(message).toMatchObject({
      Type: 'container',
      Action: 'destroy',
      Actor: { Attributes: { name: 'evf2' } },
    });
    expect(String(message.timeNano).startsWith(String(message.time))).toBe(true);
    expect(
      boxOk(env.root, [
        'system',
        'events',
        '--since',
        since,
        '--until',
        until,
        '--filter',
        'container=evf1',
        '--format',
        '{{.Status}}',
      ]),
    ).toBe('create\nstart\ndie\ndestroy');
    const bad = box(env.root, ['events', '--until', until, '--filter', 'colour=red']);
    expect([bad.code, bad.stderr.trim()]).toEqual([125, "box: invalid filter 'colour'"]);
    const badTime = box(env.root, ['events', '--since', 'yesterday']);
    expect([badTime.code, badTime.stderr.trim()]).toEqual([
      125,
      'box: failed to parse value as time or duration: "yesterday"',
    ]);
    const badField = box(env.root, ['events', '--until', until, '--format', '{{.Nope}}']);
    expect([badField.code, badField.stderr.trim()]).toEqual([
      125,
      'box: template parsing error: template: :1:2: executing "" at <.Nope>: can\'t evaluate field Nope in type *events.Message',
    ]);
  });

  it('a reader that goes away ends it quietly (box events | head -1)', () => {
    boxOk(env.root, ['run', '--rm', '--name', 'evpipe', 'busybox', 'true']);
    const r = spawnSync(
      'bash',
      [
        '-c',
        `${process.execPath} ${boxBin} events --since 0 --until ${secondsFromNow(1)} | head -1; echo "rc=\${PIPESTATUS[0]}"`,
      ],
      { env: { ...process.env, BOX_ROOT: env.root }, encoding: 'utf8', timeout: 20_000 },
    );
    expect(r.stdout).toMatch(/^\S+ container create [0-9a-f]{64} \(image=busybox, name=\w+\)\nrc=0\n$/);
    expect(r.stderr).toBe('');
  });

  it('without --until it follows: new events arrive as they happen, until it is interrupted', async () => {
    const since = secondsFromNow(-1);
    const follower = boxAsync(env.root, ['events', '--since', since, '--filter', 'container=evfollow']);
    try {
      boxOk(env.root, ['run', '--rm', '--name', 'evfollow', 'busybox', 'true']);
      await waitFor(() => follower.output().includes(' container destroy '), 10_000);
      expect(
        follower
          .output()
          .trim()
          .split('\n')
          .map((l) => LINE.exec(l)?.[2]),
      ).toEqual(['create', 'start', 'die', 'destroy']);
      // Still following: it has not ended on its own.
      expect(follower.child.exitCode).toBeNull();
    } finally {
      follower.child.kill('SIGINT');
    }
    const ended = await follower.done;
    expect(ended.code).not.toBe(0);
  });
});
