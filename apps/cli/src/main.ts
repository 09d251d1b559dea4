/**
 * The `box` command. Parses the command line (command-line.ts), runs one command and turns its
 * errors into one line on stderr and docker's exit codes (errors.ts). Nothing else here exits
 * the process. Each command's module is loaded only when it runs, so a command pays only for
 * what it uses.
 */
import { type CommandSpec, help, type OptionSpec, parseCommandLine, UsageError } from './command-line.js';
import { EXIT_BOX_ERROR, exitStatusOf } from './errors.js';

declare const BOX_VERSION: string;

// biome-ignore lint/suspicious/noExplicitAny: each command checks its own options' types
type Opts = Record<string, any>;
const s = (x: unknown) => x as string;
const list = (x: unknown) => x as string[];

function opt(
  long: string,
  short: string | undefined,
  value: string | undefined,
  description: string,
  extra: Partial<OptionSpec> = {},
): OptionSpec {
  return { long, short, value, description, ...extra };
}
const many = (long: string, short: string | undefined, value: string, description: string) =>
  opt(long, short, value, description, { multiple: true });

const resourceOptions: OptionSpec[] = [
  opt('memory', 'm', 'bytes', 'Memory limit (e.g. 64m, 1g)'),
  opt('memory-swap', undefined, 'bytes', "Memory plus swap limit; '-1' for unlimited swap"),
  opt('memory-reservation', undefined, 'bytes', 'Memory soft limit'),
  opt('cpus', undefined, 'number', 'Number of CPUs (e.g. 0.5)'),
  opt('cpu-shares', 'c', 'int', 'CPU shares (relative weight)'),
  opt('cpuset-cpus', undefined, 'list', 'CPUs in which to allow execution (0-3, 0,1)'),
  opt('cpuset-mems', undefined, 'list', 'Memory nodes in which to allow execution (0-3, 0,1)'),
  opt('pids-limit', undefined, 'int', 'Tune container pids limit (set -1 for unlimited)'),
];

