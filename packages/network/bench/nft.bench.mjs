// Times publishing and removing one container's ports (3 ports) with box's firewall, which
// writes nft's text syntax to one `nft -f -` per change, against the same changes written as
// nft's JSON (passed as nft's argument: nft 1.0.6 reads `-j -f -` by opening /dev/stdin, which
// fails on the socket Node.js gives a child as its stdin); interleaved, 50 rounds, medians.
// Removal lists the table first (`nft -j list table`) in both; the one-spawn removal a caller
// could do if it passed the ports back is timed too, and a bare `nft --version` as the floor of
// any spawn. Each is run with the table otherwise empty and holding 200 other containers.
// Runs in a network namespace it makes and deletes (the host's ruleset is never touched).
// As root, after a build: `pnpm --filter @box/network build && node packages/network/bench/nft.bench.mjs`.
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 50);
const OTHERS = [0, Number(process.env.BENCH_OTHERS ?? 200)];

if (process.argv[2] !== '--inside') {
  if (process.getuid?.() !== 0) throw new Error('the nft bench needs root (it makes a network namespace)');
  const netns = `box-fwb-${process.pid}`;
  const made = spawnSync('ip', ['netns', 'add', netns], { stdio: 'inherit' });
  if (made.status !== 0) process.exit(1);
  let status = 1;
  try {
    const run = spawnSync(
      'ip',
      ['netns', 'exec', netns, process.execPath, fileURLToPath(import.meta.url), '--inside'],
      { stdio: 'inherit' },
    );
    status = run.status ?? 1;
  } finally {
    spawnSync('ip', ['netns', 'del', netns], { stdio: 'inherit' });
  }
  process.exit(status);
}

const { createFirewall, locateNft } = await import('../dist/index.js');
const NFT = locateNft();
const fw = createFirewall();

function nft(args, input = '') {
  return new Promise((resolve, reject) => {
    const child = spawn(NFT, args, { stdio: [input ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      err += d;
    });
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`nft ${args.join(' ')}: ${err}`)),
    );
    if (input) child.stdin.end(input);
  });
}

const rulesOf = (id, n) => ({
  containerId: id,
  address: `10.0.${Math.floor(n / 250)}.${(n % 250) + 2}`,
  ports: [
    { hostPort: 10000 + n, containerPort: 80 },
    { hostIp: '127.0.0.1', hostPort: 20000 + n, containerPort: 5432 },
    { hostPort: 30000 + n, containerPort: 53, protocol: 'udp' },
  ],
});

// The JSON of the same batch box writes as text (rules.ts): table, maps, dispatch chains, then the container.
const T = { family: 'ip', table: 'box' };
const match = (left, right) => ({ match: { op: '==', left, right } });
const dport = { payload: { protocol: 'th', field: 'dport' } };
const l4 = { meta: { key: 'l4proto' } };
const local = match({ fib: { result: 'type', flags: ['daddr'] } }, 'local');
function skeletonJson() {
  const dispatch = (chain, prio) => [
    { add: { chain: { ...T, name: chain, type: 'nat', hook: chain, prio, policy: 'accept' } } },
    { flush: { chain: { ...T, name: chain } } },
    {
      add: {
        rule: {
          ...T,
          chain,
          expr: [
            local,
            {
              vmap: {
                key: { concat: [{ payload: { protocol: 'ip', field: 'daddr' } }, l4, dport] },
                data: '@published-addr',
              },
            },
          ],
        },
      },
    },
    {
      add: {
        rule: {
          ...T,
          chain,
          expr: [local, { vmap: { key: { concat: [l4, dport] }, data: '@published-any' } }],
        },
      },
    },
  ];
  return [
    { add: { table: { family: 'ip', name: 'box' } } },
    {
      add: {
        map: {
          ...T,
          name: 'published-addr',
          type: ['ipv4_addr', 'inet_proto', 'inet_service'],
          map: 'verdict',
        },
      },
    },
    { add: { map: { ...T, name: 'published-any', type: ['inet_proto', 'inet_service'], map: 'verdict' } } },
    ...dispatch('prerouting', -100),
    ...dispatch('output', -100),
  ];
}
const keyOf = (p) => ({
  name: p.hostIp ? 'published-addr' : 'published-any',
  key: { concat: p.hostIp ? [p.hostIp, p.protocol ?? 'tcp', p.hostPort] : [p.protocol ?? 'tcp', p.hostPort] },
});
function addJson(rules) {
  const chain = `ctr-${rules.containerId}`;
  const commands = [
    ...skeletonJson(),
    { add: { chain: { ...T, name: chain } } },
    { delete: { chain: { ...T, name: chain } } },
    { add: { chain: { ...T, name: chain } } },
    { flush: { chain: { ...T, name: chain } } },
  ];
  for (const p of rules.ports) {
    const expr = [
      ...(p.hostIp ? [match({ payload: { protocol: 'ip', field: 'daddr' } }, p.hostIp)] : []),
      match({ payload: { protocol: p.protocol ?? 'tcp', field: 'dport' } }, p.hostPort),
      { dnat: { addr: rules.address, port: p.containerPort } },
    ];
    commands.push({ add: { rule: { ...T, chain, expr } } });
  }
  for (const p of rules.ports) {
    const { name, key } = keyOf(p);
    commands.push({ add: { element: { ...T, name, elem: [[key, { jump: { target: chain } }]] } } });
  }
  return JSON.stringify({ nftables: commands });
}
function removeJson(listing, id) {
  const entry = listing.containers.find((c) => c.containerId === id);
  const chain = `ctr-${id}`;
  const commands = entry.ports.map((p) => {
    const { name, key } = keyOf(p);
    return { delete: { element: { ...T, name, elem: [key] } } };
  });
  commands.push({ flush: { chain: { ...T, name: chain } } }, { delete: { chain: { ...T, name: chain } } });
  return JSON.stringify({ nftables: commands });
}
// The removal batch without a listing, for a caller that knows the ports.
function removeText(rules) {
  const chain = `ctr-${rules.containerId}`;
  return `${[
    ...rules.ports.map((p) =>
      p.hostIp
        ? `delete element ip box published-addr { ${p.hostIp} . ${p.protocol ?? 'tcp'} . ${p.hostPort} }`
        : `delete element ip box published-any { ${p.protocol ?? 'tcp'} . ${p.hostPort} }`,
    ),
    `flush chain ip box ${chain}`,
    `delete chain ip box ${chain}`,
  ].join('\n')}\n`;
}

