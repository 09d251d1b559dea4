import { describe, expect, it } from 'vitest';
import { defaultSpec } from '../spec.js';
import { containerInspect, type InspectContext, logSize } from './inspect.js';
import type { Container } from './types.js';

const ID = 'a'.repeat(64);
const ANON = 'b'.repeat(64);

function container(overrides: Partial<Container> = {}): Container {
  const spec = defaultSpec({ rootfs: '/r', args: ['/bin/app', 'serve'], cgroupsPath: `box/${ID}` });
  spec.hostname = 'aaaaaaaaaaaa';
  spec.mounts = [...(spec.mounts ?? []), { destination: '/etc/hosts', type: 'bind', source: '/c/hosts' }];
  return {
    id: ID,
    name: 'web',
    image: 'busybox',
    imageId: 'sha256:1234',
    command: ['/bin/app', 'serve'],
    entrypoint: ['/bin/app'],
    created: '2024-01-01T00:00:00.000Z',
    status: 'created',
    autoRemove: false,
    cgroupsPath: `box/${ID}`,
    overlay: { lowerdirs: ['/l1', '/l2'], upperdir: '/c/upper', workdir: '/c/work' },
    running: false,
    paused: false,
    spec,
    logPath: '/c/json.log',
    ...overrides,
  };
}

const context: InspectContext = {
  volumePath: (name) => `/v/${name}/_data`,
  networkId: (name) => (name === 'bridge' ? 'n'.repeat(64) : ''),
};

