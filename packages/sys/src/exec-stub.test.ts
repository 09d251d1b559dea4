import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { execStubElf, execStubFd } from './exec-stub.js';

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

describe('exec stub', () => {
  it('executes argv[1] with argv[2…] and the environment, closing the error fd', () => {
    const script = 'echo "$0 $1 $STUB_VAR"; test -e /proc/$$/fd/3 && echo fd3 open || echo fd3 closed';
    const r = runStub(['3', '/bin/sh', 'sh', '-c', script, 'zero', 'one'], { STUB_VAR: 'v' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    // The error pipe was marked close-on-exec: the command does not get it.
    expect(r.stdout).toBe('zero one v\nfd3 closed\n');
    expect(r.fd3.length).toBe(0);
  });

  it('reports a failed execve as {-1, errno} on the error fd and exits 127', () => {
    const r = runStub(['3', '/nonexistent/cmd', 'cmd']);
    expect(r.status).toBe(127);
    expect(r.fd3.length).toBe(16);
    expect(r.fd3.readBigInt64LE(0)).toBe(-1n);
    expect(Number(r.fd3.readBigUInt64LE(8))).toBe(2); // ENOENT
  });

  it('refuses to run when started by something other than box', () => {
    for (const argv of [
      ['/proc/self/exe', '/script'],
      ['7x', '/bin/true', 'true'],
      ['3'],
      ['', '/bin/true', 'x'],
    ]) {
      const r = runStub(argv);
      expect(r.status, argv.join(' ')).toBe(127);
      expect(r.stderr).toBe('box exec stub: not a command\n');
    }
    // A number that is no open fd of the process.
    const r = runStub(['999', '/bin/true', 'true']);
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
