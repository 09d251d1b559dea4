import { describe, expect, it } from 'vitest';
import {
  bytesSize,
  formatEach,
  formatList,
  GoStruct,
  humanDuration,
  humanSize,
  type ListOptions,
  sprintf,
  table,
  tabwrite,
} from './output/index.js';
import { containerValue } from './output/inspect.js';

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

describe('humanDuration (units.HumanDuration)', () => {
  it.each([
    [-5 * SECOND, 'Less than a second'],
    [0, 'Less than a second'],
    [999, 'Less than a second'],
    [SECOND, '1 second'],
    [59_999, '59 seconds'],
    [MINUTE, 'About a minute'],
    [119 * SECOND, 'About a minute'], // minutes truncate
    [2 * MINUTE, '2 minutes'],
    [59 * MINUTE, '59 minutes'],
    [89 * MINUTE, 'About an hour'], // hours round
    [90 * MINUTE, '2 hours'],
    [47 * HOUR, '47 hours'],
    [47.5 * HOUR, '2 days'],
    [13 * DAY, '13 days'],
    [14 * DAY, '2 weeks'],
    [59 * DAY, '8 weeks'],
    [60 * DAY, '2 months'],
    [729 * DAY, '24 months'],
    [730 * DAY, '2 years'],
  ])('%i ms is "%s"', (ms, text) => {
    expect(humanDuration(ms)).toBe(text);
  });
});

describe('sizes', () => {
  it.each([
    [0, '0B'],
    [999, '999B'],
    [1000, '1kB'],
    [1024, '1.024kB'],
    [1_048_576, '1.049MB'],
    [2_746_000, '2.746MB'],
    [3.42e9, '3.42GB'],
    [1e28, '1e+04YB'],
  ])('humanSize(%d) is %s (units.HumanSize)', (bytes, text) => {
    expect(humanSize(bytes)).toBe(text);
  });

  it.each([
    [4_261_445, '4.26MB'], // busybox in `docker images`
    [77_812_345, '77.8MB'],
    [1_234_567_890, '1.23GB'],
    [1_125_000, '1.12MB'], // an exact half rounds to even, as Go's %g
    [999_999, '1e+03kB'], // Go's %.3g of 999.999
  ])('humanSize(%d, 3) is %s (units.HumanSizeWithPrecision, docker images)', (bytes, text) => {
    expect(humanSize(bytes, 3)).toBe(text);
  });

  it.each([
    [0, '0B'],
    [1023, '1023B'],
    [1024, '1KiB'],
    [1_589_248, '1.516MiB'],
    [64 * 1024 * 1024, '64MiB'],
    [3.42 * 1024 ** 3, '3.42GiB'],
    [5.372 * 1024 ** 4, '5.372TiB'],
  ])('bytesSize(%d) is %s (units.BytesSize, docker stats)', (bytes, text) => {
    expect(bytesSize(bytes)).toBe(text);
  });
});

describe('tables (text/tabwriter: minwidth 10, padding 3)', () => {
  it('pads columns to the widest cell plus 3, at least 10, as docker ps with nothing to list', () => {
    expect(tabwrite('CONTAINER ID\tIMAGE\tCOMMAND\tCREATED\tSTATUS\tPORTS\tNAMES\n')).toBe(
      'CONTAINER ID   IMAGE     COMMAND   CREATED   STATUS    PORTS     NAMES\n',
    );
  });

  it('lays out docker images', () => {
    expect(
      table([
        ['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE'],
        ['busybox', 'latest', 'a416a98b71e2', '2 weeks ago', '4.26MB'],
      ]),
    ).toBe(
      'REPOSITORY   TAG       IMAGE ID       CREATED       SIZE\n' +
        'busybox      latest    a416a98b71e2   2 weeks ago   4.26MB\n',
    );
  });

  it('does not pad the last cell of a line, and counts characters, not bytes', () => {
    expect(tabwrite('a\tb\nnaïve\tc\n')).toBe('a         b\nnaïve     c\n');
  });

  it('aligns a column only over consecutive lines that have it', () => {
    expect(tabwrite('aaaaaaaaaaaa\tb\nno tabs here\nc\td\n')).toBe(
      'aaaaaaaaaaaa   b\nno tabs here\nc         d\n',
    );
  });

  it('takes another minimal width (docker top uses 20)', () => {
    expect(
      table(
        [
          ['UID', 'PID'],
          ['0', '1'],
        ],
        { minWidth: 20 },
      ),
    ).toBe(`UID${' '.repeat(17)}PID\n0${' '.repeat(19)}1\n`);
  });
});

