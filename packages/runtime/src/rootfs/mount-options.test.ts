import { MS } from '@box/sys';
import { describe, expect, it } from 'vitest';
import { parseMountOptions } from './mount-options.js';

describe('parseMountOptions', () => {
  it('returns nothing set for no options', () => {
    const empty = {
      flags: 0,
      propagation: 0,
      data: [],
      bind: false,
      recursive: false,
      readonly: false,
      copyUp: false,
    };
    expect(parseMountOptions()).toEqual(empty);
    expect(parseMountOptions([])).toEqual(empty);
  });

  it("takes runc's tmpcopyup (and notmpcopyup) as no mount data", () => {
    const parsed = parseMountOptions(['rw', 'nosuid', 'tmpcopyup', 'size=1m']);
    expect(parsed.copyUp).toBe(true);
    expect(parsed.data).toEqual(['size=1m']);
    expect(parseMountOptions(['tmpcopyup', 'notmpcopyup']).copyUp).toBe(false);
  });

  it('turns flag options into mount flags', () => {
    const parsed = parseMountOptions(['nosuid', 'noexec', 'nodev', 'ro']);
    expect(parsed.flags).toBe(MS.NOSUID | MS.NOEXEC | MS.NODEV | MS.RDONLY);
    expect(parsed.readonly).toBe(true);
    expect(parsed.data).toEqual([]);
    expect(
      parseMountOptions(['strictatime', 'noatime', 'nodiratime', 'relatime', 'sync', 'dirsync']).flags,
    ).toBe(MS.STRICTATIME | MS.NOATIME | MS.NODIRATIME | MS.RELATIME | MS.SYNCHRONOUS | MS.DIRSYNC);
  });

  it('lets a later option clear an earlier one', () => {
    expect(parseMountOptions(['ro', 'rw'])).toMatchObject({ flags: 0, readonly: false });
    expect(parseMountOptions(['rw', 'ro'])).toMatchObject({ flags: MS.RDONLY, readonly: true });
    expect(parseMountOptions(['nosuid', 'nodev', 'suid']).flags).toBe(MS.NODEV);
    expect(parseMountOptions(['noexec', 'exec', 'dev', 'async', 'atime']).flags).toBe(0);
  });

  it('recognises bind and rbind', () => {
    expect(parseMountOptions(['bind'])).toMatchObject({ bind: true, recursive: false });
    expect(parseMountOptions(['rbind'])).toMatchObject({ bind: true, recursive: true });
    expect(parseMountOptions(['rbind', 'bind'])).toMatchObject({ bind: true, recursive: true });
  });

  it('collects propagation separately', () => {
    expect(parseMountOptions(['rbind', 'rprivate'])).toMatchObject({
      propagation: MS.PRIVATE | MS.REC,
      flags: 0,
      bind: true,
    });
    expect(parseMountOptions(['slave']).propagation).toBe(MS.SLAVE);
    expect(parseMountOptions(['rshared']).propagation).toBe(MS.SHARED | MS.REC);
    expect(parseMountOptions(['runbindable']).propagation).toBe(MS.UNBINDABLE | MS.REC);
  });

  it('passes everything else as filesystem data, in order', () => {
    const parsed = parseMountOptions(['nosuid', 'mode=755', 'size=65536k', 'newinstance', 'gid=5']);
    expect(parsed.flags).toBe(MS.NOSUID);
    expect(parsed.data).toEqual(['mode=755', 'size=65536k', 'newinstance', 'gid=5']);
  });
});
