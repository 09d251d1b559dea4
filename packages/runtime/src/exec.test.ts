/**
 * execInContainer on the real kernel (as root), into containers started by startContainer
 * in a throw-away busybox rootfs.
 */
import {
  chmodSync,
  closeSync,
  mkdtempSync,
  openSync,
  readlinkSync,
  readSync,
  rmSync,
  symlinkSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ns from '@box/ns';
import { close, pipe } from '@box/sys';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { CommandNotFoundError, RuntimeError } from './errors.js';
import { type ExecOptions, type ExecProcess, execInContainer } from './exec.js';
import { processStartTime } from './process/stat.js';
import { type ContainerProcess, startContainer } from './run.js';
import { defaultSpec, type Process } from './spec.js';
import { makeBusyboxRootfs } from './testing/busybox-rootfs.js';

// The real @box/ns, with spies to see which way a join went and to pretend a kernel
// whose setns takes no pidfd.
vi.mock('@box/ns', async (importOriginal) => {
  const actual = await importOriginal<typeof import('@box/ns')>();
  return { ...actual, canJoinByPidfd: vi.fn(actual.canJoinByPidfd), spawn: vi.fn(actual.spawn) };
});

let top: string;
let rootfs: string;
let devnull: number;
const containers: ContainerProcess[] = [];
const execs: ExecProcess[] = [];

beforeAll(() => {
  devnull = openSync('/dev/null', 'r');
  top = mkdtempSync(join(tmpdir(), 'box-exec-test-'));
  chmodSync(top, 0o755); // container root in a user namespace must reach the rootfs
  rootfs = join(top, 'rootfs');
  makeBusyboxRootfs(rootfs);
  symlinkSync(process.execPath, join(rootfs, 'bin/host-node')); // exists on the host only
});

afterAll(() => {
  closeSync(devnull);
  rmSync(top, { recursive: true, force: true });
});

afterEach(async () => {
  vi.mocked(ns.spawn).mockClear();
  for (const proc of [...execs.splice(0), ...containers.splice(0)]) {
    proc.kill('SIGKILL');
    await proc.exited;
  }
});

async function startSleeper(userns = false): Promise<ContainerProcess> {
  const spec = defaultSpec({
    rootfs,
    args: ['sleep', '100'],
    userns: userns
      ? {
          uidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }],
          gidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }],
        }
      : undefined,
  });
  const proc = await startContainer({ spec, stdio: [devnull, devnull, devnull] });
  containers.push(proc);
  return proc;
}

function command(args: string[]): Process {
  return { user: { uid: 0, gid: 0 }, args, env: ['PATH=/bin'], cwd: '/' };
}

/** Runs a command in the container; returns what it printed and how it ended. */
async function run(options: Omit<ExecOptions, 'stdio'>): Promise<{ out: string; exitCode: number | null }> {
  const [r, w] = pipe();
  try {
    let proc: ExecProcess;
    try {
      proc = await execInContainer({ ...options, stdio: [devnull, w, w] });
    } finally {
      close(w);
    }
    execs.push(proc);
    const { exitCode } = await proc.exited;
    const chunks: Buffer[] = [];
    const buf = Buffer.alloc(65536);
    for (let n = readSync(r, buf); n > 0; n = readSync(r, buf)) chunks.push(Buffer.from(buf.subarray(0, n)));
    return { out: Buffer.concat(chunks).toString(), exitCode };
  } finally {
    close(r);
  }
}

/** The last call's spawn options: which way the namespaces were joined. */
function joinedBy(): 'pidfd' | 'namespace fds' {
  const options = vi.mocked(ns.spawn).mock.calls.at(-1)![0];
  if (options.joinProcess) return 'pidfd';
  expect(options.namespaces!.length).toBeGreaterThan(0);
  expect(options.namespaces!.every((n) => typeof n.fd === 'number')).toBe(true);
  return 'namespace fds';
}

const SCRIPT = 'hostname; echo $$; tr "\\0" " " < /proc/1/cmdline; echo';

describe('execInContainer', () => {
  for (const pidfds of [true, false]) {
    it(`runs a command in the container's namespaces (${pidfds ? 'through a pidfd' : 'through namespace files'})`, async () => {
      const init = await startSleeper();
      vi.mocked(ns.canJoinByPidfd).mockReturnValueOnce(pidfds && ns.canJoinByPidfd());
      const { out, exitCode } = await run({ pid: init.pid, process: command(['sh', '-c', SCRIPT]) });
      expect(joinedBy()).toBe(pidfds ? 'pidfd' : 'namespace fds');
      expect(exitCode).toBe(0);
      const [hostname, pid, cmdline] = out.split('\n');
      expect(hostname).toBe('box');
      expect(Number(pid)).toBeGreaterThan(1);
      expect(cmdline!.trim()).toBe('sleep 100');
    });
  }

  it('joins every namespace of the init, the user namespace too', async () => {
    const init = await startSleeper(true);
    const proc = await execInContainer({
      pid: init.pid,
      process: command(['sleep', '100']),
      stdio: [devnull, devnull, devnull],
    });
    execs.push(proc);
    expect(joinedBy()).toBe('pidfd');
    for (const file of ['user', 'mnt', 'uts', 'ipc', 'net', 'pid'])
      expect(readlinkSync(`/proc/${proc.pid}/ns/${file}`)).toBe(readlinkSync(`/proc/${init.pid}/ns/${file}`));
  });

  it('takes the recorded start time, and refuses a pid that started at another time', async () => {
    const init = await startSleeper();
    const startTime = processStartTime(init.pid)!;
    expect((await run({ pid: init.pid, startTime, process: command(['true']) })).exitCode).toBe(0);
    vi.mocked(ns.spawn).mockClear();
    const error = await execInContainer({
      pid: init.pid,
      startTime: startTime - 1,
      process: command(['true']),
    }).catch((e) => e);
    expect(error).toBeInstanceOf(RuntimeError);
    expect(error).toMatchObject({
      code: 'ENOTRUNNING',
      message: `container process ${init.pid} is not running`,
    });
    expect(ns.spawn).not.toHaveBeenCalled();
  });

  it('refuses an init that has ended', async () => {
    const init = await startSleeper();
    init.kill('SIGKILL');
    await init.exited;
    const error = await execInContainer({ pid: init.pid, process: command(['true']) }).catch((e) => e);
    expect(error).toMatchObject({ code: 'ENOTRUNNING' });
  });

  it('looks the command up in the container, never on the host', async () => {
    const init = await startSleeper();
    for (const name of [process.execPath, 'host-node']) {
      const error = await execInContainer({ pid: init.pid, process: command([name]) }).catch((e) => e);
      expect(error).toBeInstanceOf(CommandNotFoundError);
    }
  });
});
