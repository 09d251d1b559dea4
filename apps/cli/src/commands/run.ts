/**
 * `box run`: image → container record → OCI config → @box/runtime
 * startContainer → wait → exit code, with the container's writable layer as
 * an overlay mounted inside its own mount namespace.
 */
import { chownSync, closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { ChildSetupError } from '@box/ns';
import {
  CommandNotExecutableError,
  CommandNotFoundError,
  type ContainerProcess,
  DEFAULT_PATH,
  defaultSpec,
  type Spec,
  SpecError,
  startContainer,
} from '@box/runtime';
import { receiveFd, socketPair } from '@box/sys';
import { type ContainerState, createContainer, removeContainer, writeState } from '../containers.js';
import { CliError, EXIT_NOT_EXECUTABLE, EXIT_NOT_FOUND } from '../errors.js';
import { findImage } from '../images.js';
import { reconcile } from '../recovery.js';
import { parseResourceFlags, type ResourceFlags } from '../resources.js';
import { attachTerminal, currentWindowSize } from '../terminal.js';
import { resolveUser } from '../user.js';

export interface RunFlags extends ResourceFlags {
  rm?: boolean;
  interactive?: boolean;
  tty?: boolean;
  env: string[];
  workdir?: string;
  user?: string;
  hostname?: string;
  name?: string;
  userns?: boolean;
}

const ENV_NAME = /^[^=\s]+$/;

/** Docker's `-e`: K=V sets, a bare K copies the host's value (or nothing if unset). */
export function parseEnvFlags(values: readonly string[]): string[] {
  const out: string[] = [];
  for (const value of values) {
    const eq = value.indexOf('=');
    const name = eq === -1 ? value : value.slice(0, eq);
    if (!ENV_NAME.test(name)) throw new CliError(`invalid environment variable: "${value}"`);
    if (eq !== -1) out.push(value);
    else if (process.env[name] !== undefined) out.push(`${name}=${process.env[name]}`);
  }
  return out;
}

/** Later entries win, as in docker. */
function mergeEnv(...lists: (readonly string[])[]): string[] {
  const map = new Map<string, string>();
  for (const list of lists) for (const e of list) map.set(e.slice(0, e.indexOf('=')), e);
  return [...map.values()];
}

/** container root -> host uid range for --userns: /etc/subuid's "box" entry, else 100000:65536. */
function userNamespaceRange(file: string): { hostID: number; size: number } {
  try {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const [user, start, count] = line.split(':');
      if (user === 'box' && start && count) return { hostID: Number(start), size: Number(count) };
    }
  } catch {
    // no file
  }
  return { hostID: 100000, size: 65536 };
}

