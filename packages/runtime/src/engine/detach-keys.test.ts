import { describe, expect, it } from 'vitest';
import { DetachScanner, parseDetachKeys } from './detach-keys.js';

describe('parseDetachKeys', () => {
  it('reads docker key specs', () => {
    expect([...parseDetachKeys('ctrl-p,ctrl-q')]).toEqual([16, 17]);
    expect([...parseDetachKeys('ctrl-x,y')]).toEqual([24, 121]);
    expect([...parseDetachKeys('ctrl-@,ctrl-[,ctrl-\\,ctrl-],ctrl-^,ctrl-_')]).toEqual([
      0, 27, 28, 29, 30, 31,
    ]);
    expect([...parseDetachKeys('a,DEL,X')]).toEqual([97, 127, 88]);
  });

  it('refuses what docker refuses, in its words', () => {
    for (const bad of ['ctrl-xx', 'ctrl-P', 'ab', 'ctrl-1', '', 'a,,b'])
      expect(() => parseDetachKeys(bad)).toThrow(`Invalid detach keys (${bad}) provided`);
  });
});

describe('DetachScanner', () => {
  const keys = parseDetachKeys('ctrl-p,ctrl-q');

  it('detaches on the sequence, byte by byte or in one read', () => {
    const s = new DetachScanner(keys);
    expect(s.scan(Buffer.from('ls\x10'))).toEqual({ forward: Buffer.from('ls'), detach: false });
    expect(s.scan(Buffer.from('\x11'))).toEqual({ forward: Buffer.alloc(0), detach: true });
    expect(new DetachScanner(keys).scan(Buffer.from('a\x10\x11b'))).toEqual({
      forward: Buffer.from('a'),
      detach: true,
    });
  });

  it('sends a held partial match on once the sequence breaks', () => {
    const s = new DetachScanner(keys);
    expect(s.scan(Buffer.from('\x10')).forward).toEqual(Buffer.alloc(0));
    expect(s.scan(Buffer.from('x'))).toEqual({ forward: Buffer.from('\x10x'), detach: false });
    // The key that broke the sequence does not start a new one (docker's escape proxy).
    const t = new DetachScanner(keys);
    expect(t.scan(Buffer.from('\x10\x10\x11'))).toEqual({
      forward: Buffer.from('\x10\x10\x11'),
      detach: false,
    });
  });
});
