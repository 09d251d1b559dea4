import { closeSync, readSync } from 'node:fs';
import { pipe, setNonBlocking } from '@box/sys';
import { describe, expect, it } from 'vitest';
import { TerminalWriter } from './terminal-writer.js';

describe('TerminalWriter', () => {
  it('never blocks on a reader that does not read: it queues, asks to wait, and drains in order', async () => {
    const [read, write] = pipe();
    setNonBlocking(read); // this test reads with readSync while the writer's timer refills the pipe
    try {
      const writer = new TerminalWriter(write);
      const chunk = Buffer.alloc(4096);
      const answers: boolean[] = [];
      // 512 KiB into a pipe that holds 64 KiB and that nobody reads: a blocking write would
      // hang here for ever.
      for (let i = 0; i < 128; i++) {
        chunk.fill(i);
        answers.push(writer.write(Buffer.from(chunk)));
      }
      expect(answers[0]).toBe(true);
      expect(answers.at(-1)).toBe(false);
      let drained = false;
      writer.onDrain(() => {
        drained = true;
      });
      expect(drained).toBe(false);
      // The reader catches up: everything arrives, in order, and the waiting caller is told.
      const got = Buffer.alloc(128 * 4096);
      let at = 0;
      while (at < got.length) {
        try {
          at += readSync(read, got, at, got.length - at, null);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw error;
        }
        await new Promise((r) => setTimeout(r, 5));
      }
      for (let i = 0; i < 128; i++) expect(got[i * 4096]).toBe(i);
      await new Promise((r) => setTimeout(r, 50));
      expect(drained).toBe(true);
      writer.close();
    } finally {
      closeSync(read);
      closeSync(write);
    }
  });
});
