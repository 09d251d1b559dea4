import { describe, expect, it } from 'vitest';
import { type CommandSpec, parseCommandLine } from './command-line.js';

const root: CommandSpec = {
  name: 'box',
  description: '',
  subcommands: [
    {
      name: 'attach',
      description: '',
      args: ['<container>'],
      options: [
        { long: 'sig-proxy', description: '', default: 'true' },
        { long: 'no-stdin', description: '' },
      ],
      run: async () => 0,
    },
  ],
};

describe('switches', () => {
  it("take docker's --flag=true and --flag=false", () => {
    expect(parseCommandLine(['attach', '--sig-proxy=false', 'c'], root).options.sigProxy).toBe(false);
    expect(parseCommandLine(['attach', '--sig-proxy=true', 'c'], root).options.sigProxy).toBe(true);
    expect(parseCommandLine(['attach', '--sig-proxy', 'c'], root).options.sigProxy).toBe(true);
    expect(parseCommandLine(['attach', 'c'], root).options.sigProxy).toBe('true');
    const parsed = parseCommandLine(['attach', '--no-stdin=false', 'c'], root);
    expect(parsed.options.noStdin).toBe(false);
    expect(parsed.args).toEqual(['c']);
  });

  it('refuse any other value', () => {
    expect(() => parseCommandLine(['attach', '--sig-proxy=maybe', 'c'], root)).toThrow();
  });
});
