/** Signals by docker's words: `--stop-signal`, an image's StopSignal. */
import { constants } from 'node:os';

/** SIGRTMAX on Linux: the highest signal number. */
const HIGHEST = 64;

/**
 * A signal as docker's signal.ParseSignal takes it: a number, or a name with or without `SIG`
 * in any case (`TERM`, `sigusr1`). Undefined when it names none.
 */
export function parseSignal(text: string): number | undefined {
  if (/^\d+$/.test(text)) {
    const n = Number(text);
    return n >= 1 && n <= HIGHEST ? n : undefined;
  }
  const name = `SIG${text.toUpperCase().replace(/^SIG/, '')}`;
  return Object.hasOwn(constants.signals, name)
    ? constants.signals[name as keyof typeof constants.signals]
    : undefined;
}
