import { describe, expect, it } from 'vitest';
import { type Attacher, ContainerStreams } from './attachments.js';

function recorder() {
  const seen: string[] = [];
  const attacher: Attacher = {
    output: (stream, chunk) => seen.push(`${stream}:${chunk.toString()}`),
    ended: (status) => seen.push(`ended:${status.exitCode}`),
  };
  return { seen, attacher };
}

describe('ContainerStreams', () => {
  it('gives every attacher the same output, from when it joined, and its end once', () => {
    const streams = new ContainerStreams('c1', true, true);
    const a = recorder();
    const b = recorder();
    streams.join(a.attacher);
    streams.output('stdout', Buffer.from('one'));
    const left = streams.join(b.attacher);
    streams.output('stdout', Buffer.from('two'));
    left.close();
    streams.output('stderr', Buffer.from('three'));
    streams.ended({ exitCode: 3, oomKilled: false });
    streams.ended({ exitCode: 4, oomKilled: false });
    expect(a.seen).toEqual(['stdout:one', 'stdout:two', 'stderr:three', 'ended:3']);
    expect(b.seen).toEqual(['stdout:two']);
  });

  it('passes input on only for a container made with -i, from attachers still there, while it runs', () => {
    const written: string[] = [];
    const sizes: string[] = [];
    const interactive = new ContainerStreams('c2', true, true);
    interactive.input.write = (chunk) => written.push(chunk.toString()) > 0;
    interactive.input.resize = (size) => sizes.push(`${size.rows}x${size.cols}`);
    const one = interactive.join(recorder().attacher);
    expect(one.stdin).toBe(true);
    one.input(Buffer.from('ls\n'));
    one.resize({ rows: 30, cols: 100 });
    one.resize({ rows: 0, cols: 100 });
    one.close();
    one.input(Buffer.from('gone\n'));
    const two = interactive.join(recorder().attacher);
    interactive.ended({ exitCode: 0, oomKilled: false });
    two.input(Buffer.from('after\n'));
    expect(written).toEqual(['ls\n']);
    expect(sizes).toEqual(['30x100']);

    const plain = new ContainerStreams('c3', false, false);
    const dropped: string[] = [];
    plain.input.write = (chunk) => dropped.push(chunk.toString()) > 0;
    const three = plain.join(recorder().attacher);
    expect(three.stdin).toBe(false);
    three.input(Buffer.from('x'));
    expect(dropped).toEqual([]);
  });
});
