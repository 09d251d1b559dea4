/** `box port CONTAINER [PRIVATE_PORT[/PROTO]]`: the host ports a running container publishes. */

import { openEngine } from '../engine.js';
import { CliError } from '../errors.js';

export async function port(reference: string, which: string | undefined): Promise<number> {
  const container = await openEngine().inspect(reference);
  const published = container.running ? (container.networkSettings?.ports ?? []) : [];
  let wanted = published;
  if (which !== undefined) {
    const match = /^(\d+)(?:\/(tcp|udp))?$/.exec(which);
    if (!match) throw new CliError(`invalid port "${which}": expected PORT[/PROTO]`);
    const [, number, protocol = 'tcp'] = match;
    wanted = published.filter((p) => p.containerPort === Number(number) && p.protocol === protocol);
    if (wanted.length === 0)
      throw new CliError(`no public port '${number}/${protocol}' published for ${reference}`, 1);
    process.stdout.write(wanted.map((p) => `${p.hostIp ?? '0.0.0.0'}:${p.hostPort}\n`).join(''));
    return 0;
  }
  process.stdout.write(
    wanted
      .map((p) => `${p.containerPort}/${p.protocol} -> ${p.hostIp ?? '0.0.0.0'}:${p.hostPort}\n`)
      .join(''),
  );
  return 0;
}
