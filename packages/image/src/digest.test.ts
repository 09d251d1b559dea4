import { createHash } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { WorkerDigestStream } from './digest.js';

describe('WorkerDigestStream', () => {
  it('hashes on a worker what passes through it, unchanged and in order', async () => {
    const reference = createHash('sha256');
    const passed = createHash('sha256');
    let size = 0;
    // 96 MiB in chunks of varied sizes: more than the worker's backlog, so the stream waits for it.
    async function* chunks(): AsyncGenerator<Buffer> {
      for (let i = 0; i < 96; i++) {
        const chunk = Buffer.alloc((1 << 20) - i * 7, i);
        reference.update(chunk);
        yield chunk;
      }
    }
    const hashing = new WorkerDigestStream();
    expect(() => hashing.digest).toThrow(/not ended/);
    await pipeline(
      Readable.from(chunks()),
      hashing,
      new Writable({
        write(chunk: Buffer, _encoding, callback) {
          passed.update(chunk);
          size += chunk.length;
          callback();
        },
      }),
    );
    const expected = `sha256:${reference.digest('hex')}`;
    expect(hashing.digest).toBe(expected);
    expect(`sha256:${passed.digest('hex')}`).toBe(expected);
    expect(hashing.size).toBe(size);
    expect(() => hashing.verify('layer', 'sha256:0000')).toThrow(/has digest/);
  });
});
