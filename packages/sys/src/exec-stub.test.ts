import { spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  constants,
  createReadStream,
  mkdtempSync,
  openSync,
  readFileSync,
  readlinkSync,
  readSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { O_PATH } from './constants.js';
import { execStubElf, execStubFd } from './exec-stub.js';
import { ChildProgram, spawnChild } from './program.js';
import { close, kill, mknod, pipe, tryWait } from './syscalls.js';

const dir = mkdtempSync(join(tmpdir(), 'box-stub-'));
const stub = join(dir, 'stub');
writeFileSync(stub, execStubElf());
chmodSync(stub, 0o755);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the stub with `argv` (argv[0] included); fd 3 is a pipe whose bytes are returned. */
function runStub(argv: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(stub, argv.slice(1), {
    argv0: argv[0],
    env,
    stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
    encoding: 'buffer',
  });
  return {
    status: r.status,
    stdout: r.stdout.toString(),
    stderr: r.stderr.toString(),
    fd3: r.output[3] as Buffer,
  };
}

async function waitUntil(done: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('exec stub', () => {
  it('executes argv[4] with argv[5…] and the environment, closing the error fd', () => {
    const script = 'echo "$0 $1 $STUB_VAR"; test -e /proc/$$/fd/3 && echo fd3 open || echo fd3 closed';
    const r = runStub(['box-exec', '3', '0', '--', '/bin/sh', 'sh', '-c', script, 'zero', 'one'], {
      STUB_VAR: 'v',
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    // The error pipe was marked close-on-exec: the command does not get it.
    expect(r.stdout).toBe('zero one v\nfd3 closed\n');
    expect(r.fd3.length).toBe(0);
  });

  it('reports a failed execve as {-1, errno} on the error fd and exits 127', () => {
    const r = runStub(['box-exec', '3', '0', '--', '/nonexistent/cmd', 'cmd']);
    expect(r.status).toBe(127);
    expect(r.fd3.length).toBe(16);
    expect(r.fd3.readBigInt64LE(0)).toBe(-1n);
    expect(Number(r.fd3.readBigUInt64LE(8))).toBe(2); // ENOENT
  });

  /** The stub with an exec gate (fd 4, an O_PATH fd of a new FIFO) and the error pipe as fd 3. */
  async function gated(command: string[]) {
    const fifo = join(dir, `gate-${Math.random().toString(36).slice(2)}`);
    mknod(fifo, 0o010000 | 0o600);
    const gate = openSync(fifo, O_PATH);
    // A failing check below must not leave the stub blocked at its gate.
    let child: ReturnType<typeof spawn> | undefined;
    try {
      const [read, write] = pipe();
      const errorPipeInode = statSync(`/proc/self/fd/${read}`).ino;
      child = spawn(stub, ['3,4', '0', '--', ...command], {
        argv0: 'box-exec',
        env: {},
        stdio: ['ignore', 'pipe', 'pipe', write, gate],
      });
      close(write);
      const out: Buffer[] = [];
      const report: Buffer[] = [];
      child.stdout!.on('data', (b: Buffer) => out.push(b));
      const exited = child;
      const errorPipe = createReadStream('', { fd: read });
      errorPipe.on('data', (b) => report.push(b as Buffer));
      const ended = new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
        exited.on('close', (code, signal) => resolve([code, signal])),
      );
      // AT_GATE, then the pipe's end: the stub holds no host pipe while it waits.
      await waitUntil(() => errorPipe.readableEnded);
      const atGate = Buffer.concat(report);
      expect(atGate.length).toBe(16);
      expect(atGate.readBigInt64LE(0)).toBe(-100n);
      expect(atGate.readBigUInt64LE(8)).toBe(0n);
      // Waiting: not exited, and it has not run the command.
      await new Promise((r) => setTimeout(r, 100));
      expect(child.exitCode).toBe(null);
      expect(Buffer.concat(out).toString()).toBe('');
      const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
      try {
        await waitUntil(() => {
          try {
            return readSync(reader, Buffer.alloc(1)) === 1;
          } catch {
            return false;
          }
        });
      } finally {
        closeSync(reader);
      }
      return { ended: await ended, out: Buffer.concat(out).toString(), errorPipeInode };
    } finally {
      if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      closeSync(gate);
    }
  }

  it('with an exec gate: reports AT_GATE, closes the error pipe, waits until the FIFO is opened for reading, writes "0", then executes', async () => {
    const r = await gated([
      '/bin/sh',
      'sh',
      '-c',
      'echo ran; for f in /proc/$$/fd/*; do readlink $f; done; true',
    ]);
    expect(r.ended).toEqual([0, null]);
    // Neither the error pipe, the gate nor the FIFO reached the command (fds 0-2 are its).
    const [ran, ...links] = r.out.trim().split('\n');
    expect(ran).toBe('ran');
    expect(links.filter((l) => l.includes(dir) || l === `pipe:[${r.errorPipeInode}]`)).toEqual([]);
  });

  it('with an exec gate: a failed execve after the gate is exit status 127 (the pipe is closed: no SIGPIPE)', async () => {
    const r = await gated(['/nonexistent/cmd', 'cmd']);
    expect(r.ended).toEqual([127, null]);
  });

  it('refuses to run when started by something other than box', () => {
    for (const argv of [
      ['/proc/self/exe', '/script'],
      ['/proc/self/exe', '3', '0', '--', '/bin/true', 'true'],
      ['box-exe', '3', '0', '--', '/bin/true', 'true'],
      ['box-execs', '3', '0', '--', '/bin/true', 'true'],
      ['box-inix', '3', '0', '--', '/bin/true', 'true'],
      ['box-exec', '7x', '0', '--', '/bin/true', 'true'],
      ['box-exec', '3', 'x', '--', '/bin/true', 'true'],
      ['box-exec', '3', '0', '-', '/bin/true', 'true'],
      ['box-exec', '3', '0', '--x', '/bin/true', 'true'],
      ['box-init', '3', '0', '/bin/true', 'true'],
      ['box-exec', '3', '0', '--', '/bin/true'],
      ['box-exec', '', '0', '--', '/bin/true', 'x'],
      // Malformed "ERRFD[,GATEFD]" and signal fields; a leading zero too (the gate's /proc
      // path must fit the stub's buffer).
      ...[
        ['3,', '0'],
        [',3', '0'],
        ['3,4,5', '0'],
        ['3,x', '0'],
        ['3', '0,4'],
        [',', '0'],
        ['3', ',0'],
        ['3,04', '0'],
        [`3,${'0'.repeat(300)}4`, '0'],
        ['03', '0'],
        ['3', '00'],
      ].map(([fds, signal]) => ['box-exec', fds!, signal!, '--', '/bin/true', 'true']),
    ]) {
      const r = runStub(argv);
      expect(r.status, argv.join(' ')).toBe(127);
      expect(r.stderr).toBe('box exec stub: not a command\n');
      expect(r.fd3.length).toBe(0);
    }
    // A number that is no open fd of the process.
    const r = runStub(['box-exec', '999', '0', '--', '/bin/true', 'true']);
    expect(r.status).toBe(127);
  });

  it('lives in a sealed memfd that cannot be written, even through /proc', () => {
    const fd = execStubFd();
    expect(execStubFd()).toBe(fd);
    expect(readFileSync(`/proc/self/fd/${fd}`)).toEqual(execStubElf());
    expect(() => writeSync(fd, Buffer.from('x'), 0, 1, 0)).toThrow(/EPERM/);
    const rw = openSync(`/proc/self/fd/${fd}`, 'r+');
    try {
      expect(() => writeSync(rw, Buffer.from('x'), 0, 1, 0)).toThrow(/EPERM/);
    } finally {
      closeSync(rw);
    }
    expect(() => writeFileSync(`/proc/self/fd/${fd}`, 'x')).toThrow();
    expect(readFileSync(`/proc/self/fd/${fd}`)).toEqual(execStubElf());
  });
});

describe('the exec stub started with a real gid other than its effective one', () => {
  /**
   * Starts the stub as uid/gid 1000 with real gid `realGid`, its stderr a full pipe: it
   * refuses its arguments and blocks writing why, so its /proc files can be looked at.
   * A non-dumpable process's /proc/PID files belong to root, a dumpable one's to its uid.
   */
  async function environOwner(realGid: number): Promise<number> {
    const [r, w] = pipe();
    writeSync(w, Buffer.alloc(65536)); // fills the pipe
    const p = new ChildProgram();
    p.call('dup3', 'stderr', [w, 2, 0]);
    p.call('setresgid', 'gids', [realGid, 1000, 1000]);
    p.call('setresuid', 'uids', [1000, 1000, 1000]);
    p.call('execveat', 'exec the stub', [
      execStubFd(),
      p.string(''),
      p.stringArray(['box-exec', 'x']),
      p.stringArray([]),
      0x1000,
    ]);
    const child = spawnChild(p, 0);
    try {
      let owner = -1;
      for (let i = 0; i < 100 && owner === -1; i++) {
        await new Promise((resolve) => setTimeout(resolve, 10));
        if (readlinkSync(`/proc/${child.pid}/exe`, { encoding: 'utf8' }).includes('box-exec-stub'))
          owner = statSync(`/proc/${child.pid}/environ`).uid;
      }
      return owner;
    } finally {
      kill(child.pid, 9);
      close(child.errorFd);
      close(r);
      close(w);
      while (tryWait(child.pid) === null) await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  it('is not dumpable (its /proc files are root’s), where even ids would make it so', async () => {
    expect(await environOwner(0)).toBe(0);
    expect(await environOwner(1000)).toBe(1000);
  });
});

describe('the exec stub in init mode', () => {
  const init = (...command: string[]) => runStub(['box-init', '3', '0', '--', ...command]);

  it('runs the command as its child, in a process group of its own, with no signal blocked', () => {
    const r = init(
      '/bin/sh',
      'sh',
      '-c',
      'echo "$0 $1"; cut -d" " -f4,5 /proc/$$/stat; grep SigBlk /proc/self/status; cat /proc/$PPID/wchan; echo; grep State /proc/$PPID/status; for p in $$ $PPID; do test -e /proc/$p/fd/3 && echo fd3 open || echo fd3 closed; done',
      'zero',
      'one',
    );
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.fd3.length).toBe(0);
    const [args, ids, blocked, initWaits, initState, fd3, initFd3] = r.stdout.split('\n');
    expect(args).toBe('zero one');
    const [ppid, pgrp] = ids!.split(' ').map(Number);
    // Its parent is the init (the stub this test started), its group its own.
    expect(ppid).not.toBe(process.pid);
    expect(pgrp).not.toBe(ppid);
    expect(blocked).toMatch(/^SigBlk:\s+0{16}$/);
    // The init sleeps in sigtimedwait (no busy loop), and closed its copy of the error pipe.
    expect(initWaits).toMatch(/sigtimedwait/);
    expect(initState).toMatch(/^State:\s+S/);
    expect(fd3).toBe('fd3 closed');
    expect(initFd3).toBe('fd3 closed');
  });

  it("exits with the command's exit code, or 128 + the signal that killed it", () => {
    expect(init('/bin/sh', 'sh', '-c', 'exit 7').status).toBe(7);
    expect(init('/bin/sh', 'sh', '-c', 'kill -9 $$').status).toBe(137);
    expect(init('/bin/sh', 'sh', '-c', 'kill -15 $$').status).toBe(143);
  });

  it('reports a failed execve of the command as {-1, errno} and exits 127', () => {
    const r = init('/nonexistent/cmd', 'cmd');
    expect(r.status).toBe(127);
    expect(r.stderr).toBe('');
    expect(r.fd3.length).toBe(16);
    expect(r.fd3.readBigInt64LE(0)).toBe(-1n);
    expect(Number(r.fd3.readBigUInt64LE(8))).toBe(2); // ENOENT
  });
});
