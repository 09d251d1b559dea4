/**
 * The live side of a container the supervisor runs: its output as it comes (besides its log),
 * for whoever attaches, and a way in for their input and window size. Several attachers see the
 * same output; each one leaving changes nothing for the container.
 */
import type { WindowSize } from '@box/sys';
import type { ExitStatus } from './types.js';

/** One attached caller, as the supervisor sees it. */
export interface Attacher {
  output(stream: 'stdout' | 'stderr', chunk: Buffer): void;
  /** The container ended (its end is recorded, or it was removed); called once, last. */
  ended(status: ExitStatus): void;
}

/** What an attacher holds: its way in, and its way out. */
export interface Attachment {
  readonly id: string;
  readonly pid: number;
  /** The container has a terminal (its output is one stream). */
  readonly tty: boolean;
  /** The container takes input (-i): `input` reaches it. */
  readonly stdin: boolean;
  /** False when the caller should stop sending until `onDrain` (the container reads slowly). */
  input(chunk: Buffer): boolean;
  onDrain(callback: () => void): void;
  resize(size: WindowSize): void;
  /** Leaves; the container runs on. */
  close(): void;
}

export interface ContainerInput {
  /** Its stdin (a pipe, or the terminal's master); absent without -i. False: wait for `drain`. */
  write?: (chunk: Buffer) => boolean;
  drain?: (callback: () => void) => void;
  /** Its terminal's window size; absent without a terminal. */
  resize?: (size: WindowSize) => void;
}

export class ContainerStreams {
  private readonly attachers = new Set<Attacher>();
  private done = false;
  /** Known once it runs. */
  pid = 0;
  /** Filled in once the container runs (its terminal's master arrives then). */
  readonly input: ContainerInput = {};

  constructor(
    readonly id: string,
    readonly tty: boolean,
    /** It was made with -i: attachers' input reaches it. */
    readonly stdin: boolean,
  ) {}

  output(stream: 'stdout' | 'stderr', chunk: Buffer): void {
    for (const attacher of this.attachers) attacher.output(stream, chunk);
  }

  join(attacher: Attacher): Attachment {
    this.attachers.add(attacher);
    const streams = this;
    const here = () => !this.done && this.attachers.has(attacher);
    return {
      id: this.id,
      get pid() {
        return streams.pid;
      },
      tty: this.tty,
      stdin: this.stdin,
      input: (chunk) => (this.stdin && here() ? (this.input.write?.(chunk) ?? true) : true),
      onDrain: (callback) => {
        if (this.input.drain) this.input.drain(callback);
        else callback();
      },
      resize: (size) => {
        if (here() && size.rows > 0 && size.cols > 0) this.input.resize?.(size);
      },
      close: () => {
        this.attachers.delete(attacher);
      },
    };
  }

  ended(status: ExitStatus): void {
    if (this.done) return;
    this.done = true;
    const attachers = [...this.attachers];
    this.attachers.clear();
    for (const attacher of attachers) attacher.ended(status);
  }
}