describe('containerInspect', () => {
  it('a created container: docker zero times, the image ID, Path/Args, Cmd apart from Entrypoint', () => {
    const c = containerInspect(container(), context);
    expect(c.State).toMatchObject({ Status: 'created', Running: false, Pid: 0 });
    expect(c.State.StartedAt).toBe('0001-01-01T00:00:00Z');
    expect([c.Image, c.Name, c.Path, c.Args]).toEqual(['sha256:1234', '/web', '/bin/app', ['serve']]);
    expect([c.Config.Entrypoint, c.Config.Cmd, c.Config.Image]).toEqual([['/bin/app'], ['serve'], 'busybox']);
    expect(c.HostsPath).toBe('/c/hosts');
    expect(c.HostConfig.Binds).toBeNull();
    expect(c.Mounts).toEqual([]);
    // Fields box has no notion of are absent, not zero-valued.
    expect(Object.keys(c)).not.toContain('AppArmorProfile');
    expect(Object.keys(c.HostConfig)).not.toContain('Runtime');
    expect(Object.keys(c.HostConfig)).not.toContain('Tmpfs');
  });

  it('-v, --mount and --tmpfs go where docker lists them', () => {
    const c = containerInspect(
      container({
        anonymousVolumes: [ANON],
        mounts: [
          { type: 'bind', source: '/src', destination: '/data', readonly: true, short: { mode: 'ro' } },
          { type: 'volume', source: 'cache', destination: '/cache', short: { mode: '' } },
          { type: 'volume', source: ANON, destination: '/anon', short: { mode: '' } },
          { type: 'bind', source: '/etc', destination: '/hostetc', readonly: true },
          { type: 'tmpfs', destination: '/run', options: ['size=64k'], short: { mode: 'size=64k' } },
          { type: 'tmpfs', destination: '/scratch', options: [] },
        ],
      }),
      context,
    );
    expect(c.HostConfig.Binds).toEqual(['/src:/data:ro', 'cache:/cache']);
    expect(c.HostConfig.Tmpfs).toEqual({ '/run': 'size=64k' });
    expect(c.HostConfig.Mounts).toEqual([
      { Type: 'bind', Source: '/etc', Target: '/hostetc', ReadOnly: true },
      { Type: 'tmpfs', Target: '/scratch' },
    ]);
    expect(c.Config.Volumes).toEqual({ '/anon': {} });
    expect(c.Mounts).toEqual([
      { Type: 'bind', Source: '/src', Destination: '/data', Mode: 'ro', RW: false, Propagation: 'rprivate' },
      {
        Type: 'volume',
        Name: 'cache',
        Source: '/v/cache/_data',
        Destination: '/cache',
        Driver: 'local',
        Mode: '',
        RW: true,
        Propagation: '',
      },
      {
        Type: 'volume',
        Name: ANON,
        Source: `/v/${ANON}/_data`,
        Destination: '/anon',
        Driver: 'local',
        Mode: '',
        RW: true,
        Propagation: '',
      },
      { Type: 'bind', Source: '/etc', Destination: '/hostetc', Mode: '', RW: false, Propagation: 'rprivate' },
      { Type: 'tmpfs', Source: '', Destination: '/scratch', Mode: '', RW: true, Propagation: '' },
    ]);
  });

  it('resources, restart policy, read-only root and ports as docker names them', () => {
    const base = container();
    base.spec.root!.readonly = true;
    base.spec.linux!.resources = {
      memory: { limit: 64 << 20, reservation: 32 << 20, swap: 128 << 20 },
      cpu: { shares: 512, cpus: '0-1', mems: '0', quota: 50000, period: 100000 },
      pids: { limit: 100 },
    };
    const c = containerInspect(
      {
        ...base,
        restartPolicy: { name: 'on-failure', maximumRetryCount: 3 },
        logOptions: { maxSize: 10 << 20, maxFiles: 3 },
        ports: [
          { hostPort: 8080, containerPort: 80, protocol: 'tcp' },
          { hostIp: '127.0.0.1', hostPort: 8081, containerPort: 80, protocol: 'tcp' },
          { containerPort: 53, protocol: 'udp' },
        ],
      },
      { ...context, imageConfig: { ExposedPorts: { '443/tcp': {} }, Labels: { a: 'b' } } },
    );
    expect(c.HostConfig).toMatchObject({
      ReadonlyRootfs: true,
      Memory: 64 << 20,
      MemoryReservation: 32 << 20,
      MemorySwap: 128 << 20,
      CpuShares: 512,
      CpusetCpus: '0-1',
      CpusetMems: '0',
      NanoCpus: 500_000_000,
      PidsLimit: 100,
      RestartPolicy: { Name: 'on-failure', MaximumRetryCount: 3 },
      LogConfig: { Type: 'json-file', Config: { 'max-size': '10m', 'max-file': '3' } },
      PortBindings: {
        '80/tcp': [
          { HostIp: '', HostPort: '8080' },
          { HostIp: '127.0.0.1', HostPort: '8081' },
        ],
        '53/udp': [{ HostIp: '', HostPort: '' }],
      },
    });
    expect(Object.keys(c.Config.ExposedPorts ?? {}).sort()).toEqual(['443/tcp', '53/udp', '80/tcp']);
    expect(c.Config.Labels).toEqual({ a: 'b' });
    // Not running: no live ports, the network known by its ID only.
    expect(c.NetworkSettings.Ports).toEqual({});
  });

  it('a running container: State, and addresses under Networks (top level: the default network only)', () => {
    const endpoint = {
      networkId: 'x'.repeat(64),
      ipAddress: '10.1.0.2',
      prefixLength: 24,
      gateway: '10.1.0.1',
      macAddress: '02:42:0a:01:00:02',
      interface: 'eth0',
      hostInterface: 'vb0',
    };
    const running = container({
      status: 'running',
      running: true,
      pid: 4242,
      started: '2024-01-01T00:00:01.000Z',
      networks: ['mynet'],
      networkOptions: { ip: '10.1.0.2' },
      ports: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }],
      networkSettings: {
        networks: { mynet: endpoint },
        ports: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }],
      },
    });
    const c = containerInspect(running, context);
    expect(c.State).toMatchObject({ Status: 'running', Running: true, Pid: 4242 });
    expect(c.NetworkSettings.IPAddress).toBe('');
    expect(c.NetworkSettings.SandboxKey).toBe('/proc/4242/ns/net');
    expect(c.NetworkSettings.Ports).toEqual({ '80/tcp': [{ HostIp: '0.0.0.0', HostPort: '8080' }] });
    expect(c.NetworkSettings.Networks.mynet).toEqual({
      IPAMConfig: { IPv4Address: '10.1.0.2' },
      Aliases: [ID.slice(0, 12)],
      NetworkID: 'x'.repeat(64),
      Gateway: '10.1.0.1',
      IPAddress: '10.1.0.2',
      IPPrefixLen: 24,
      MacAddress: '02:42:0a:01:00:02',
    });
    const onBridge = containerInspect(
      {
        ...running,
        networks: ['bridge'],
        networkSettings: { networks: { bridge: endpoint }, ports: [] },
      },
      context,
    );
    expect([onBridge.NetworkSettings.IPAddress, onBridge.NetworkSettings.Gateway]).toEqual([
      '10.1.0.2',
      '10.1.0.1',
    ]);
  });
});

describe('logSize', () => {
  it.each([
    [10 << 20, '10m'],
    [1 << 30, '1g'],
    [1536, '1536'],
    [2048, '2k'],
    [1000, '1000'],
  ])('%d → %s', (bytes, text) => expect(logSize(bytes)).toBe(text));
});
