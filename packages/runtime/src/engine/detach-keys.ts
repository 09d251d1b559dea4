/**
 * docker's detach keys: a key sequence typed into an attached container's input that ends the
 * attachment and leaves the container running (Ctrl-P Ctrl-Q unless told otherwise).
 */
import { EngineError } from '../errors.js';

export const DEFAULT_DETACH_KEYS = 'ctrl-p,ctrl-q';

/**
 * `--detach-keys` as docker reads it: comma-separated keys, each one character or `ctrl-` and one
 * of a-z @ [ \ ] ^ _ (control codes 0-31), or DEL. Anything else is refused with docker's words.
 */
export function parseDetachKeys(spec: string): Buffer {
  const codes: number[] = [];
  for (const key of spec.split(',')) {
    if (key.length === 1) {
      codes.push(key.charCodeAt(0));
      continue;
    }
    const control = /^ctrl-([a-z@[\\\]^_])$/.exec(key);
    if (control) codes.push(control[1]!.toUpperCase().charCodeAt(0) - 0x40);
    else if (key === 'DEL') codes.push(127);
    else throw new EngineError('EINVAL', `Invalid detach keys (${spec}) provided`);
  }
  // A character past one byte (a non-ASCII key) cannot be matched against a byte stream.
  if (codes.some((c) => c > 0xff)) throw new EngineError('EINVAL', `Invalid detach keys (${spec}) provided`);
  return Buffer.from(codes);
}

/**
 * Watches input for the detach sequence, as docker's escape proxy does: the keys of a partial
 * match are held back, and sent on (with the key that broke the sequence, which is not taken as
 * the start of a new one) as soon as the sequence breaks. The sequence itself never reaches the
 * container.
 */
export class DetachScanner {
  private matched = 0;

  constructor(private readonly keys: Buffer) {}

  /** What of `chunk` goes to the container, and whether the sequence is now complete. */
  scan(chunk: Buffer): { forward: Buffer; detach: boolean } {
    if (this.keys.length === 0) return { forward: chunk, detach: false };
    const out: number[] = [];
    for (const byte of chunk) {
      if (byte === this.keys[this.matched]) {
        this.matched++;
        if (this.matched === this.keys.length) {
          this.matched = 0;
          return { forward: Buffer.from(out), detach: true };
        }
        continue;
      }
      if (this.matched > 0) {
        for (let i = 0; i < this.matched; i++) out.push(this.keys[i]!);
        this.matched = 0;
      }
      out.push(byte);
    }
    return { forward: Buffer.from(out), detach: false };
  }
}
