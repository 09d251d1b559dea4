import { constants } from 'node:os';
import { CliError } from './errors.js';

/** A signal by name (TERM, SIGTERM) or number, as docker kill -s takes it. */
export function parseSignal(value: string): number {
  const text = value.trim().toUpperCase();
  if (/^\d+$/.test(text)) {
    const n = Number(text);
    if (n >= 1 && n <= 64) return n;
  } else {
    const name = (text.startsWith('SIG') ? text : `SIG${text}`) as keyof typeof constants.signals;
    const n = constants.signals[name];
    if (n !== undefined) return n;
  }
  throw new CliError(`invalid signal: ${value}`, 1);
}
