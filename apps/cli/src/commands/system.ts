/** `box version` and `box info`: what box and this host are, in docker's shapes. */
import { existsSync, readFileSync } from 'node:fs';
import { arch, cpus, hostname, release, totalmem } from 'node:os';
import { openEngine } from '../engine.js';
import { imageStore } from '../image-store.js';
import { formatEach } from '../output/index.js';

declare const BOX_VERSION: string;

/** docker's names for Node's architectures. */
const ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386' };

function osName(): string {
  try {
    return /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? 'Linux';
  } catch {
    return 'Linux';
  }
}

export async function version(flags: { format?: string }): Promise<number> {
  const platform = `linux/${ARCH[arch()] ?? arch()}`;
  const info = {
    Client: { Version: BOX_VERSION, NodeVersion: process.version, Os: 'linux', Arch: ARCH[arch()] ?? arch() },
    Server: { Version: BOX_VERSION, KernelVersion: release(), Os: 'linux', Arch: ARCH[arch()] ?? arch() },
  };
  if (flags.format) {
    process.stdout.write(formatEach([info], flags.format));
    return 0;
  }
  process.stdout.write(
    [
      'Client:',
      ` Version:           ${BOX_VERSION}`,
      ` Node.js version:   ${process.version}`,
      ` OS/Arch:           ${platform}`,
      '',
      'Server:',
      ' Engine:',
      `  Version:          ${BOX_VERSION}`,
      `  Kernel Version:   ${release()}`,
      `  OS/Arch:          ${platform}`,
      '',
    ].join('\n'),
  );
  return 0;
}

export async function info(flags: { format?: string }): Promise<number> {
  const engine = openEngine();
  const containers = await engine.list({ all: true });
  const running = containers.filter((c) => c.running && !c.paused).length;
  const paused = containers.filter((c) => c.running && c.paused).length;
  const images = (await imageStore(engine.root)).listImages().length;
  const data = {
    Containers: containers.length,
    ContainersRunning: running,
    ContainersPaused: paused,
    ContainersStopped: containers.length - running - paused,
    Images: images,
    Driver: 'overlay2',
    CgroupDriver: 'cgroupfs',
    CgroupVersion: existsSync('/sys/fs/cgroup/cgroup.controllers') ? '2' : '1',
    KernelVersion: release(),
    OperatingSystem: osName(),
    OSType: 'linux',
    Architecture: arch() === 'x64' ? 'x86_64' : arch(),
    NCPU: cpus().length,
    MemTotal: totalmem(),
    DockerRootDir: engine.root,
    Name: hostname(),
    ServerVersion: BOX_VERSION,
  };
  if (flags.format) {
    process.stdout.write(formatEach([data], flags.format));
    return 0;
  }
  process.stdout.write(
    [
      'Server:',
      ` Containers: ${data.Containers}`,
      `  Running: ${data.ContainersRunning}`,
      `  Paused: ${data.ContainersPaused}`,
      `  Stopped: ${data.ContainersStopped}`,
      ` Images: ${data.Images}`,
      ` Server Version: ${data.ServerVersion}`,
      ` Storage Driver: ${data.Driver}`,
      ` Cgroup Driver: ${data.CgroupDriver}`,
      ` Cgroup Version: ${data.CgroupVersion}`,
      ` Kernel Version: ${data.KernelVersion}`,
      ` Operating System: ${data.OperatingSystem}`,
      ` OSType: ${data.OSType}`,
      ` Architecture: ${data.Architecture}`,
      ` CPUs: ${data.NCPU}`,
      ` Total Memory: ${(data.MemTotal / 1024 ** 3).toFixed(2)}GiB`,
      ` Name: ${data.Name}`,
      ` Box Root Dir: ${data.DockerRootDir}`,
      '',
    ].join('\n'),
  );
  return 0;
}
