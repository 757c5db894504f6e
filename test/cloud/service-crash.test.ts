/**
 * Kill -9 in the middle of a QoS 1 stream: `cose-flow cloud run` runs as a child process (SQLite
 * store, --out), a test publisher streams a device's data messages, the service is SIGKILLed
 * halfway and started again. Its broker session (MQTT 5 session expiry on mosquitto, a 3.1.1
 * persistent session on aedes) makes the broker redeliver what was not acknowledged. In the end
 * the store and the --out file hold every sequence number exactly once: nothing acknowledged was
 * lost, nothing was delivered twice.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { openStore } from '../../cloud/store/index.js';
import { startBroker } from '../fixtures/broker.js';
import { mosquittoAvailability, startMosquitto } from '../fixtures/mosquitto.js';
import { type CloudFixture, connectPublisher, makeCloudDataDir, makeDevice, sleep, until } from './service-fixture.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const bin = join(root, 'bin', 'cose-flow.js');
const tmp = mkdtempSync(join(tmpdir(), 'cose-flow-crash-'));
let fixture: CloudFixture;
const children: ChildProcess[] = [];

before(async () => {
  fixture = await makeCloudDataDir(join(tmp, 'data'));
});
after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(tmp, { recursive: true, force: true });
});

/** Starts `cose-flow cloud run`; resolves once it logged "started". */
async function runService(args: string[]): Promise<{ child: ChildProcess; output: () => string }> {
  const child = spawn(process.execPath, [bin, 'cloud', 'run', ...args], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, COSE_FLOW_STORAGE_KEY: '' },
  });
  children.push(child);
  let output = '';
  child.stdout!.on('data', (d) => {
    output += d;
  });
  child.stderr!.on('data', (d) => {
    output += d;
  });
  await until(
    'the service to start',
    () => {
      if (child.exitCode !== null) throw new Error(`cose-flow cloud run exited (${child.exitCode}):\n${output}`);
      return output.includes('"event":"started"');
    },
    120_000,
  );
  return { child, output: () => output };
}

function outLines(path: string): { deviceId: string; seq: number; payload: unknown }[] {
  if (!existsSync(path)) return [];
  const text = readFileSync(path, 'utf8');
  return text
    .slice(0, text.lastIndexOf('\n') + 1) // a line being written is not complete yet
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as { deviceId: string; seq: number; payload: unknown });
}

const mosquitto = mosquittoAvailability('the cloud service crash test on mosquitto');
const brokers = [
  { name: 'aedes', skip: false as const },
  { name: 'mosquitto', skip: mosquitto.run ? (false as const) : mosquitto.why },
];

describe('kill -9 during a QoS 1 stream, then restart', () => {
  for (const b of brokers) {
    test(`${b.name}: every sequence number exactly once in the store and in --out`, { skip: b.skip }, async () => {
      const broker = b.name === 'aedes' ? await startBroker() : await startMosquitto();
      const dir = join(tmp, b.name);
      mkdirSync(dir, { recursive: true });
      const store = `sqlite:${join(dir, 'store.db')}`;
      const out = join(dir, 'out.jsonl');
      const args = [
        '--broker',
        broker.url,
        '--data-dir',
        fixture.dataDir,
        '--store',
        store,
        '--out',
        out,
        '--client-id',
        `crash-${b.name}`,
        '--log-level',
        'info',
      ];
      const device = await makeDevice(fixture, `crash-${b.name}`);
      const pub = await connectPublisher(broker.url, `crash-pub-${b.name}`);
      try {
        const first = await runService(args);
        const total = 3000;
        await pub.key(device, device.keyMessage(1));
        const messages = [...Array(total).keys()].map((seq) => device.data(1, seq));
        // Stream in chunks so the kill lands while messages are still arriving.
        let sent = 0;
        const streaming = (async () => {
          while (sent < total) {
            const chunk = messages.slice(sent, sent + 100);
            await Promise.all(chunk.map((m) => pub.data(device, m, 1)));
            sent += chunk.length;
            await sleep(5);
          }
        })();
        await until('a few hundred payloads in --out', () => outLines(out).length >= 400, 120_000);
        first.child.kill('SIGKILL');
        await new Promise((r) => first.child.once('exit', r));
        const atKill = outLines(out).length;
        if (process.env.CRASH_DEBUG) console.log('at kill', atKill, 'sent', sent);
        assert.ok(atKill < total, `killed mid-stream (${atKill} of ${total} written)`);
        await streaming;
        assert.ok(sent === total);

        const second = await runService(args);
        try {
          await until(`all ${total} payloads in --out`, () => outLines(out).length >= total, 120_000).catch((e) => {
            throw new Error(`${(e as Error).message}; have ${outLines(out).length}\n${second.output().slice(-3000)}`);
          });
          // One more message, sent after all the others: once it is in --out, whatever the broker
          // still held for the service (a redelivery, a duplicate if written) has been handled.
          await pub.data(device, device.data(1, total), 1);
          await until('the last message in --out', () => outLines(out).some((l) => l.seq === total), 120_000);
          await sleep(300); // anything more would be a duplicate
          const lines = outLines(out);
          const counts = new Map<number, number>();
          for (const l of lines) counts.set(l.seq, (counts.get(l.seq) ?? 0) + 1);
          assert.equal(counts.size, total + 1, 'every sequence number in --out');
          assert.deepEqual(
            [...counts].filter(([, n]) => n !== 1),
            [],
            'no sequence number twice in --out',
          );
          assert.deepEqual(lines.find((l) => l.seq === 7)?.payload, { seq: 7 });
        } finally {
          second.child.kill('SIGTERM');
          await new Promise((r) => second.child.once('exit', r));
          if (process.env.CRASH_DEBUG)
            console.log(
              second
                .output()
                .split('\n')
                .filter((l) => l.includes('"stopped"')),
            );
        }
        const s = await openStore(store);
        try {
          assert.equal(await s.countPayloads(), total + 1, 'stored exactly once (the stream and the last message)');
          const seqs = new Set<number>();
          for (let after = 0; ; ) {
            const page = await s.listPayloads({ after, limit: 1000 });
            if (page.length === 0) break;
            for (const p of page) seqs.add(p.seq);
            after = page[page.length - 1]!.id;
          }
          assert.equal(seqs.size, total + 1);
        } finally {
          await s.close();
        }
      } finally {
        await pub.close();
        await broker.close();
      }
    });
  }
});