export async function run(imageRef: string, command: string[], flags: RunFlags): Promise<number> {
  const userEnv = parseEnvFlags(flags.env);
  const resources = parseResourceFlags(flags);
  if (flags.workdir !== undefined && !posix.isAbsolute(flags.workdir)) {
    throw new CliError(
      `the working directory '${flags.workdir}' is invalid, it needs to be an absolute path`,
    );
  }
  const image = findImage(imageRef);
  const args = [
    ...(image.config.Entrypoint ?? []),
    ...(command.length > 0 ? command : (image.config.Cmd ?? [])),
  ];
  if (args.length === 0) throw new CliError('no command specified');
  const user = resolveUser(image.rootfs, flags.user ?? (image.config.User || undefined));
  await reconcile();

  const container = createContainer(flags.name);
  let proc: ContainerProcess | undefined;
  let devNull: number | undefined;
  let sockets: [number, number] | undefined;
  try {
    const hostname = flags.hostname ?? container.id.slice(0, 12);
    const uidRange = userNamespaceRange('/etc/subuid');
    const gidRange = userNamespaceRange('/etc/subgid');
    const cgroupsPath = `box/${container.id}`;
    const spec: Spec = defaultSpec({
      rootfs: join(container.dir, 'rootfs'),
      args,
      cgroupsPath,
      userns: flags.userns
        ? {
            uidMappings: [{ containerID: 0, ...uidRange }],
            gidMappings: [{ containerID: 0, ...gidRange }],
          }
        : undefined,
    });
    const proc_ = spec.process!;
    proc_.terminal = flags.tty ?? false;
    proc_.user = { uid: user.uid, gid: user.gid, additionalGids: user.additionalGids };
    proc_.cwd = flags.workdir ?? (image.config.WorkingDir || '/');
    proc_.env = mergeEnv(
      [`PATH=${DEFAULT_PATH}`],
      image.config.Env ?? [],
      [`HOSTNAME=${hostname}`],
      flags.tty ? ['TERM=xterm'] : [],
      [`HOME=${user.home}`],
      userEnv,
    );
    if (user.uid !== 0) {
      // As docker: a non-root user keeps the bounding set but has no effective capabilities.
      proc_.capabilities = { bounding: proc_.capabilities?.bounding };
    }
    const size = flags.tty ? currentWindowSize() : undefined;
    if (size) proc_.consoleSize = { height: size.rows, width: size.cols };
    spec.hostname = hostname;
    spec.linux!.resources = { ...spec.linux!.resources, ...resources };

    const upperdir = join(container.dir, 'upper');
    const workdir = join(container.dir, 'work');
    for (const dir of [spec.root!.path, upperdir, workdir]) mkdirSync(dir, { mode: 0o755 });
    if (flags.userns) {
      // The container's root must own its writable layer.
      chownSync(upperdir, uidRange.hostID, gidRange.hostID);
      chownSync(workdir, uidRange.hostID, gidRange.hostID);
    }
    writeFileSync(join(container.dir, 'config.json'), `${JSON.stringify(spec, null, 2)}\n`);
    const state: ContainerState = {
      id: container.id,
      name: container.name,
      image: image.name,
      command: args,
      created: new Date().toISOString(),
      status: 'created',
      autoRemove: flags.rm ?? false,
      cgroupsPath,
    };
    writeState(container.dir, state);

    if (flags.tty) sockets = socketPair();
    devNull = flags.interactive ? undefined : openSync('/dev/null', 'r');
    proc = await startContainer({
      spec,
      overlay: { lowerdirs: [image.rootfs], upperdir, workdir },
      stdio: [devNull ?? 0, 1, 2],
      consoleSocket: sockets?.[1],
      dieWithParent: true,
    });
    writeState(container.dir, { ...state, status: 'running', pid: proc.pid });

    const terminal = sockets ? attachTerminal(takeMaster(sockets[0]), flags.interactive ?? false) : undefined;
    const stopForwarding = forwardSignals(proc);
    const status = await proc.exited;
    stopForwarding();
    if (terminal) {
      await Promise.race([terminal.drained, new Promise((r) => setTimeout(r, 500))]);
      terminal.detach();
    }
    const exitCode = status.signal !== null ? 128 + status.signal : (status.exitCode ?? 255);
    if (!flags.rm) {
      writeState(container.dir, {
        ...state,
        status: 'exited',
        exitCode,
        oomKilled: status.oomKilled,
        finished: new Date().toISOString(),
      });
    }
    return exitCode;
  } catch (error) {
    proc?.kill('SIGKILL');
    if (proc) await proc.exited;
    removeContainer(container);
    throw translate(error);
  } finally {
    if (devNull !== undefined) closeSync(devNull);
    if (sockets) for (const fd of sockets) closeSync(fd);
    if (flags.rm && proc) removeContainer(container);
    closeSync(container.lock);
  }
}

function takeMaster(socket: number): number {
  const fd = receiveFd(socket);
  if (fd === null) throw new CliError('the container did not send its terminal');
  return fd;
}

const FORWARDED: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR2'];

/** Passes signals sent to box on to the container (docker's --sig-proxy). */
function forwardSignals(proc: ContainerProcess): () => void {
  const handlers = FORWARDED.map((signal) => {
    const handler = () => proc.kill(signal);
    process.on(signal, handler);
    return [signal, handler] as const;
  });
  return () => {
    for (const [signal, handler] of handlers) process.off(signal, handler);
  };
}

/** Maps start-up failures to docker's messages and exit codes. */
function translate(error: unknown): unknown {
  if (error instanceof CommandNotFoundError) return new CliError(error.message, EXIT_NOT_FOUND);
  if (error instanceof CommandNotExecutableError) return new CliError(error.message, EXIT_NOT_EXECUTABLE);
  if (error instanceof ChildSetupError) {
    if (error.syscall === 'execve') {
      const code = error.code === 'ENOENT' ? EXIT_NOT_FOUND : EXIT_NOT_EXECUTABLE;
      return new CliError(`failed to start the container: ${error.message}`, code);
    }
    return new CliError(`failed to start the container: ${error.message}`);
  }
  if (error instanceof SpecError) return new CliError(error.message);
  return error;
}
