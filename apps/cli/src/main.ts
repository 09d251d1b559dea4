/**
 * The `box` command. Parses the command line, runs one command and turns its
 * errors into one line on stderr and docker's exit codes. Nothing else here
 * exits the process.
 */
import { Command, CommanderError, Option } from 'commander';
import { rm } from './commands/rm.js';
import { run } from './commands/run.js';
import { stats } from './commands/stats.js';
import { CliError, EXIT_BOX_ERROR } from './errors.js';

declare const BOX_VERSION: string;

const collect = (value: string, previous: string[]) => [...previous, value];

function buildProgram(setExit: (code: number) => void): Command {
  const program = new Command('box')
    .description('Run Linux containers')
    .version(`box version ${BOX_VERSION}`, '-v, --version')
    .enablePositionalOptions()
    .exitOverride()
    .configureOutput({ outputError: (text, write) => write(`box: ${text.replace(/^error: /, '')}`) });

  program
    .command('run')
    .description('Create and run a new container from an image')
    .usage('[OPTIONS] IMAGE [COMMAND] [ARG...]')
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
    .action(async (image: string, command: string[], options) => {
      setExit(await run(image, command, options));
    });

  program
    .command('rm')
    .description('Remove one or more stopped containers')
    .argument('<container...>')
    .action(async (containers: string[]) => setExit(await rm(containers)));

  program
    .command('stats')
    .description('Display a live stream of container resource usage statistics')
    .argument('[container...]')
    .option('--no-stream', 'Disable streaming stats and only pull the first result')
    .option('--format <format>', 'Output format: table or json')
    .action(async (containers: string[], options) => setExit(await stats(containers, options)));

  return program;
}

async function main(argv: string[]): Promise<number> {
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
