import { describe, expect, it } from 'vitest';
import { parseEnvFlags } from './create-flags.js';

describe('parseEnvFlags (docker -e)', () => {
  it('keeps K=V, copies a bare K from the host, drops an unset one', () => {
    process.env.BOX_TEST_FROM_HOST = 'host value';
    delete process.env.BOX_TEST_UNSET;
    expect(parseEnvFlags(['A=1', 'B=', 'C=x=y', 'BOX_TEST_FROM_HOST', 'BOX_TEST_UNSET'])).toEqual([
      'A=1',
      'B=',
      'C=x=y',
      'BOX_TEST_FROM_HOST=host value',
    ]);
  });

  it.each(['=x', '', 'A B=1'])('rejects %j', (value) => {
    expect(() => parseEnvFlags([value])).toThrow('invalid environment variable');
  });
});