/** The options shared by `run` and `create`. */
const containerOptions: OptionSpec[] = [
  opt('rm', undefined, undefined, 'Automatically remove the container when it exits'),
  opt('interactive', 'i', undefined, 'Keep STDIN open'),
  opt('tty', 't', undefined, 'Allocate a pseudo-TTY'),
  many('attach', 'a', 'stream', 'Attach to STDIN, STDOUT or STDERR'),
  many('env', 'e', 'K=V', 'Set environment variables'),
  many('env-file', undefined, 'file', 'Read in a file of environment variables'),
  opt('entrypoint', undefined, 'command', 'Overwrite the default ENTRYPOINT of the image'),
  many('label', 'l', 'K=V', 'Set meta data on a container'),
  many('label-file', undefined, 'file', 'Read in a line delimited file of labels'),
  opt('workdir', 'w', 'dir', 'Working directory inside the container'),
  opt('user', 'u', 'uid[:gid]', 'Username or UID (format: <name|uid>[:<group|gid>])'),
  opt('hostname', undefined, 'name', 'Container host name'),
  opt('pid', undefined, 'string', 'PID namespace to use (host)'),
  opt('uts', undefined, 'string', 'UTS namespace to use (host)'),
  opt('ipc', undefined, 'string', 'IPC mode to use (private, none or host)'),
  opt('name', undefined, 'name', 'Assign a name to the container'),
  opt(
    'userns',
    undefined,
    undefined,
    'Run in a new user namespace (container root is an unprivileged host uid)',
  ),
  ...resourceOptions,
  opt('restart', undefined, 'policy', 'Restart policy: no, on-failure[:max-retries], always'),
  many('log-opt', undefined, 'opt', 'Log driver options: max-size=10m, max-file=3'),
  many('volume', 'v', 'src:dst[:ro]', 'Bind mount a host path or a named volume'),
  many('mount', undefined, 'spec', 'Attach a mount: type=bind|volume|tmpfs,source=...,target=...[,readonly]'),
  many('tmpfs', undefined, 'path[:options]', 'Mount a tmpfs directory'),
  opt('read-only', undefined, undefined, "Mount the container's root filesystem as read only"),
  opt('stop-signal', undefined, 'signal', 'Signal to stop the container'),
  opt('stop-timeout', undefined, 'seconds', 'Timeout (in seconds) to stop a container'),
  many('cap-add', undefined, 'cap', 'Add a Linux capability (NAME, CAP_NAME or ALL)'),
  many('cap-drop', undefined, 'cap', 'Drop a Linux capability (NAME, CAP_NAME or ALL)'),
  many(
    'security-opt',
    undefined,
    'opt',
    'Security options: no-new-privileges, seccomp=unconfined|PROFILE.json',
  ),
  opt('privileged', undefined, undefined, 'Give extended privileges to this container'),
  many('device', undefined, 'host[:container][:rwm]', 'Add a host device to the container'),
  many(
    'device-cgroup-rule',
    undefined,
    'rule',
    "Add a rule to the cgroup allowed devices list ('c 1:3 rwm')",
  ),
  many('ulimit', undefined, 'name=soft[:hard]', 'Ulimit options (e.g. nofile=1024:2048)'),
  many('sysctl', undefined, 'key=value', 'Namespaced kernel parameters (net.*, kernel.shm*, ...)'),
  opt('oom-score-adj', undefined, 'int', "Tune host's OOM preferences (-1000 to 1000)"),
  many('group-add', undefined, 'group', 'Add additional groups to join'),
  opt(
    'init',
    undefined,
    undefined,
    'Run an init inside the container that forwards signals and reaps processes',
  ),
  opt('shm-size', undefined, 'bytes', 'Size of /dev/shm (e.g. 128m)'),
  opt(
    'network',
    undefined,
    'network',
    'Connect to a network: bridge, none, host, container:NAME|ID, slirp4netns[:OPTIONS], or NAME',
  ),
  many('publish', 'p', '[ip:][hostPort:]containerPort[/proto]', "Publish a container's port to the host"),
  opt('publish-all', 'P', undefined, 'Publish all exposed ports to free host ports'),
  opt('ip', undefined, 'address', 'IPv4 address on the network (e.g. 172.30.100.104)'),
  many('dns', undefined, 'ip', 'Set custom DNS servers'),
  many('dns-search', undefined, 'domain', 'Set custom DNS search domains'),
  many('dns-option', undefined, 'option', 'Set DNS options'),
  many('add-host', undefined, 'host:ip', 'Add a custom host-to-IP mapping (host:ip)'),
  opt('health-cmd', undefined, 'string', 'Command to run to check health'),
  opt('health-interval', undefined, 'duration', 'Time between running the check (ms|s|m|h) (default 0s)'),
  opt(
    'health-timeout',
    undefined,
    'duration',
    'Maximum time to allow one check to run (ms|s|m|h) (default 0s)',
  ),
  opt(
    'health-start-period',
    undefined,
    'duration',
    'Start period for the container to initialize before starting health-retries countdown (ms|s|m|h) (default 0s)',
  ),
  opt(
    'health-start-interval',
    undefined,
    'duration',
    'Time between running the check during the start period (ms|s|m|h) (default 0s)',
  ),
  opt('health-retries', undefined, 'int', 'Consecutive failures needed to report unhealthy'),
  opt('no-healthcheck', undefined, undefined, 'Disable any container-specified HEALTHCHECK'),
  opt('pull', undefined, 'policy', 'Pull image before running ("always", "missing", "never")'),
  opt('platform', undefined, 'os/arch', 'Set platform if the image is multi-platform'),
];

