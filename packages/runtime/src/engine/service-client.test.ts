import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { noServiceListens } from './service-client.js';

const failedConnect = (path: string) =>
  new Promise<NodeJS.ErrnoException>((resolve) => connect(path).once('error', resolve));

describe('noServiceListens', () => {
  it('takes a missing socket, and a reset of the connection before it was made (a service leaving), as no service', async () => {
    const missing = await failedConnect('/nonexistent/box.sock');
    expect(missing).toMatchObject({ code: 'ENOENT', syscall: 'connect' });
    expect(noServiceListens(missing)).toBe(true);
    const reset = (syscall: string) =>
      Object.assign(new Error(`${syscall} ECONNRESET`), { code: 'ECONNRESET', syscall });
    expect(noServiceListens(reset('connect'))).toBe(true);
    // Once the request may have been read, a reset is the service's failure: never sent twice.
    expect(noServiceListens(reset('read'))).toBe(false);
    expect(
      noServiceListens(Object.assign(new Error('write EPIPE'), { code: 'EPIPE', syscall: 'write' })),
    ).toBe(false);
  });
});
