/** Talking to the box service, starting it first when it is not running. */
import { spawn } from 'node:child_process';
import { openSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CliError } from '../errors.js';
import { boxRoot } from '../paths.js';
import type { Request, Response } from './protocol.js';

const socketPath = (): string => join(boxRoot(), 'box.sock');

function send(request: Request): Promise<Response> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath());
    let data = '';
    socket.on('connect', () => socket.write(`${JSON.stringify(request)}\n`));
    socket.on('data', (chunk) => {
      data += chunk.toString();
    });
    socket.on('error', reject);
    socket.on('close', () => {
      try {
        resolve(JSON.parse(data) as Response);
      } catch {
        reject(new CliError('the box service closed the connection without an answer'));
      }
    });
  });
}

/** Starts `box system service` in the background, detached from this terminal. */
function spawnService(): void {
  // What containers' start-up errors say stays with root, as their logs do.
  const log = openSync(join(boxRoot(), 'service.log'), 'a', 0o600);
  const child = spawn(process.execPath, [process.argv[1]!, 'system', 'service'], {
    detached: true,
    stdio: ['ignore', log, log],
    env: process.env,
  });
  child.unref();
}

export async function request(message: Request): Promise<Response> {
  try {
    return await send(message);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ECONNREFUSED') throw error;
  }
  spawnService();
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      return await send(message);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if ((code !== 'ENOENT' && code !== 'ECONNREFUSED') || Date.now() > deadline) {
        throw new CliError(`cannot reach the box service at ${socketPath()}: ${(error as Error).message}`);
      }
      await sleep(20);
    }
  }
}

/** Asks the service to start a created container; resolves with its pid. */
export async function startDetached(id: string): Promise<number> {
  const response = await request({ op: 'start', id });
  if (!response.ok) throw new CliError(response.error, response.exitCode);
  return response.pid ?? 0;
}
