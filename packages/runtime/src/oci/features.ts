/**
 * runc's `features` (the OCI runtime spec's features.md) and `spec` (a config.json to start
 * from): what this runtime implements, as the clients that ask (containerd, podman) read it.
 */
import type { Spec } from '../spec.js';

// Both load what they list when called: the tables of capabilities, seccomp and the default spec
// are large, and every other box-runtime command (start, state, delete...) loads this index.

export async function features(): Promise<Record<string, unknown>> {
  const [{ CAPABILITIES }, { SECCOMP_FLAGS }] = await Promise.all([
    import('../capabilities.js'),
    import('../seccomp/profile.js'),
  ]);
  return {
    ociVersionMin: '1.0.0',
    ociVersionMax: '1.2.0',
    hooks: ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop'],
    mountOptions: [
      'async',
      'atime',
      'bind',
      'defaults',
      'dev',
      'diratime',
      'dirsync',
      'exec',
      'mand',
      'noatime',
      'nodev',
      'nodiratime',
      'noexec',
      'nomand',
      'norelatime',
      'nostrictatime',
      'nosuid',
      'private',
      'rbind',
      'relatime',
      'remount',
      'ro',
      'rprivate',
      'rshared',
      'rslave',
      'runbindable',
      'rw',
      'shared',
      'slave',
      'strictatime',
      'suid',
      'sync',
      'tmpcopyup',
      'unbindable',
    ],
    linux: {
      namespaces: ['cgroup', 'ipc', 'mount', 'network', 'pid', 'user', 'uts'],
      capabilities: Object.keys(CAPABILITIES),
      cgroup: { v1: true, v2: true, systemd: false, systemdUser: false, rdma: false },
      seccomp: {
        enabled: true,
        actions: [
          'SCMP_ACT_ALLOW',
          'SCMP_ACT_ERRNO',
          'SCMP_ACT_KILL',
          'SCMP_ACT_KILL_PROCESS',
          'SCMP_ACT_KILL_THREAD',
          'SCMP_ACT_LOG',
          'SCMP_ACT_TRACE',
          'SCMP_ACT_TRAP',
        ],
        operators: [
          'SCMP_CMP_EQ',
          'SCMP_CMP_GE',
          'SCMP_CMP_GT',
          'SCMP_CMP_LE',
          'SCMP_CMP_LT',
          'SCMP_CMP_MASKED_EQ',
          'SCMP_CMP_NE',
        ],
        archs: ['SCMP_ARCH_X86', 'SCMP_ARCH_X86_64', 'SCMP_ARCH_X32'],
        knownFlags: Object.keys(SECCOMP_FLAGS),
        supportedFlags: Object.keys(SECCOMP_FLAGS),
      },
      apparmor: { enabled: false },
      selinux: { enabled: false },
      intelRdt: { enabled: false },
      mountExtensions: { idmap: { enabled: false } },
    },
    annotations: { 'org.opencontainers.runc.checkpoint.enabled': 'false' },
  };
}

/** `runc spec`: rootfs "rootfs" next to config.json, `sh` on a terminal, docker's defaults. */
export async function specTemplate(): Promise<Spec> {
  const { CGROUP_MOUNT, defaultSpec } = await import('../spec.js');
  const spec = defaultSpec({ rootfs: 'rootfs', args: ['sh'] });
  // runc's template has it though it names no cgroup (box-runtime's default is box-runtime/ID).
  spec.mounts!.push(CGROUP_MOUNT());
  spec.process!.terminal = true;
  spec.root!.readonly = true;
  spec.hostname = 'box';
  return spec;
}