/** `events`, also as `system events`. */
const eventsCommand: CommandSpec = {
  name: 'events',
  description: 'Get real time events from the server',
  options: [
    opt('since', undefined, 'string', 'Show all events created since timestamp'),
    opt('until', undefined, 'string', 'Stream events until this timestamp'),
    many('filter', 'f', 'filter', 'Filter output based on conditions provided'),
    opt('format', undefined, 'string', "Format the output using a custom template ('json' or a Go template)"),
  ],
  run: async (_, o: Opts) => (await import('./commands/events.js')).events(o),
};

const load = {
  commit: () => import('./commands/commit.js'),
  containers: () => import('./commands/containers.js'),
  attach: () => import('./commands/attach.js'),
  cp: () => import('./commands/cp.js'),
  df: () => import('./commands/df.js'),
  diff: () => import('./commands/diff.js'),
  exec: () => import('./commands/exec.js'),
  images: () => import('./commands/images.js'),
  registry: () => import('./commands/registry.js'),
  system: () => import('./commands/system.js'),
  logs: () => import('./commands/logs.js'),
  pause: () => import('./commands/pause.js'),
  ps: () => import('./commands/ps.js'),
  run: () => import('./commands/run.js'),
  service: () => import('./commands/service.js'),
  stats: () => import('./commands/stats.js'),
  top: () => import('./commands/top.js'),
  network: () => import('./commands/network.js'),
  port: () => import('./commands/port.js'),
  volume: () => import('./commands/volume.js'),
};

const historyCommand: CommandSpec = {
  name: 'history',
  description: 'Show the history of an image',
  args: ['<image>'],
  options: [
    opt('quiet', 'q', undefined, 'Only show image IDs'),
    opt('no-trunc', undefined, undefined, "Don't truncate output"),
    opt('format', undefined, 'format', "'table', 'json', or a template"),
  ],
  run: async ([image], o: Opts) => (await load.images()).history(s(image), o),
};

const imagesList: CommandSpec = {
  name: 'ls',
  description: 'List images',
  args: ['[repository[:tag]]'],
  options: [
    opt('quiet', 'q', undefined, 'Only show image IDs'),
    opt('all', 'a', undefined, 'Show all images (box keeps no intermediate images)'),
    opt('digests', undefined, undefined, 'Show digests'),
    opt('no-trunc', undefined, undefined, "Don't truncate output"),
    opt('format', undefined, 'format', "'table', 'json', or a template like '{{.Repository}}:{{.Tag}}'"),
    many('filter', 'f', 'filter', 'Filter output: dangling, label, reference, before, since'),
  ],
  run: async ([repository], o: Opts) => (await load.images()).images(o, repository as string | undefined),
};
const rmiOptions = [opt('force', 'f', undefined, 'Force removal of the image')];
const rmi = async ([refs]: unknown[], o: Opts) => (await load.images()).rmi(list(refs), o);

