import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CommandNotExecutableError, CommandNotFoundError } from '../errors.js';
import { lookupCommand } from './lookup.js';

let top: string;
let upper: string;
let lower: string;

function file(root: string, path: string, mode: number): void {
  mkdirSync(dirname(join(root, path)), { recursive: true });
  writeFileSync(join(root, path), '#!/bin/sh\n');
  chmodSync(join(root, path), mode);
}

beforeAll(() => {
  top = mkdtempSync(join(tmpdir(), 'box-lookup-'));
  lower = join(top, 'lower');
  upper = join(top, 'upper');
  file(lower, 'bin/sh', 0o755);
  file(lower, 'bin/plain', 0o644);
  file(lower, 'bin/only-owner-x', 0o744);
  mkdirSync(join(lower, 'bin/adir'));
  file(lower, 'usr/bin/tool', 0o755);
  file(lower, 'bin/tool', 0o755);
  file(lower, 'usr/local/bin/denied', 0o600);
  file(lower, 'bin/denied', 0o755);
  file(lower, 'app/run.sh', 0o755);
  symlinkSync('sh', join(lower, 'bin/relative-link'));
  symlinkSync('/bin/sh', join(lower, 'bin/absolute-link'));
  symlinkSync('/usr/bin/env', join(lower, 'bin/host-only')); // exists on the host, not in the rootfs
  symlinkSync('/bin/adir', join(lower, 'bin/dir-link'));
  mkdirSync(join(upper, 'bin'), { recursive: true });
  file(upper, 'bin/upper-only', 0o755);
  file(upper, 'bin/shadowed', 0o644);
  file(lower, 'bin/shadowed', 0o755);
});

afterAll(() => rmSync(top, { recursive: true, force: true }));

const PATH = ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'];

function error(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected an error');
}

describe('lookupCommand: found', () => {
  it('takes a path with a slash as is', () => {
    expect(lookupCommand(lower, '/bin/sh', PATH, '/')).toBe('/bin/sh');
  });

  it('resolves a relative path against cwd', () => {
    expect(lookupCommand(lower, './run.sh', PATH, '/app')).toBe('/app/run.sh');
    expect(lookupCommand(lower, 'bin/sh', PATH, '/')).toBe('/bin/sh');
    // ".." is left for the kernel: /app may be a symlink.
    expect(lookupCommand(lower, '../bin/sh', PATH, '/app')).toBe('/app/../bin/sh');
  });

  it('searches PATH in order and returns the first executable', () => {
    expect(lookupCommand(lower, 'tool', PATH, '/')).toBe('/usr/bin/tool');
    expect(lookupCommand(lower, 'tool', ['PATH=/bin:/usr/bin'], '/')).toBe('/bin/tool');
  });

  it('uses the last PATH entry of env, and the default PATH without one', () => {
    expect(lookupCommand(lower, 'tool', ['PATH=/usr/bin', 'PATH=/bin'], '/')).toBe('/bin/tool');
    expect(lookupCommand(lower, 'tool', [], '/')).toBe('/usr/bin/tool');
  });

  it('skips a non-executable match and goes on, as execvp does', () => {
    expect(lookupCommand(lower, 'denied', PATH, '/')).toBe('/bin/denied');
  });

  it('searches cwd for an empty PATH entry', () => {
    expect(lookupCommand(lower, 'run.sh', ['PATH=/bin:'], '/app')).toBe('/app/run.sh');
  });

  it('follows symlinks inside the rootfs', () => {
    expect(lookupCommand(lower, 'relative-link', PATH, '/')).toBe('/bin/relative-link');
    expect(lookupCommand(lower, 'absolute-link', PATH, '/')).toBe('/bin/absolute-link');
  });

  it('accepts a file with any execute bit', () => {
    expect(lookupCommand(lower, 'only-owner-x', PATH, '/')).toBe('/bin/only-owner-x');
  });

  it('looks through the layers of an overlay, top first', () => {
    expect(lookupCommand([upper, lower], 'upper-only', PATH, '/')).toBe('/bin/upper-only');
    expect(lookupCommand([upper, lower], 'sh', PATH, '/')).toBe('/bin/sh');
  });
});

describe('lookupCommand: not found (exit 127)', () => {
  it('fails for a name on no PATH entry', () => {
    const e = error(() => lookupCommand(lower, 'missing', PATH, '/'));
    expect(e).toBeInstanceOf(CommandNotFoundError);
    expect(e).toMatchObject({ code: 'ENOCMD', command: 'missing' });
    expect(e.message).toBe('exec: "missing": executable file not found in $PATH');
  });

  it('fails for a missing path', () => {
    const e = error(() => lookupCommand(lower, '/bin/missing', PATH, '/'));
    expect(e).toBeInstanceOf(CommandNotFoundError);
    expect(e.message).toBe('exec: "/bin/missing": no such file or directory');
  });

  it('fails for an empty command', () => {
    expect(error(() => lookupCommand(lower, '', PATH, '/'))).toBeInstanceOf(CommandNotFoundError);
  });

  it('does not find host files through an absolute symlink in the rootfs', () => {
    expect(error(() => lookupCommand(lower, 'host-only', PATH, '/'))).toBeInstanceOf(CommandNotFoundError);
    expect(error(() => lookupCommand(lower, '/usr/bin/env', PATH, '/'))).toBeInstanceOf(CommandNotFoundError);
  });

  it('does not find a program that is only in a PATH directory not listed', () => {
    expect(error(() => lookupCommand(lower, 'tool', ['PATH=/sbin'], '/'))).toBeInstanceOf(
      CommandNotFoundError,
    );
  });

  it('fails when no layer has it', () => {
    expect(error(() => lookupCommand([upper, lower], 'nowhere', PATH, '/'))).toBeInstanceOf(
      CommandNotFoundError,
    );
  });
});

describe('lookupCommand: not executable (exit 126)', () => {
  it('fails for a file without execute bits', () => {
    const e = error(() => lookupCommand(lower, '/bin/plain', PATH, '/'));
    expect(e).toBeInstanceOf(CommandNotExecutableError);
    expect(e).toMatchObject({ code: 'ENOEXECCMD', command: '/bin/plain' });
    expect(e.message).toBe('exec: "/bin/plain": permission denied');
  });

  it('fails for a directory', () => {
    const e = error(() => lookupCommand(lower, '/bin/adir', PATH, '/'));
    expect(e).toBeInstanceOf(CommandNotExecutableError);
    expect(e.message).toBe('exec: "/bin/adir": is a directory');
    expect(error(() => lookupCommand(lower, '/bin/dir-link', PATH, '/')).message).toContain('is a directory');
  });

  it('reports a PATH search that found only non-executable files as 126', () => {
    const e = error(() => lookupCommand(lower, 'plain', PATH, '/'));
    expect(e).toBeInstanceOf(CommandNotExecutableError);
    expect(e.message).toBe('exec: "plain": permission denied');
    expect(error(() => lookupCommand(lower, 'adir', PATH, '/'))).toBeInstanceOf(CommandNotExecutableError);
  });

  it('lets an upper layer shadow an executable in a lower one', () => {
    expect(error(() => lookupCommand([upper, lower], '/bin/shadowed', PATH, '/'))).toBeInstanceOf(
      CommandNotExecutableError,
    );
    expect(lookupCommand(lower, '/bin/shadowed', PATH, '/')).toBe('/bin/shadowed');
  });
});
