// Times publishing and removing one container's ports (3 ports) with box's firewall, which
// writes nft's text syntax to one `nft -f -` per change, against the same changes written as
// nft's JSON (passed as nft's argument: nft 1.0.6 reads `-j -f -` by opening /dev/stdin, which
// fails on the socket Node.js gives a child as its stdin); interleaved, 50 rounds, medians.
// Removal lists the container's chain first (`nft -j list chain`) in both; the one-spawn
// removal a caller could do if it passed the ports back is timed too, and a bare
// `nft --version` as the floor of any spawn. Each is run with the table otherwise empty and holding 200 other containers.
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

// The JSON of the same batches box writes as text (rules.ts).
const T = { family: 'ip', table: 'box' };
const match = (left, right) => ({ match: { op: '==', left, right } });
const keyOf = (p) => ({
  name: p.hostIp ? 'published-addr' : 'published-any',
  key: { concat: p.hostIp ? [p.hostIp, p.protocol ?? 'tcp', p.hostPort] : [p.protocol ?? 'tcp', p.hostPort] },
});
function addJson(rules) {
  const chain = `ctr-${rules.containerId}`;
  const commands = [{ create: { chain: { ...T, name: chain } } }];
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
function removeJson(rules) {
  const chain = `ctr-${rules.containerId}`;
  const commands = rules.ports.map((p) => {
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
    listChain: [],
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
    samples.listChain.push(await time(() => nft(['-j', 'list', 'chain', 'ip', 'box', 'ctr-bench'])));
    samples.textRemove.push(await time(() => fw.removeContainer('bench')));
    samples.jsonAdd.push(await time(() => nft(['-j', addJson(rules)])));
    samples.jsonRemove.push(
      await time(async () => {
        // As box does: its own chain tells the container's ports.
        const listing = JSON.parse(await nft(['-j', 'list', 'chain', 'ip', 'box', 'ctr-bench']));
        if (!listing.nftables.some((o) => o.rule)) throw new Error('no rules listed');
        await nft(['-j', removeJson(rules)]);
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
const columns = [
  ['nft --version', 'floor'],
  ['text add', 'textAdd'],
  ['text remove', 'textRemove'],
  ['JSON add', 'jsonAdd'],
  ['JSON remove', 'jsonRemove'],
  ['remove, ports known', 'textRemoveKnown'],
  ['list chain', 'listChain'],
  ['list table', 'list'],
];
print(['others', ...columns.map(([title]) => title)].join(' | '));
for (const r of results) {
  print(
    [String(r.others).padStart(6), ...columns.map(([title, key]) => f(r[key]).padStart(title.length))].join(
      ' | ',
    ),
  );
}
for (const r of results) {
  const text = r.textAdd + r.textRemove;
  const json = r.jsonAdd + r.jsonRemove;
  print(
    `${r.others} others: add+remove text ${f(text)} ms, JSON ${f(json)} ms (JSON/text ${(json / text).toFixed(2)})`,
  );
}