async function time(fn) {
  const start = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - start) / 1e6;
}
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const results = [];
for (const others of OTHERS) {
  await fw.deleteTable();
  await fw.ensureTable();
  for (let n = 0; n < others; n++) await fw.addContainer(rulesOf(`other${n}`, 1000 + n));
  const samples = {
    floor: [],
    list: [],
    textAdd: [],
    textRemove: [],
    jsonAdd: [],
    jsonRemove: [],
    textRemoveKnown: [],
  };
  for (let round = 0; round < ROUNDS; round++) {
    const rules = rulesOf('bench', round);
    samples.floor.push(await time(() => nft(['--version'])));
    samples.textAdd.push(await time(() => fw.addContainer(rules)));
    samples.list.push(await time(() => fw.list()));
    samples.textRemove.push(await time(() => fw.removeContainer('bench')));
    samples.jsonAdd.push(await time(() => nft(['-j', addJson(rules)])));
    samples.jsonRemove.push(
      await time(async () => {
        const listing = await fw.list();
        await nft(['-j', removeJson(listing, 'bench')]);
      }),
    );
    await fw.addContainer(rules);
    samples.textRemoveKnown.push(await time(() => nft(['-f', '-'], removeText(rules))));
    if ((await fw.list()).containers.some((c) => c.containerId === 'bench'))
      throw new Error('bench rules left over');
  }
  const m = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, median(v)]));
  results.push({ others, ...m });
}
await fw.deleteTable();

const f = (x) => x.toFixed(2).padStart(7);
const print = (line) => process.stdout.write(`${line}\n`);
print(
  `nft ${spawnSync(NFT, ['--version'], { encoding: 'utf8' }).stdout.trim()}, ${ROUNDS} rounds, medians in ms`,
);
print(
  'other containers | nft --version | text add | text remove (list+batch) | JSON add | JSON remove (list+batch) | text remove, ports known | list',
);
for (const r of results) {
  print(
    `${String(r.others).padStart(16)} | ${f(r.floor)}       | ${f(r.textAdd)}  | ${f(r.textRemove)}                 | ${f(r.jsonAdd)}  | ${f(r.jsonRemove)}                 | ${f(r.textRemoveKnown)}                  | ${f(r.list)}`,
  );
  print(
    `${' '.repeat(16)}   add+remove: text ${f(r.textAdd + r.textRemove)}, JSON ${f(r.jsonAdd + r.jsonRemove)} (JSON/text ${((r.jsonAdd + r.jsonRemove) / (r.textAdd + r.textRemove)).toFixed(2)})`,
  );
}