const ps: ListOptions = {
  headers: {
    ID: 'CONTAINER ID',
    Image: 'IMAGE',
    Command: 'COMMAND',
    CreatedAt: 'CREATED AT',
    RunningFor: 'CREATED',
    Status: 'STATUS',
    State: 'STATE',
    Names: 'NAMES',
    Ports: 'PORTS',
  },
  defaultColumns: ['ID', 'Image', 'Command', 'RunningFor', 'Status', 'Ports', 'Names'],
  typeName: '*formatter.ContainerContext',
};

const web = {
  ID: '3f4e8a1b2c3d',
  Image: 'busybox',
  Command: '"sleep 30"',
  CreatedAt: '2024-05-01 10:00:00 +0000 UTC',
  RunningFor: '5 seconds ago',
  Status: 'Up 5 seconds',
  State: 'running',
  Names: 'web',
  Ports: '',
};
const db = {
  ...web,
  ID: '9a8b7c6d5e4f',
  Command: '"postgres"',
  Names: 'db',
  State: 'exited',
  Status: 'Exited (0) 2 minutes ago',
};

const list = (format: string, rows: Record<string, unknown>[] = [web]) => formatList(rows, { ...ps, format });

describe('formatList: --format for ps, images, stats and volume ls', () => {
  it('prints the default table without a format or with "table"', () => {
    const expected =
      'CONTAINER ID   IMAGE     COMMAND      CREATED         STATUS                     PORTS     NAMES\n' +
      '3f4e8a1b2c3d   busybox   "sleep 30"   5 seconds ago   Up 5 seconds                         web\n' +
      '9a8b7c6d5e4f   busybox   "postgres"   5 seconds ago   Exited (0) 2 minutes ago             db\n';
    expect(formatList([web, db], ps)).toBe(expected);
    expect(formatList([web, db], { ...ps, format: 'table' })).toBe(expected);
    expect(formatList([web, db], { ...ps, format: '' })).toBe(expected);
  });

  it('prints the header alone when there is nothing to list', () => {
    expect(formatList([], ps)).toBe(
      'CONTAINER ID   IMAGE     COMMAND   CREATED   STATUS    PORTS     NAMES\n',
    );
    expect(list('table {{.Names}}', [])).toBe('NAMES\n');
    expect(list('{{.Names}}', [])).toBe('');
  });

  it('runs a template once per row, each followed by a newline', () => {
    expect(list('{{.Names}}:{{.State}}', [web, db])).toBe('web:running\ndb:exited\n');
  });

  it("takes \\t and \\n as docker's CLI does, and trims spaces around the format", () => {
    expect(list('  {{.Names}}\\t{{.State}}\\n{{.ID}}  ')).toBe('web\trunning\n3f4e8a1b2c3d\n');
  });

  it("table: a header row from docker's column names, then rows through the tabwriter", () => {
    expect(list('table {{.ID}}\\t{{.Names}}\\t{{.State}}', [web, db])).toBe(
      'CONTAINER ID   NAMES     STATE\n3f4e8a1b2c3d   web       running\n9a8b7c6d5e4f   db        exited\n',
    );
  });

  it('table: functions keep the header as it is (HeaderFunctions)', () => {
    expect(list('table {{upper .Names}}\\t{{json .State}}\\t{{truncate .ID 4}}')).toBe(
      'NAMES     STATE       CONTAINER ID\nWEB       "running"   3f4e\n',
    );
  });

  it('json: one JSON object a line, keys sorted as docker marshals its contexts', () => {
    const line =
      '{"Command":"\\"sleep 30\\"","CreatedAt":"2024-05-01 10:00:00 +0000 UTC","ID":"3f4e8a1b2c3d","Image":"busybox",' +
      '"Names":"web","Ports":"","RunningFor":"5 seconds ago","State":"running","Status":"Up 5 seconds"}\n';
    expect(list('json')).toBe(line);
    expect(list('{{json .}}')).toBe(line);
    expect(list('{{json .Names}}')).toBe('"web"\n');
  });

  it('json does not escape <, > and & (SetEscapeHTML(false))', () => {
    expect(list('{{json .Command}}', [{ ...web, Command: '"a && b > c"' }])).toBe('"\\"a && b > c\\""\n');
  });

  it('an unknown field is an error, even with nothing to list', () => {
    const message =
      'template parsing error: template: :1:2: executing "" at <.Nope>: can\'t evaluate field Nope in type *formatter.ContainerContext';
    expect(() => list('{{.Nope}}')).toThrow(message);
    expect(() => list('{{.Nope}}', [])).toThrow(message);
    expect(() => list('table {{.ID}}\\t{{.Nope}}', [])).toThrow(/<\.Nope>: can't evaluate field Nope/);
    expect(() => list('{{range .Names}}{{end}}{{$.Nope}}', [])).toThrow(
      /at <\$\.Nope>: can't evaluate field Nope/,
    );
  });

  it('a field of a string is an error naming the string type', () => {
    expect(() => list('{{.Names.First}}')).toThrow(
      'template parsing error: template: :1:8: executing "" at <.Names.First>: can\'t evaluate field First in type string',
    );
  });

  it.each([
    ['{{foo .Names}}', 'template: :1: function "foo" not defined'],
    ['{{.Names', 'template: :1: unclosed action'],
    ['{{.Names}', "template: :1: bad character U+007D '}'"],
    ['{{if .Names}}x', 'template: :1: unexpected EOF'],
    ['{{end}}', 'template: :1: unexpected {{end}}'],
    ['{{else}}', 'template: :1: unexpected {{else}}'],
    ['{{}}', 'template: :1: missing value for command'],
    ['{{range}}{{end}}', 'template: :1: missing value for range'],
    ['{{.Names | "x"}}', 'template: :1: non executable command in pipeline stage 2'],
    ['{{$x}}', 'template: :1: undefined variable "$x"'],
    ['{{(.Names}}', 'template: :1: unclosed left paren'],
    ['{{.Names)}}', 'template: :1: unexpected right paren'],
    ['{{"abc}}', 'template: :1: unterminated quoted string'],
    ['{{break}}', 'template: :1: {{break}} outside {{range}}'],
    ['{{/* x }}', 'template: :1: unclosed comment'],
    ['{{if .Names}}\n{{else}}\n{{else}}{{end}}', 'template: :3: expected end; found {{else}}'],
  ])('a malformed template %j: %s', (format, message) => {
    expect(() => list(format)).toThrow(`template parsing error: ${message}`);
    expect(() => list(format, [])).toThrow(`template parsing error: ${message}`);
  });

  it('a function given the wrong type is an error at the argument', () => {
    expect(() => list('{{upper .Containers}}', [{ ...web, Containers: 2 }])).toThrow(
      'template parsing error: template: :1:8: executing "" at <.Containers>: wrong type for value; expected string; got int',
    );
    expect(() => list('{{eq .State 1}}')).toThrow(
      'template: :1:2: executing "" at <eq .State 1>: error calling eq: incompatible types for comparison',
    );
    expect(() => list('{{index .Names 10}}')).toThrow('error calling index: index out of range: 10');
    expect(() => list('{{.Names 1}}')).toThrow('Names has arguments but cannot be invoked as function');
  });

  it('a method with arguments ({{.Label "k"}}): called with them, absent from json, known without rows', () => {
    const labels: Record<string, string> = { tier: 'web' };
    const row = new GoStruct('*formatter.ContainerContext', web, {
      Label: { params: ['string'], fn: (name) => labels[name] ?? '' },
    });
    const withLabel = (format: string, rows: (GoStruct | Record<string, unknown>)[] = [row]) =>
      formatList(rows, { ...ps, format, methods: ['Label'] });
    expect(withLabel('{{.Label "tier"}}/{{.Label "nope"}}')).toBe('web/\n');
    expect(withLabel('{{.Label "tier" | upper}}')).toBe('WEB\n');
    expect(withLabel('json')).toBe(list('json'));
    expect(withLabel('{{.Label "tier"}}', [])).toBe('');
    expect(() => withLabel('{{.Label}}')).toThrow('wrong number of args for Label: want 1 got 0');
    // A table's header row cannot call it: docker leaves that header empty.
    expect(withLabel('table {{.Names}}\t{{.Label "tier"}}')).toBe('NAMES     \nweb       web\n');
    // Object's own properties are not methods: a template error, not a crash of box.
    expect(() => withLabel('{{.constructor}}')).toThrow(/can't evaluate field constructor/);
    expect(() => withLabel('{{.toString}}')).toThrow(/can't evaluate field toString/);
  });
});

describe('Go templates', () => {
  const container = {
    Id: 'f00dfeed',
    Name: '/web',
    Args: ['-c', 'sleep 30'],
    State: { Status: 'running', Running: true, Paused: false, Pid: 4242, ExitCode: 0 },
    Config: { Cmd: ['sh', '-c', 'a && b'], Labels: { 'com.example.b': '2', 'com.example.a': '1' }, Env: [] },
    HostConfig: { PidsLimit: null, Memory: 67108864, NanoCpus: 1500000000 },
    Mounts: [
      { Type: 'volume', Source: '/var/lib/box/volumes/data', Destination: '/data' },
      { Type: 'bind', Source: '/srv', Destination: '/srv' },
    ],
  };
  const tpl = (format: string) => formatEach([container], format).replace(/\n$/, '');

  it('fields, nested fields and map keys', () => {
    expect(tpl('{{.Name}} {{.State.Status}} {{.State.Pid}} {{.HostConfig.Memory}}')).toBe(
      '/web running 4242 67108864',
    );
    expect(tpl('{{.Config.Labels.com}}')).toBe('<no value>');
    expect(tpl('{{index .Config.Labels "com.example.a"}}|{{index .Config.Labels "missing"}}|')).toBe('1||');
    expect(tpl('{{.HostConfig.PidsLimit}}')).toBe('<nil>');
    expect(tpl('{{.Config.Labels}}')).toBe('map[com.example.a:1 com.example.b:2]');
    expect(tpl('{{.Args}} {{.Config.Env}}')).toBe('[-c sleep 30] []');
  });

  it('range over lists and maps (sorted keys), with variables, else, break and continue', () => {
    expect(tpl('{{range .Mounts}}{{.Source}}:{{.Destination}} {{end}}')).toBe(
      '/var/lib/box/volumes/data:/data /srv:/srv ',
    );
    expect(tpl('{{range $i, $m := .Mounts}}{{$i}}={{$m.Type}},{{end}}')).toBe('0=volume,1=bind,');
    expect(tpl('{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}')).toBe(
      'com.example.a=1;com.example.b=2;',
    );
    expect(tpl('{{range .Config.Env}}x{{else}}no env{{end}}')).toBe('no env');
    expect(tpl('{{range .Args}}{{if eq . "-c"}}{{continue}}{{end}}{{.}}{{break}}{{end}}')).toBe('sleep 30');
    expect(tpl('{{range $i, $e := .Args}}{{end}}{{range 3}}{{.}}{{end}}')).toBe('012');
  });

  it('if, else if, with, and, or, not, comparisons', () => {
    expect(tpl('{{if .State.Paused}}paused{{else if .State.Running}}running{{else}}stopped{{end}}')).toBe(
      'running',
    );
    expect(tpl('{{with .State}}{{.Status}}{{end}} {{with .Config.Env}}x{{else}}empty{{end}}')).toBe(
      'running empty',
    );
    expect(tpl('{{and .State.Running .State.Pid}} {{or .State.Paused "no"}} {{not .State.Paused}}')).toBe(
      '4242 no true',
    );
    expect(
      tpl(
        '{{eq .State.Status "paused" "running"}} {{ne .State.Pid 1}} {{lt 1 2}} {{le 2 2}} {{gt "b" "a"}} {{ge 1 2}}',
      ),
    ).toBe('true true true true true false');
  });

  it('docker functions: json, join, split, upper, lower, title, pad, truncate; len, index, slice', () => {
    expect(tpl('{{json .Config.Cmd}}')).toBe('["sh","-c","a && b"]');
    expect(tpl('{{json .State}}')).toBe(
      '{"Status":"running","Running":true,"Paused":false,"Pid":4242,"ExitCode":0}',
    );
    expect(tpl('{{json .Config.Labels}}')).toBe('{"com.example.a":"1","com.example.b":"2"}');
    expect(tpl('{{join .Config.Cmd " "}}')).toBe('sh -c a && b');
    expect(tpl('{{split .Name "e"}} {{len (split "a,b,c" ",")}}')).toBe('[/w b] 3');
    expect(tpl('{{upper .State.Status}} {{lower "ABC"}} {{title "hello wide world"}}')).toBe(
      'RUNNING abc Hello Wide World',
    );
    expect(tpl('[{{pad .State.Status 2 1}}] [{{truncate .Id 4}}] [{{truncate "ab" 5}}]')).toBe(
      '[  running ] [f00d] [ab]',
    );
    expect(tpl('{{len .Mounts}} {{len .Name}} {{index .Mounts 1 "Source"}} {{slice .Id 0 3}}')).toBe(
      '2 4 /srv f00',
    );
  });

  it('pipelines, parentheses, variables, print, println, printf', () => {
    expect(tpl('{{.Name | printf "%s!" | upper}}')).toBe('/WEB!');
    expect(tpl('{{$s := .State}}{{$s.Status}} {{$.Id}}')).toBe('running f00dfeed');
    expect(tpl('{{$x := 1}}{{$x = 2}}{{$x}}')).toBe('2');
    expect(tpl('{{print "a" 1 2 "b"}} {{print 1 2}}')).toBe('a1 2b 1 2');
    expect(tpl('{{println .Name .State.Pid}}')).toBe('/web 4242\n');
    expect(
      tpl('{{printf "%-6s|%6s|%05d|%.2f|%x|%q|%v|%t" .Name .Name 42 3.14159 255 .Name .Args true}}'),
    ).toBe('/web  |  /web|00042|3.14|ff|"/web"|[-c sleep 30]|true');
    expect(tpl('{{printf "%d %s"  1}}|{{printf "%d" 1 2}}|{{printf "%d" "x"}}')).toBe(
      '1 %!s(MISSING)|1%!(EXTRA int=2)|%!d(string=x)',
    );
    expect(tpl('{{printf "%.1f %.2f %.0f %e %g" 0.25 2.675 2.5 1234.5678 0.00001}}')).toBe(
      '0.2 2.67 2 1.234568e+03 1e-05',
    );
  });

  it('trims spaces with {{- and -}}, and skips comments', () => {
    expect(tpl('a  \n {{- .Name -}} \n  b')).toBe('a/webb');
    expect(tpl('{{/* a comment */}}x{{- /* another */ -}} y')).toBe('xy');
  });

  it('strings and numbers as Go reads them', () => {
    expect(tpl('{{"a\\tb"}}|{{`raw\\t`}}|{{0x1F}}|{{1e3}}|{{\'A\'}}|{{-5}}')).toBe(
      'a\tb|raw\\t|31|1000|65|-5',
    );
  });
});

describe('formatEach: inspect', () => {
  const doc = { Id: 'abc', Config: { Cmd: ['sh', '-c', 'a && b <x>'] }, Empty: [] };

  it('prints an indented JSON array without a format, escaping <, > and & as docker does', () => {
    expect(formatEach([doc])).toBe(
      '[\n    {\n        "Id": "abc",\n        "Config": {\n            "Cmd": [\n                "sh",\n                "-c",\n' +
        '                "a \\u0026\\u0026 b \\u003cx\\u003e"\n            ]\n        },\n        "Empty": []\n    }\n]\n',
    );
    expect(formatEach([])).toBe('[]\n');
  });

  it('prints compact JSON with --format json', () => {
    expect(formatEach([doc, doc], 'json')).toBe(
      '[{"Id":"abc","Config":{"Cmd":["sh","-c","a \\u0026\\u0026 b \\u003cx\\u003e"]},"Empty":[]},' +
        '{"Id":"abc","Config":{"Cmd":["sh","-c","a \\u0026\\u0026 b \\u003cx\\u003e"]},"Empty":[]}]\n',
    );
  });

  it('runs a template per document; an empty line when there is none', () => {
    expect(formatEach([doc, { ...doc, Id: 'def' }], '{{.Id}}')).toBe('abc\ndef\n');
    expect(formatEach([], '{{.Id}}')).toBe('\n');
  });

  it('leaves \\t alone, as docker inspect does', () => {
    expect(formatEach([doc], '{{.Id}}\\t{{.Id}}')).toBe('abc\\tabc\n');
  });

  it('a key the document lacks is an error (the raw fallback uses missingkey=error)', () => {
    expect(() => formatEach([doc], '{{.Nope}}')).toThrow(
      'template parsing error: template: :1:2: executing "" at <.Nope>: map has no entry for key "Nope"',
    );
    expect(() => formatEach([doc], '{{.Config.Nope}}')).toThrow(
      'template parsing error: template: :1:9: executing "" at <.Config.Nope>: map has no entry for key "Nope"',
    );
    expect(() => formatEach([doc], '{{json .Id')).toThrow(
      'template parsing error: template: :1: unclosed action',
    );
  });
});

describe('sprintf (fmt.Sprintf)', () => {
  it.each([
    ['%.2f%%', [12.3456], '12.35%'],
    ['%.2f%%', [0.125], '0.12%'],
    ['%5.1f|%-7.3f|%+d', [1.23456, 2.5, 3], '  1.2|2.500  |+3'],
    ['%08.3f', [-1.23456], '-001.235'],
    ['%s %v %d', ['a', [1, 2], 7], 'a [1 2] 7'],
    ['%x %X %o %b %c %U', [255, 255, 8, 5, 65, 0x1f600], 'ff FF 10 101 A U+1F600'],
    ['%q %v %T %T', ['a"b', null, 'x', 1.5], '"a\\"b" <nil> string float64'],
    ['%[2]s %[1]s', ['a', 'b'], 'b a'],
    ['%', [], '%!(NOVERB)'],
    ['%!', [], '%!!(MISSING)'],
  ])('%s of %j is %s', (format, args, text) => {
    expect(sprintf(format, args)).toBe(text);
  });
});

describe('inspect values: docker maps and structs', () => {
  const ports = {
    '80/tcp': [{ HostIp: '', HostPort: '8080' }],
    '53/udp': [{ HostIp: '127.0.0.1', HostPort: '' }],
  };
  const doc = containerValue({
    HostConfig: { PortBindings: ports, LogConfig: { Type: 'json-file', Config: {} }, Devices: [] },
    Config: { Volumes: { '/data': {} }, ExposedPorts: { '80/tcp': {} }, Labels: {} },
    NetworkSettings: { Ports: ports, Networks: { bridge: { IPAMConfig: null, IPAddress: '10.0.0.2' } } },
    Mounts: [{ Type: 'bind', Source: '/s', Destination: '/d', Mode: '', RW: true, Propagation: 'rprivate' }],
  } as never);

  it('a PortMap prints as a map of lists of structs, keys sorted (template and json)', () => {
    expect(formatEach([doc], '{{.HostConfig.PortBindings}}')).toBe(
      'map[53/udp:[{127.0.0.1 }] 80/tcp:[{ 8080}]]\n',
    );
    expect(formatEach([doc], '{{json .NetworkSettings.Ports}}')).toBe(
      '{"53/udp":[{"HostIp":"127.0.0.1","HostPort":""}],"80/tcp":[{"HostIp":"","HostPort":"8080"}]}\n',
    );
  });

  it('map[string]struct{} prints its values as {}', () => {
    expect(formatEach([doc], '{{.Config.Volumes}} {{.Config.ExposedPorts}}')).toBe(
      'map[/data:{}] map[80/tcp:{}]\n',
    );
  });

  it('Networks is a map that range walks by name', () => {
    expect(
      formatEach([doc], '{{range $n, $e := .NetworkSettings.Networks}}{{$n}}={{$e.IPAddress}}{{end}}'),
    ).toBe('bridge=10.0.0.2\n');
  });
});

describe('inspect values: fields docker omits when empty', () => {
  const doc = containerValue({
    HostConfig: { PortBindings: {}, LogConfig: { Type: 'json-file', Config: {} }, Devices: [] },
    Config: { Labels: {} },
    NetworkSettings: { Ports: {}, Networks: {} },
    Mounts: [{ Type: 'bind', Source: '/s', Destination: '/d', Mode: '', RW: true, Propagation: 'rprivate' }],
  } as never);

  it('a template sees their zero values; JSON output leaves them out', () => {
    expect(
      formatEach(
        [doc],
        '{{.HostConfig.Init}} {{.HostConfig.Tmpfs}} {{len .HostConfig.Mounts}} {{.Config.ExposedPorts}}',
      ),
    ).toBe('<nil> map[] 0 map[]\n');
    expect(formatEach([doc], '{{range .Mounts}}[{{.Name}}]{{end}}')).toBe('[]\n');
    expect(formatEach([doc], '{{json .HostConfig}}')).toBe(
      '{"PortBindings":{},"LogConfig":{"Type":"json-file","Config":{}},"Devices":[]}\n',
    );
  });
});
