/**
 * The `box` command. Parses the command line, runs one command and turns its
 * errors into one line on stderr and docker's exit codes. Nothing else here
 * exits the process.
 */

import { markCloseOnExecFrom } from '@box/sys';
import { Command, CommanderError, Option } from 'commander';
import { commit, exportContainer } from './commands/commit.js';
import { create, kill, prune, rename, restart, rm, start, stop, wait } from './commands/containers.js';
import { cp } from './commands/cp.js';
import { exec } from './commands/exec.js';
import { imageInspect, imagePrune, images, importImage, load, rmi, save, tag } from './commands/images.js';
import { logs } from './commands/logs.js';
import { pause, unpause, update } from './commands/pause.js';
import { inspect, ps } from './commands/ps.js';
import { run } from './commands/run.js';
import { stats } from './commands/stats.js';
import { top } from './commands/top.js';
import { volumeCreate, volumeInspect, volumeLs, volumePrune, volumeRm } from './commands/volume.js';
import { serve } from './daemon/server.js';
import { CliError, EXIT_BOX_ERROR } from './errors.js';
import { secureStateDir } from './state-dir.js';

declare const BOX_VERSION: string;

const collect = (value: string, previous: string[]) => [...previous, value];

/** The options shared by `run` and `create`. */
function containerOptions(command: Command): Command {
  return command
    .argument('<image>')
    .argument('[command...]')
    .passThroughOptions()
    .option('--rm', 'Automatically remove the container when it exits')
    .option('-i, --interactive', 'Keep STDIN open')
    .option('-t, --tty', 'Allocate a pseudo-TTY')
    .option('-e, --env <K=V>', 'Set environment variables', collect, [])
    .option('-w, --workdir <dir>', 'Working directory inside the container')
    .option('-u, --user <uid[:gid]>', 'Username or UID (format: <name|uid>[:<group|gid>])')
    .option('--hostname <name>', 'Container host name')
    .option('--name <name>', 'Assign a name to the container')
    .addOption(
      new Option('--userns', 'Run in a new user namespace (container root is an unprivileged host uid)'),
    )
    .option('-m, --memory <bytes>', 'Memory limit (e.g. 64m, 1g)')
    .option('--memory-swap <bytes>', "Memory plus swap limit; '-1' for unlimited swap")
    .option('--memory-reservation <bytes>', 'Memory soft limit')
    .option('--cpus <number>', 'Number of CPUs (e.g. 0.5)')
    .option('-c, --cpu-shares <int>', 'CPU shares (relative weight)')
    .option('--cpuset-cpus <list>', 'CPUs in which to allow execution (0-3, 0,1)')
    .option('--cpuset-mems <list>', 'Memory nodes in which to allow execution (0-3, 0,1)')
    .option('--pids-limit <int>', 'Tune container pids limit (set -1 for unlimited)')
    .option('--restart <policy>', 'Restart policy: no, on-failure[:max-retries], always')
    .option('--log-opt <opt>', 'Log driver options: max-size=10m, max-file=3', collect, [])
    .option('-v, --volume <src:dst[:ro]>', 'Bind mount a host path or a named volume', collect, [])
    .option(
      '--mount <spec>',
      'Attach a mount: type=bind|volume|tmpfs,source=...,target=...[,readonly]',
      collect,
      [],
    )
    .option('--tmpfs <path[:options]>', 'Mount a tmpfs directory', collect, [])
    .option('--read-only', "Mount the container's root filesystem as read only");
}

