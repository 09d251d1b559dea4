/**
 * Names handed to the kernel as C strings. The kernel reads a name up to its first NUL, so a name
 * with a NUL of its own is another, shorter name there: `..\0/etc` is `..`. Whatever checked the
 * whole name (that it stays inside a root, that it is not a forbidden xattr) would not have checked
 * the name used. Such names come from images and archives (a JSON string or a PAX record may hold
 * `\u0000`), so every name is refused here, with EINVAL, before it reaches a call.
 */
import { errnoValue, SyscallError } from './errors.js';

/** Throws a SyscallError (EINVAL, for `syscall`) when a name holds a NUL byte. */
export function assertNoNul(syscall: string, ...names: (string | Buffer | null | undefined)[]): void {
  for (const name of names) {
    if (name === null || name === undefined) continue;
    if (typeof name === 'string' ? !name.includes('\0') : !name.includes(0)) continue;
    throw new SyscallError(syscall, errnoValue('EINVAL'), {
      path: JSON.stringify(typeof name === 'string' ? name : name.toString('utf8')),
      args: '(a NUL byte in a name)',
    });
  }
}

/** `name`'s bytes, NUL-terminated, for a call to `syscall`. */
export function cString(name: string | Buffer, syscall: string): Buffer {
  assertNoNul(syscall, name);
  return Buffer.concat([typeof name === 'string' ? Buffer.from(name) : name, Buffer.alloc(1)]);
}
