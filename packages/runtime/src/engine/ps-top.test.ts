import { describe, expect, it } from 'vitest';
import { parsePsOutput, validatePsArgs } from './ps-top.js';

const EF = `UID          PID    PPID  C STIME TTY          TIME CMD
root           1       0  0 09:06 ?        00:00:09 /sbin/init splash
root         970     925  0 09:56 ?        00:00:00 sleep 301
root         971     970  0 09:56 ?        00:00:00 sleep  300
`;

describe('parsePsOutput', () => {
  it("keeps the container's rows, the command with its spaces in the last column", () => {
    expect(parsePsOutput(EF, [970, 971])).toEqual({
      titles: ['UID', 'PID', 'PPID', 'C', 'STIME', 'TTY', 'TIME', 'CMD'],
      processes: [
        ['root', '970', '925', '0', '09:56', '?', '00:00:00', 'sleep 301'],
        ['root', '971', '970', '0', '09:56', '?', '00:00:00', 'sleep 300'],
      ],
    });
  });

  it("keeps the thread lines (PID -) of the container's processes only", () => {
    const threads = 'PID COMMAND\n1 init\n- -\n970 sleep\n- -\n';
    expect(parsePsOutput(threads, [970]).processes).toEqual([
      ['970', 'sleep'],
      ['-', '-'],
    ]);
  });

  it("refuses an output without a PID column, or a PID that is not a number, with docker's words", () => {
    expect(() => parsePsOutput('COMMAND\nsleep\n', [1])).toThrow("Couldn't find PID field in ps output");
    expect(() => parsePsOutput('PID CMD\nx sleep\n', [1])).toThrow("Unexpected pid 'x'");
  });
});

describe('validatePsArgs', () => {
  it('refuses a column renamed PID, except pid itself', () => {
    expect(() => validatePsArgs('-o user=PID')).toThrow('specifying "user=PID" is not allowed');
    expect(() => validatePsArgs('-o pid=PID')).not.toThrow();
    expect(() => validatePsArgs('-o pid,comm')).not.toThrow();
  });
});
