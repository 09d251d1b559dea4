import { describe, expect, it } from 'vitest';
import { matchLabels, parseFilters, pathMatch } from './filters.js';

describe('parseFilters (docker --filter)', () => {
  it('groups values by key, the key trimmed and lower-cased', () => {
    expect([...parseFilters(['label=a', ' Label =b=c', 'dangling=true'], ['label', 'dangling'])]).toEqual([
      ['label', ['a', 'b=c']],
      ['dangling', ['true']],
    ]);
  });

  it("refuses a key the command does not know, and a filter without '='", () => {
    expect(() => parseFilters(['colour=red'], ['label'])).toThrow("invalid filter 'colour'");
    expect(() => parseFilters(['label'], ['label'])).toThrow('bad format of filter (expected name=value)');
  });
});

describe('matchLabels (filters.MatchKVList)', () => {
  const labels = { tier: 'web', empty: '' };
  it('K asks for the label, K=V for its value; all must match', () => {
    expect(matchLabels(labels, ['tier'])).toBe(true);
    expect(matchLabels(labels, ['empty'])).toBe(true);
    expect(matchLabels(labels, ['empty='])).toBe(true);
    expect(matchLabels(labels, ['tier=web', 'empty'])).toBe(true);
    expect(matchLabels(labels, ['tier=db'])).toBe(false);
    expect(matchLabels(labels, ['tier', 'nope'])).toBe(false);
    expect(matchLabels(undefined, ['tier'])).toBe(false);
  });
});

describe("pathMatch (Go's path.Match)", () => {
  it.each([
    ['busy*', 'busybox:latest', true],
    ['*', 'library/busybox', false],
    ['*/*', 'library/busybox', true],
    ['busybox:?atest', 'busybox:latest', true],
    ['busybox:[a-l]atest', 'busybox:latest', true],
    ['busybox:[^l]atest', 'busybox:latest', false],
    ['busybox:[!a-k]atest', 'busybox:latest', true],
    ['a.b', 'axb', false],
    ['a\\*', 'a*', true],
    ['a\\*', 'ab', false],
  ])('%s on %s: %s', (pattern, name, expected) => {
    expect(pathMatch(pattern, name)).toBe(expected);
  });

  it('a malformed pattern is an error', () => {
    for (const pattern of ['[a', '[]', 'a\\', '[a-]'])
      expect(() => pathMatch(pattern, 'a'), pattern).toThrow('syntax error in pattern');
  });
});
