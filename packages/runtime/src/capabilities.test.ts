import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CAPABILITIES, capabilityNumbers } from './capabilities.js';
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