const commands: CommandSpec[] = [
  {
    name: 'run',
    description: 'Create and run a new container from an image',
    args: ['<image>', '[command...]'],
    passThrough: true,
    options: [
      ...containerOptions,
      opt('detach', 'd', undefined, 'Run container in background and print container ID'),
      opt('detach-keys', undefined, 'string', 'Override the key sequence for detaching a container'),
    ],
    run: async ([image, command], o: Opts) => (await load.run()).run(s(image), list(command), o as never),
  },
  {
    name: 'attach',
    description: 'Attach local standard input, output, and error streams to a running container',
    args: ['<container>'],
    options: [
      opt('detach-keys', undefined, 'string', 'Override the key sequence for detaching a container'),
      opt('no-stdin', undefined, undefined, 'Do not attach STDIN'),
      opt('sig-proxy', undefined, undefined, 'Proxy all received signals to the process', {
        default: 'true',
      }),
    ],
    run: async ([ref], o: Opts) => (await load.attach()).attach(s(ref), o as never),
  },
  {
    name: 'create',
    description: 'Create a new container',
    args: ['<image>', '[command...]'],
    passThrough: true,
    options: containerOptions,
    run: async ([image, command], o: Opts) =>
      (await load.containers()).create(s(image), list(command), o as never),
  },
  {
    name: 'start',
    description: 'Start one or more stopped containers',
    args: ['<container...>'],
    options: [
      opt('attach', 'a', undefined, "Attach STDOUT/STDERR and forward the container's exit status"),
      opt('interactive', 'i', undefined, "Attach container's STDIN"),
      opt('detach-keys', undefined, 'string', 'Override the key sequence for detaching a container'),
    ],
    run: async ([refs], o: Opts) => (await load.containers()).start(list(refs), o),
  },
  {
    name: 'ps',
    description: 'List containers',
    options: [
      opt('all', 'a', undefined, 'Show all containers (default shows just running)'),
      opt('quiet', 'q', undefined, 'Only display container IDs'),
      opt('no-trunc', undefined, undefined, "Don't truncate output"),
      opt('format', undefined, 'format', "'table', 'json', or a template like '{{.ID}} {{.Names}}'"),
      opt('last', 'n', 'int', 'Show n last created containers (includes all states)'),
      opt('latest', 'l', undefined, 'Show the latest created container (includes all states)'),
      many(
        'filter',
        'f',
        'filter',
        'Filter output: id, name, status, ancestor, exited, network, label, health',
      ),
      opt('size', 's', undefined, 'Display total file sizes'),
    ],
    run: async (_, o: Opts) => (await load.ps()).ps(o),
  },
  {
    name: 'logs',
    description: 'Fetch the logs of a container',
    args: ['<container>'],
    options: [
      opt('follow', 'f', undefined, 'Follow log output'),
      opt('tail', 'n', 'n', 'Number of lines to show from the end of the logs', { default: 'all' }),
      opt('timestamps', 't', undefined, 'Show timestamps'),
      opt(
        'since',
        undefined,
        'string',
        'Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)',
      ),
      opt(
        'until',
        undefined,
        'string',
        'Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)',
      ),
    ],
    run: async ([ref], o: Opts) => (await load.logs()).logs(s(ref), o),
  },
  {
    name: 'exec',
    description: 'Execute a command in a running container',
    args: ['<container>', '<command...>'],
    passThrough: true,
    options: [
      opt('interactive', 'i', undefined, 'Keep STDIN open'),
      opt('tty', 't', undefined, 'Allocate a pseudo-TTY'),
      opt('detach', 'd', undefined, 'Detached mode: run command in the background'),
      many('env', 'e', 'K=V', 'Set environment variables'),
      opt('workdir', 'w', 'dir', 'Working directory inside the container'),
      opt('user', 'u', 'uid[:gid]', 'Username or UID'),
    ],
    run: async ([ref, command], o: Opts) => (await load.exec()).exec(s(ref), list(command), o as never),
  },
  {
    name: 'stop',
    description: 'Stop one or more running containers',
    args: ['<container...>'],
    options: [opt('time', 't', 'seconds', 'Seconds to wait before killing the container')],
    run: async ([refs], o: Opts) => (await load.containers()).stop(list(refs), o),
  },
  {
    name: 'kill',
    description: 'Kill one or more running containers',
    args: ['<container...>'],
    options: [opt('signal', 's', 'signal', 'Signal to send to the container', { default: 'KILL' })],
    run: async ([refs], o: Opts) => (await load.containers()).kill(list(refs), o),
  },
  {
    name: 'restart',
    description: 'Restart one or more containers',
    args: ['<container...>'],
    options: [opt('time', 't', 'seconds', 'Seconds to wait before killing the container')],
    run: async ([refs], o: Opts) => (await load.containers()).restart(list(refs), o),
  },
  {
    name: 'rm',
    description: 'Remove one or more containers',
    args: ['<container...>'],
    options: [
      opt('force', 'f', undefined, 'Force the removal of a running container (uses SIGKILL)'),
      opt('volumes', 'v', undefined, 'Remove anonymous volumes associated with the container'),
    ],
    run: async ([refs], o: Opts) => (await load.containers()).rm(list(refs), o),
  },
  {
    name: 'wait',
    description: 'Block until one or more containers stop, then print their exit codes',
    args: ['<container...>'],
    run: async ([refs]) => (await load.containers()).wait(list(refs)),
  },
  {
    name: 'inspect',
    description: 'Return low-level information on containers',
    args: ['<container...>'],
    options: [opt('format', 'f', 'template', "Format the output using a template like '{{.State.Status}}'")],
    run: async ([refs], o: Opts) => (await load.ps()).inspect(list(refs), o),
  },
  {
    name: 'top',
    description: 'Display the running processes of a container',
    args: ['<container>', '[ps-options...]'],
    passThrough: true,
    run: async ([ref, psOptions]) => (await load.top()).top(s(ref), list(psOptions)),
  },
  {
    name: 'rename',
    description: 'Rename a container',
    args: ['<container>', '<new-name>'],
    run: async ([ref, name]) => (await load.containers()).rename(s(ref), s(name)),
  },
  {
    name: 'pause',
    description: 'Pause all processes within one or more containers',
    args: ['<container...>'],
    run: async ([refs]) => (await load.pause()).pause(list(refs)),
  },
  {
    name: 'unpause',
    description: 'Unpause all processes within one or more containers',
    args: ['<container...>'],
    run: async ([refs]) => (await load.pause()).unpause(list(refs)),
  },
  {
    name: 'update',
    description: 'Update the resource limits of one or more running containers',
    args: ['<container...>'],
    options: resourceOptions,
    run: async ([refs], o: Opts) => (await load.pause()).update(list(refs), o),
  },
  {
    name: 'stats',
    description: 'Display a live stream of container resource usage statistics',
    args: ['[container...]'],
    options: [
      opt('no-stream', undefined, undefined, 'Disable streaming stats and only pull the first result'),
      opt('format', undefined, 'format', "'table', 'json', or a template like '{{.Name}} {{.CPUPerc}}'"),
    ],
    run: async ([refs], o: Opts) =>
      (await load.stats()).stats(list(refs), { stream: !o.noStream, format: o.format }),
  },
  { ...imagesList, name: 'images' },
  {
    name: 'rmi',
    description: 'Remove one or more images',
    args: ['<image...>'],
    options: rmiOptions,
    run: rmi,
  },
  {
    name: 'tag',
    description: 'Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE',
    args: ['<source>', '<target>'],
    run: async ([source, target]) => (await load.images()).tag(s(source), s(target)),
  },
  historyCommand,
  {
    name: 'version',
    description: 'Show the box version information',
    options: [opt('format', 'f', 'template', 'Format the output using a template')],
    run: async (_, o: Opts) => (await load.system()).version(o),
  },
  {
    name: 'info',
    description: 'Display system-wide information',
    options: [opt('format', 'f', 'template', 'Format the output using a template')],
    run: async (_, o: Opts) => (await load.system()).info(o),
  },
  {
    name: 'pull',
    description: 'Download an image from a registry',
    args: ['<image>'],
    options: [
      opt('all-tags', 'a', undefined, 'Download all tagged images in the repository'),
      opt('quiet', 'q', undefined, 'Suppress verbose output'),
      opt('platform', undefined, 'os/arch', 'Set platform if the image is multi-platform'),
    ],
    run: async ([image], o: Opts) => (await load.registry()).pull(s(image), o),
  },
  {
    name: 'push',
    description: 'Upload an image to a registry',
    args: ['<image>'],
    options: [opt('quiet', 'q', undefined, 'Suppress verbose output')],
    run: async ([image], o: Opts) => (await load.registry()).push(s(image), o),
  },
  {
    name: 'login',
    description: 'Log in to a registry',
    args: ['[server]'],
    options: [
      opt('username', 'u', 'name', 'Username'),
      opt('password', 'p', 'password', 'Password'),
      opt('password-stdin', undefined, undefined, 'Take the password from stdin'),
    ],
    run: async ([server], o: Opts) => (await load.registry()).login(server as string | undefined, o),
  },
  {
    name: 'logout',
    description: 'Log out from a registry',
    args: ['[server]'],
    run: async ([server]) => (await load.registry()).logout(server as string | undefined),
  },
  {
    name: 'import',
    description: 'Import the contents from a tarball to create a filesystem image',
    args: ['<file>', '[reference]'],
    options: [
      many(
        'change',
        'c',
        'instruction',
        'Apply a Dockerfile instruction (CMD, ENTRYPOINT, ENV, WORKDIR, USER, ...)',
      ),
      opt('message', 'm', 'text', 'Set commit message for imported image'),
    ],
    run: async ([file, ref], o: Opts) =>
      (await load.images()).importImage(s(file), ref as string | undefined, o as never),
  },
  {
    name: 'save',
    description: 'Save one or more images to an archive',
    args: ['<image...>'],
    options: [
      opt('output', 'o', 'file', 'Write to a file'),
      opt('format', undefined, 'format', 'docker-archive (default), oci-archive or oci-dir'),
    ],
    run: async ([refs], o: Opts) => (await load.images()).save(list(refs), o),
  },
  {
    name: 'load',
    description: 'Load images from a docker-archive or an OCI layout or archive',
    options: [
      opt('input', 'i', 'file', 'Read from an archive file or OCI layout directory'),
      // docker's -q hides the progress of the load, which box does not draw: the names loaded are
      // printed either way, as docker prints them.
      opt('quiet', 'q', undefined, 'Suppress the load output'),
      opt('repository', undefined, 'name', 'Name for OCI images that carry only a tag'),
    ],
    run: async (_, o: Opts) => (await load.images()).load(o),
  },
  {
    name: 'image',
    description: 'Manage images',
    subcommands: [
      imagesList,
      {
        name: 'inspect',
        description: 'Display detailed information on one or more images',
        args: ['<image...>'],
        options: [opt('format', 'f', 'template', 'Format the output using a template')],
        run: async ([refs], o: Opts) => (await load.images()).imageInspect(list(refs), o),
      },
      historyCommand,
      {
        name: 'prune',
        description: 'Remove unused images',
        options: [
          opt('all', 'a', undefined, 'Remove all images not used by a container, not just dangling ones'),
          opt('force', 'f', undefined, 'Do not prompt for confirmation'),
        ],
        run: async (_, o: Opts) => (await load.images()).imagePrune(o),
      },
      {
        name: 'rm',
        description: 'Remove one or more images',
        args: ['<image...>'],
        options: rmiOptions,
        run: rmi,
      },
    ],
  },
  {
    name: 'commit',
    description: "Create a new image from a container's changes",
    args: ['<container>', '[repository[:tag]]'],
    options: [
      many('change', 'c', 'instruction', 'Apply a Dockerfile instruction to the created image'),
      opt('message', 'm', 'text', 'Commit message'),
      opt('author', 'a', 'name', 'Author'),
      opt('pause', 'p', undefined, 'Pause container during commit (--pause=false: do not)', {
        default: 'true',
      }),
      opt('no-pause', undefined, undefined, 'Do not pause the container during commit'),
    ],
    run: async ([ref, target], o: Opts) =>
      (await load.commit()).commit(
        s(ref),
        target as string | undefined,
        { ...o, pause: o.pause !== false && !o.noPause } as never,
      ),
  },
  {
    name: 'cp',
    description: 'Copy files between a container and the local filesystem',
    args: ['<source>', '<target>'],
    options: [opt('archive', 'a', undefined, 'Archive mode (copy all uid/gid information)')],
    run: async ([source, target], o: Opts) => (await load.cp()).cp(s(source), s(target), o),
  },
  {
    name: 'diff',
    description: "Inspect changes to files or directories on a container's filesystem",
    args: ['<container>'],
    run: async ([ref]) => (await load.diff()).diff(s(ref)),
  },
  {
    name: 'export',
    description: "Export a container's filesystem as a tar archive",
    args: ['<container>'],
    options: [opt('output', 'o', 'file', 'Write to a file, instead of STDOUT')],
    run: async ([ref], o: Opts) => (await load.commit()).exportContainer(s(ref), o),
  },
  {
    name: 'port',
    description: 'List port mappings or a specific mapping for the container',
    args: ['<container>', '[port]'],
    run: async ([ref, which]) => (await load.port()).port(s(ref), which as string | undefined),
  },
  {
    name: 'network',
    description: 'Manage networks',
    subcommands: [
      {
        name: 'create',
        description: 'Create a bridge network',
        args: ['<name>'],
        options: [
          opt('driver', 'd', 'driver', 'Driver to manage the network (bridge)'),
          opt('subnet', undefined, 'cidr', 'Subnet in CIDR format (e.g. 172.30.0.0/16)'),
          opt('gateway', undefined, 'ip', 'IPv4 gateway for the subnet'),
          opt('internal', undefined, undefined, 'Restrict external access to the network'),
          many('label', undefined, 'key=value', 'Set metadata on a network'),
        ],
        run: async ([name], o: Opts) => (await load.network()).networkCreate(s(name), o as never),
      },
      {
        name: 'ls',
        description: 'List networks',
        options: [
          opt('quiet', 'q', undefined, 'Only display network IDs'),
          opt('no-trunc', undefined, undefined, "Don't truncate the output"),
          opt('format', undefined, 'format', "'table', 'json', or a template"),
        ],
        run: async (_, o: Opts) => (await load.network()).networkLs(o),
      },
      {
        name: 'inspect',
        description: 'Display detailed information on one or more networks',
        args: ['<network...>'],
        run: async ([refs]) => (await load.network()).networkInspect(list(refs)),
      },
      {
        name: 'rm',
        description: 'Remove one or more networks (refused while a container uses them)',
        args: ['<network...>'],
        run: async ([refs]) => (await load.network()).networkRm(list(refs)),
      },
      {
        name: 'connect',
        description: 'Connect a container to a network',
        args: ['<network>', '<container>'],
        options: [opt('ip', undefined, 'address', 'IPv4 address (e.g. 172.30.100.104)')],
        run: async ([network, container], o: Opts) =>
          (await load.network()).networkConnect(s(network), s(container), o as never),
      },
      {
        name: 'disconnect',
        description: 'Disconnect a container from a network',
        args: ['<network>', '<container>'],
        options: [opt('force', 'f', undefined, 'Accepted for docker compatibility')],
        run: async ([network, container]) =>
          (await load.network()).networkDisconnect(s(network), s(container)),
      },
      {
        name: 'prune',
        description: 'Remove all unused networks',
        options: [opt('force', 'f', undefined, 'Do not prompt for confirmation')],
        run: async (_, o: Opts) => (await load.network()).networkPrune(o),
      },
    ],
  },
  {
    name: 'volume',
    description: 'Manage volumes',
    subcommands: [
      {
        name: 'create',
        description: 'Create a volume',
        args: ['[name]'],
        options: [many('label', undefined, 'key=value', 'Set metadata for a volume')],
        run: async ([name], o: Opts) =>
          (await load.volume()).volumeCreate(name as string | undefined, o as never),
      },
      {
        name: 'ls',
        description: 'List volumes',
        options: [
          opt('quiet', 'q', undefined, 'Only display volume names'),
          opt('format', undefined, 'format', "'table', 'json', or a template"),
        ],
        run: async (_, o: Opts) => (await load.volume()).volumeLs(o),
      },
      {
        name: 'rm',
        description: 'Remove one or more volumes (refused while a container uses them)',
        args: ['<volume...>'],
        options: [opt('force', 'f', undefined, 'Accepted for docker compatibility')],
        run: async ([names]) => (await load.volume()).volumeRm(list(names)),
      },
      {
        name: 'inspect',
        description: 'Display detailed information on one or more volumes',
        args: ['<volume...>'],
        run: async ([names]) => (await load.volume()).volumeInspect(list(names)),
      },
      {
        name: 'prune',
        description: 'Remove unused anonymous volumes (all unused ones with --all)',
        options: [
          opt('all', 'a', undefined, 'Remove all unused volumes, not just anonymous ones'),
          opt('force', 'f', undefined, 'Do not prompt for confirmation'),
        ],
        run: async (_, o: Opts) => (await load.volume()).volumePrune(o),
      },
    ],
  },
  eventsCommand,
  {
    name: 'system',
    description: 'Manage box',
    subcommands: [
      eventsCommand,
      {
        name: 'prune',
        description: 'Remove all stopped containers',
        options: [opt('force', 'f', undefined, 'Do not prompt for confirmation')],
        run: async (_, o: Opts) => (await load.containers()).prune(o),
      },
      {
        name: 'df',
        description: 'Show box disk usage',
        options: [
          opt('verbose', 'v', undefined, 'Show detailed information on space usage'),
          opt('format', undefined, 'format', "'table', 'json', or a template like '{{.Type}} {{.Size}}'"),
        ],
        run: async (_, o: Opts) => (await load.df()).df(o),
      },
      {
        name: 'service',
        description: 'Run the service that starts and watches detached containers (started on demand)',
        run: async () => (await load.service()).service(),
      },
    ],
  },
];