function buildProgram(setExit: (code: number) => void): Command {
  const program = new Command('box')
    .description('Run Linux containers')
    .version(`box version ${BOX_VERSION}`, '-v, --version')
    .enablePositionalOptions()
    .exitOverride()
    .configureOutput({ outputError: (text, write) => write(`box: ${text.replace(/^error: /, '')}`) })
    // Every command first makes the state directory, or closes one an older box left open.
    .hook('preAction', () => secureStateDir());
  const done = (code: number) => setExit(code);

  containerOptions(program.command('run').description('Create and run a new container from an image'))
    .usage('[OPTIONS] IMAGE [COMMAND] [ARG...]')
    .option('-d, --detach', 'Run container in background and print container ID')
    .action(async (image: string, command: string[], options) => done(await run(image, command, options)));

  containerOptions(program.command('create').description('Create a new container'))
    .usage('[OPTIONS] IMAGE [COMMAND] [ARG...]')
    .action(async (image: string, command: string[], options) => done(await create(image, command, options)));

  program
    .command('start')
    .description('Start one or more stopped containers')
    .argument('<container...>')
    .option('-a, --attach', "Attach STDOUT/STDERR and forward the container's exit status")
    .action(async (containers: string[], options) => done(await start(containers, options)));

  program
    .command('ps')
    .description('List containers')
    .option('-a, --all', 'Show all containers (default shows just running)')
    .option('-q, --quiet', 'Only display container IDs')
    .option('--no-trunc', "Don't truncate output")
    .option('--format <format>', "'table', 'json', or a template like '{{.ID}} {{.Names}}'")
    .action(async (options) => done(await ps({ ...options, noTrunc: options.trunc === false })));

  program
    .command('logs')
    .description('Fetch the logs of a container')
    .argument('<container>')
    .option('-f, --follow', 'Follow log output')
    .option('-n, --tail <n>', 'Number of lines to show from the end of the logs', 'all')
    .option('-t, --timestamps', 'Show timestamps')
    .action(async (container: string, options) => done(await logs(container, options)));

  program
    .command('exec')
    .description('Execute a command in a running container')
    .argument('<container>')
    .argument('<command...>')
    .passThroughOptions()
    .option('-i, --interactive', 'Keep STDIN open')
    .option('-t, --tty', 'Allocate a pseudo-TTY')
    .option('-d, --detach', 'Detached mode: run command in the background')
    .option('-e, --env <K=V>', 'Set environment variables', collect, [])
    .option('-w, --workdir <dir>', 'Working directory inside the container')
    .option('-u, --user <uid[:gid]>', 'Username or UID')
    .action(async (container: string, command: string[], options) =>
      done(await exec(container, command, options)),
    );

  program
    .command('stop')
    .description('Stop one or more running containers')
    .argument('<container...>')
    .option('-t, --time <seconds>', 'Seconds to wait before killing the container', '10')
    .action(async (containers: string[], options) => done(await stop(containers, options)));

  program
    .command('kill')
    .description('Kill one or more running containers')
    .argument('<container...>')
    .option('-s, --signal <signal>', 'Signal to send to the container', 'KILL')
    .action(async (containers: string[], options) => done(await kill(containers, options)));

  program
    .command('restart')
    .description('Restart one or more containers')
    .argument('<container...>')
    .option('-t, --time <seconds>', 'Seconds to wait before killing the container', '10')
    .action(async (containers: string[], options) => done(await restart(containers, options)));

  program
    .command('rm')
    .description('Remove one or more containers')
    .argument('<container...>')
    .option('-f, --force', 'Force the removal of a running container (uses SIGKILL)')
    .option('-v, --volumes', 'Remove anonymous volumes associated with the container')
    .action(async (containers: string[], options) => done(await rm(containers, options)));

  program
    .command('wait')
    .description('Block until one or more containers stop, then print their exit codes')
    .argument('<container...>')
    .action(async (containers: string[]) => done(await wait(containers)));

  program
    .command('inspect')
    .description('Return low-level information on containers')
    .argument('<container...>')
    .option('-f, --format <template>', "Format the output using a template like '{{.State.Status}}'")
    .action(async (containers: string[], options) => done(await inspect(containers, options)));

  program
    .command('top')
    .description('Display the running processes of a container')
    .argument('<container>')
    .action(async (container: string) => done(await top(container)));

  program
    .command('rename')
    .description('Rename a container')
    .argument('<container>')
    .argument('<new-name>')
    .action(async (container: string, name: string) => done(await rename(container, name)));

  program
    .command('pause')
    .description('Pause all processes within one or more containers')
    .argument('<container...>')
    .action(async (containers: string[]) => done(await pause(containers)));

  program
    .command('unpause')
    .description('Unpause all processes within one or more containers')
    .argument('<container...>')
    .action(async (containers: string[]) => done(await unpause(containers)));

  program
    .command('update')
    .description('Update the resource limits of one or more running containers')
    .argument('<container...>')
    .option('-m, --memory <bytes>', 'Memory limit')
    .option('--memory-swap <bytes>', "Memory plus swap limit; '-1' for unlimited swap")
    .option('--memory-reservation <bytes>', 'Memory soft limit')
    .option('--cpus <number>', 'Number of CPUs')
    .option('-c, --cpu-shares <int>', 'CPU shares (relative weight)')
    .option('--cpuset-cpus <list>', 'CPUs in which to allow execution')
    .option('--cpuset-mems <list>', 'Memory nodes in which to allow execution')
    .option('--pids-limit <int>', 'Tune container pids limit')
    .action(async (containers: string[], options) => done(await update(containers, options)));

  program
    .command('stats')
    .description('Display a live stream of container resource usage statistics')
    .argument('[container...]')
    .option('--no-stream', 'Disable streaming stats and only pull the first result')
    .option('--format <format>', "'table', 'json', or a template like '{{.Name}} {{.CPUPerc}}'")
    .action(async (containers: string[], options) => done(await stats(containers, options)));

  program
    .command('images')
    .description('List images')
    .option('-q, --quiet', 'Only show image IDs')
    .option('--no-trunc', "Don't truncate output")
    .option('--format <format>', "'table', 'json', or a template like '{{.Repository}}:{{.Tag}}'")
    .action(async (options) => done(await images({ ...options, noTrunc: options.trunc === false })));

  program
    .command('rmi')
    .description('Remove one or more images')
    .argument('<image...>')
    .option('-f, --force', 'Force removal of the image')
    .action(async (refs: string[], options) => done(await rmi(refs, options)));

  program
    .command('tag')
    .description('Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE')
    .argument('<source>')
    .argument('<target>')
    .action(async (source: string, target: string) => done(await tag(source, target)));

  program
    .command('import')
    .description('Import the contents from a tarball to create a filesystem image')
    .argument('<file>', 'a tar, tar.gz or tar.zst file, or - for standard input')
    .argument('[reference]')
    .option(
      '-c, --change <instruction>',
      'Apply a Dockerfile instruction (CMD, ENTRYPOINT, ENV, WORKDIR, USER, ...)',
      collect,
      [],
    )
    .option('-m, --message <text>', 'Set commit message for imported image')
    .action(async (file: string, ref: string | undefined, options) =>
      done(await importImage(file, ref, options)),
    );

  program
    .command('save')
    .description('Save one or more images to an archive')
    .argument('<image...>')
    .option('-o, --output <file>', 'Write to a file')
    .option('--format <format>', 'docker-archive (default), oci-archive or oci-dir')
    .action(async (refs: string[], options) => done(await save(refs, options)));

  program
    .command('load')
    .description('Load images from a docker-archive or an OCI layout or archive')
    .option('-i, --input <file>', 'Read from an archive file or OCI layout directory')
    .option('--repository <name>', 'Name for OCI images that carry only a tag')
    .action(async (options) => done(await load(options)));

  const image = program.command('image').description('Manage images');
  image
    .command('ls')
    .description('List images')
    .option('-q, --quiet', 'Only show image IDs')
    .option('--no-trunc', "Don't truncate output")
    .option('--format <format>', "'table', 'json', or a template")
    .action(async (options) => done(await images({ ...options, noTrunc: options.trunc === false })));
  image
    .command('inspect')
    .description('Display detailed information on one or more images')
    .argument('<image...>')
    .option('-f, --format <template>', 'Format the output using a template')
    .action(async (refs: string[], options) => done(await imageInspect(refs, options)));
  image
    .command('prune')
    .description('Remove unused images')
    .option('-a, --all', 'Remove all images not used by a container, not just dangling ones')
    .option('-f, --force', 'Do not prompt for confirmation')
    .action(async (options) => done(await imagePrune(options)));
  image
    .command('rm')
    .description('Remove one or more images')
    .argument('<image...>')
    .option('-f, --force', 'Force removal of the image')
    .action(async (refs: string[], options) => done(await rmi(refs, options)));

  program
    .command('commit')
    .description("Create a new image from a container's changes")
    .argument('<container>')
    .argument('[repository[:tag]]')
    .option('-c, --change <instruction>', 'Apply a Dockerfile instruction to the created image', collect, [])
    .option('-m, --message <text>', 'Commit message')
    .option('-a, --author <name>', 'Author')
    .option('--no-pause', 'Do not pause the container during commit')
    .action(async (container: string, target: string | undefined, options) =>
      done(await commit(container, target, options)),
    );

  program
    .command('cp')
    .description('Copy files between a container and the local filesystem')
    .argument('<source>', 'CONTAINER:SRC_PATH or a local path')
    .argument('<target>', 'a local path or CONTAINER:DEST_PATH')
    .action(async (source: string, target: string) => done(await cp(source, target)));

  program
    .command('export')
    .description("Export a container's filesystem as a tar archive")
    .argument('<container>')
    .option('-o, --output <file>', 'Write to a file, instead of STDOUT')
    .action(async (container: string, options) => done(await exportContainer(container, options)));

  const volume = program.command('volume').description('Manage volumes');
  volume
    .command('create')
    .description('Create a volume')
    .argument('[name]')
    .option('--label <key=value>', 'Set metadata for a volume', collect, [])
    .action((name: string | undefined, options) => done(volumeCreate(name, options)));
  volume
    .command('ls')
    .description('List volumes')
    .option('-q, --quiet', 'Only display volume names')
    .option('--format <format>', "'table', 'json', or a template")
    .action((options) => done(volumeLs(options)));
  volume
    .command('rm')
    .description('Remove one or more volumes (refused while a container uses them)')
    .argument('<volume...>')
    .option('-f, --force', 'Accepted for docker compatibility')
    .action(async (names: string[]) => done(await volumeRm(names)));
  volume
    .command('inspect')
    .description('Display detailed information on one or more volumes')
    .argument('<volume...>')
    .action((names: string[]) => done(volumeInspect(names)));
  volume
    .command('prune')
    .description('Remove unused anonymous volumes (all unused ones with --all)')
    .option('-a, --all', 'Remove all unused volumes, not just anonymous ones')
    .option('-f, --force', 'Do not prompt for confirmation')
    .action(async (options) => done(await volumePrune(options)));

  const system = program.command('system').description('Manage box');
  system
    .command('prune')
    .description('Remove all stopped containers')
    .option('-f, --force', 'Do not prompt for confirmation')
    .action(async () => done(await prune()));
  system
    .command('service')
    .description('Run the service that starts and watches detached containers (started on demand)')
    .action(async () => done(await serve()));

  return program;
}

async function main(argv: string[]): Promise<number> {
  // Fds inherited from the caller (its shell's `exec 300</etc`, say) stay with this
  // process: the box service started from here and any program it runs never get them.
  // (Containers' processes are protected on their own: their start-up closes every fd.)
  markCloseOnExecFrom(3);
  let exitCode = 0;
  const program = buildProgram((code) => {
    exitCode = code;
  });
  try {
    await program.parseAsync(argv);
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version end here with code 0; usage errors are docker's 125.
      return error.exitCode === 0 ? 0 : EXIT_BOX_ERROR;
    }
    if (error instanceof CliError) {
      process.stderr.write(`box: ${error.message}\n`);
      return error.exitCode;
    }
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`box: ${message}\n`);
    return EXIT_BOX_ERROR;
  }
}

main(process.argv).then(
  (code) => {
    process.exitCode = code;
    // Pending stdio handles (a terminal) must not keep box alive after the container ended.
    setImmediate(() => process.exit(code));
  },
  (error) => {
    process.stderr.write(`box: internal error: ${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(EXIT_BOX_ERROR);
  },
);
