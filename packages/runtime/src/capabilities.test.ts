import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CAPABILITIES, capabilityNumbers, tweakCapabilities } from './capabilities.js';
import { SpecError } from './errors.js';
import { DEFAULT_CAPABILITIES } from './spec.js';

describe('capabilityNumbers', () => {
  it('maps names to numbers, with or without CAP_, in any case', () => {
    expect(capabilityNumbers(['CAP_CHOWN', 'net_raw', 'Sys_Admin', 'cap_checkpoint_restore'])).toEqual([
      0, 13, 21, 40,
    ]);
  });

  it('returns nothing for no names', () => {
    expect(capabilityNumbers()).toEqual([]);
    expect(capabilityNumbers([])).toEqual([]);
  });

  it('rejects unknown names with a SpecError', () => {
    for (const name of ['CAP_BOGUS', 'bogus', '', 'CAP_', 'constructor', '__proto__', 'toString']) {
      expect(() => capabilityNumbers(['CAP_CHOWN', name])).toThrow(SpecError);
    }
    expect(() => capabilityNumbers(['CAP_FLY'])).toThrow('unknown capability "CAP_FLY"');
  });

  it("knows docker's default set", () => {
    expect(capabilityNumbers(DEFAULT_CAPABILITIES)).toHaveLength(DEFAULT_CAPABILITIES.length);
  });

  it('has one distinct number per capability up to what this kernel knows', () => {
    const numbers = Object.values(CAPABILITIES);
    expect(new Set(numbers).size).toBe(numbers.length);
    const last = Number(readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8'));
    expect(Math.max(...numbers)).toBeLessThanOrEqual(last);
  });
});

describe('tweakCapabilities (docker --cap-add / --cap-drop)', () => {
  const base = ['CAP_CHOWN', 'CAP_KILL', 'CAP_NET_RAW'];

  it('drops, then adds, names in any case with or without CAP_', () => {
    expect(tweakCapabilities(base, ['sys_admin'], ['net_raw', 'CAP_KILL'])).toEqual([
      'CAP_CHOWN',
      'CAP_SYS_ADMIN',
    ]);
  });

  it('keeps the base set when nothing is asked', () => {
    expect(tweakCapabilities(base)).toEqual(base);
  });

  it('ALL dropped: only the added ones; ALL added: every capability but the dropped ones', () => {
    expect(tweakCapabilities(base, ['NET_BIND_SERVICE'], ['ALL'])).toEqual(['CAP_NET_BIND_SERVICE']);
    const all = tweakCapabilities(base, ['all'], ['SYS_ADMIN']);
    expect(all).toHaveLength(Object.keys(CAPABILITIES).length - 1);
    expect(all).not.toContain('CAP_SYS_ADMIN');
  });

  it('refuses an unknown capability with a SpecError naming it', () => {
    expect(() => tweakCapabilities(base, ['CAP_FLY'])).toThrow('unknown capability: "CAP_FLY"');
    expect(() => tweakCapabilities(base, [], ['nope'])).toThrow(SpecError);
  });
});