/** docker's `container` group: the container commands again under it, `ps` as `ls` (and `list`, `ps`). */
const CONTAINER_COMMANDS = [
  'attach',
  'run',
  'create',
  'start',
  'stop',
  'kill',
  'restart',
  'rm',
  'wait',
  'rename',
  'inspect',
  'top',
  'logs',
  'exec',
  'pause',
  'unpause',
  'update',
  'stats',
  'cp',
  'diff',
  'export',
  'port',
  'commit',
];
const byName = (name: string) => commands.find((c) => c.name === name)!;
commands.push({
  name: 'container',
  description: 'Manage containers',
  subcommands: [
    { ...byName('ps'), name: 'ls', description: 'List containers' },
    { ...byName('ps'), name: 'list', description: 'List containers' },
    { ...byName('ps'), name: 'ps', description: 'List containers' },
    ...CONTAINER_COMMANDS.filter((name) => commands.some((c) => c.name === name)).map(byName),
    {
      name: 'prune',
      description: 'Remove all stopped containers',
      options: [opt('force', 'f', undefined, 'Do not prompt for confirmation')],
      run: async (_, o: Opts) => (await load.containers()).prune(o),
    },
  ],
});

const root: CommandSpec = {
  name: 'box',
  description: 'Run Linux containers',
  options: [opt('version', 'v', undefined, 'Print version information and quit')],
  subcommands: commands,
};

async function main(argv: string[]): Promise<number> {
  try {
    // An ordinary user's box runs in that user's namespace (see @box/runtime's rootless.ts).
    // (Help needs no namespace, nor a sub-id range.)
    if (process.getuid?.() !== 0 && !argv.some((a) => a === '--help' || a === '-h') && argv.length > 0) {
      const { runInUserNamespace } = await import('@box/runtime/engine');
      return await runInUserNamespace(process.argv.slice(1));
    }
    const parsed = parseCommandLine(argv, root);
    if (parsed.command === root && parsed.options.version) {
      process.stdout.write(`box version ${BOX_VERSION}\n`);
      return 0;
    }
    if (parsed.help || !parsed.command.run) {
      process.stdout.write(help(parsed.path, parsed.command));
      return 0;
    }
    return await parsed.command.run(parsed.args, parsed.options);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`box: ${message}\n`);
    return error instanceof UsageError ? EXIT_BOX_ERROR : exitStatusOf(error);
  }
}

main(process.argv.slice(2)).then(
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
