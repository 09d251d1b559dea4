import { describe, expect, it } from 'vitest';
import { parseSignal } from './signals.js';

describe("parseSignal (docker's stop signals)", () => {
  it.each([
    ['SIGTERM', 15],
    ['TERM', 15],
    ['sigusr1', 10],
    ['Usr2', 12],
    ['9', 9],
    ['64', 64],
  ])('%s is %i', (text, n) => {
    expect(parseSignal(text)).toBe(n);
  });

  it.each(['', '0', '65', 'SIGNOPE', 'SIG', '-9', 'constructor', 'toString'])('%j is none', (text) => {
    expect(parseSignal(text)).toBeUndefined();
  });
});
