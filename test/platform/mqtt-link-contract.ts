/**
 * The `MqttLink` contract of src/platform/mqtt.ts as cases that run against every implementation:
 * the core over a scripted fake client and the MQTT.js adapter against the embedded broker
 * (test/platform/mqtt-link.test.ts), and the Moddable adapter in XS over a fake mqtt/js
 * (test/moddable/mqtt-link.test.ts). Runtime-neutral (no Node APIs, no node:assert): a case throws
 * an Error when the link breaks the contract.
 *
 *   for (const c of LINK_CASES) test(c.name, () => c.run(rig));
 */
import type { MqttLink } from '../../src/platform/mqtt.js';

/** What a case needs from the place it runs. */
export interface LinkRig {
  /** A new link to a broker that accepts connections. */
  link(): MqttLink;
  /** A new link whose attempts fail (nothing listens, or the broker refuses). */
  refusedLink(): MqttLink;
  /** Drops `link`'s connection from outside, now: acknowledgements not yet received are lost. */
  drop(link: MqttLink): void;
  /** Lets what is in flight arrive (a few promise jobs, or a few milliseconds on a network). */
  pause(): Promise<void>;
  /**
   * How long a wait for an event may go on (ms) on a rig whose events come over a network: at
   * least 300 pauses in any case (enough for fakes), then until this much time has passed.
   */
  waitMs?: number;
  /**
   * What a publish the loss of the connection leaves unacknowledged rejects with, where the client
   * library fails it itself before it reports the close (default: the link's "connection lost").
   */
  publishLossReason?: string;
  /** Clients made and not yet ended (fakes only): a link ends every client it gives up on. */
  openClients?(): number;
}

export interface LinkCase {
  name: string;
  run(rig: LinkRig): Promise<void>;
}

const NOT_CONNECTED = 'not connected to the broker';
const LOST = 'the connection to the broker was lost';
const CLOSED = 'the link was closed';

function check(condition: boolean, what: string): void {
  if (!condition) throw new Error(what);
}

function same(actual: unknown, expected: unknown, what: string): void {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${what}: got ${a}, expected ${e}`);
}

/** The message `promise` rejects with (fails the case if it resolves). */
async function rejection(promise: Promise<unknown>, what: string): Promise<string> {
  try {
    await promise;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
  throw new Error(`${what} resolved; it should have rejected`);
}

async function until(rig: LinkRig, done: () => boolean, what: string): Promise<void> {
  const started = Date.now();
  for (let i = 0; i < 300 || Date.now() - started < (rig.waitMs ?? 0); i++) {
    if (done()) return;
    await rig.pause();
  }
  throw new Error(`timed out after ${Date.now() - started} ms waiting for ${what}`);
}

async function settleDown(rig: LinkRig): Promise<void> {
  for (let i = 0; i < 3; i++) await rig.pause();
}

let topics = 0;
/** A topic no other case (or earlier run) uses. */
function topic(name: string): string {
  topics += 1;
  return `cose-flow-test/link/${name}/${topics}-${Math.floor(Math.random() * 1e9)}`;
}

function counted(link: MqttLink): { ups: number; downs: string[] } {
  const seen = { ups: 0, downs: [] as string[] };
  link.onUp(() => {
    seen.ups += 1;
  });
  link.onDown((d) => {
    seen.downs.push(d.reason);
  });
  return seen;
}

function openClients(rig: LinkRig, expected: number, what: string): void {
  if (rig.openClients !== undefined) same(rig.openClients(), expected, what);
}

export const LINK_CASES: LinkCase[] = [
  {
    name: 'connect() makes one attempt that resolves once on CONNACK; onUp runs once',
    async run(rig) {
      const link = rig.link();
      const seen = counted(link);
      check(!link.connected, 'a new link is not connected');
      const first = link.connect();
      check(link.connect() === first, 'a second connect() while connecting shares the attempt');
      await first;
      check(link.connected, 'connected after connect() resolved');
      same(seen, { ups: 1, downs: [] }, 'onUp once');
      await link.connect();
      await settleDown(rig);
      same(seen, { ups: 1, downs: [] }, 'connect() while connected is a no-op');
      openClients(rig, 1, 'one client for the connection');
      await link.close();
      openClients(rig, 0, 'close() ends the client');
    },
  },
  {
    name: 'a failed attempt rejects once and reports the same reason to onDown once; the next connect() tries again',
    async run(rig) {
      const link = rig.refusedLink();
      const seen = counted(link);
      const reason = await rejection(link.connect(), 'connect() to a refusing broker');
      check(reason.length > 0, 'a reason');
      await until(rig, () => seen.downs.length >= 1, 'onDown');
      await settleDown(rig);
      same(seen, { ups: 0, downs: [reason] }, 'onDown once, with the reason connect() rejected with');
      check(!link.connected, 'not connected');
      openClients(rig, 0, 'the failed client is ended');
      const again = await rejection(link.connect(), 'the second attempt');
      same(again, reason, 'the second attempt fails the same way');
      await until(rig, () => seen.downs.length >= 2, 'the second onDown');
      await settleDown(rig);
      same(seen.downs.length, 2, 'onDown once per attempt');
      await link.close();
    },
  },
  {
    name: 'publish and subscribe reject at once while not connected (nothing is queued)',
    async run(rig) {
      const link = rig.link();
      const t = topic('offline');
      same(await rejection(link.publish(t, new Uint8Array([1]), { qos: 1 }), 'publish'), NOT_CONNECTED, 'publish');
      same(await rejection(link.subscribe(t, { qos: 1 }), 'subscribe'), NOT_CONNECTED, 'subscribe');
      await link.connect();
      await link.close();
      same(await rejection(link.publish(t, new Uint8Array([1]), { qos: 0 }), 'publish'), NOT_CONNECTED, 'after close');
    },
  },
  {
    name: 'publish at QoS 0, 1 and 2 resolves once acknowledged; subscribers get their own plain Uint8Array copies',
    async run(rig) {
      const link = rig.link();
      await link.connect();
      const t = topic('qos');
      await link.subscribe(t, { qos: 2 });
      const first: number[][] = [];
      const second: number[][] = [];
      const removed: number[][] = [];
      link.onMessage(() => {
        throw new Error('a failing handler');
      });
      link.onMessage((name, payload) => {
        check(name === t, `the topic (${name})`);
        check(payload.constructor === Uint8Array, 'a plain Uint8Array');
        first.push([...payload]);
        payload.fill(0); // owned by this handler: the next one must not see it
      });
      link.onMessage((_, payload) => second.push([...payload]));
      const remove = link.onMessage((_, payload) => removed.push([...payload]));
      check(remove() !== undefined, 'the remover');
      for (const qos of [0, 1, 2] as const) await link.publish(t, new Uint8Array([qos, 7, 8]), { qos });
      await until(rig, () => second.length === 3, 'the three messages');
      const sorted = (list: number[][]) => [...list].sort((a, b) => a[0]! - b[0]!);
      same(
        sorted(first),
        [
          [0, 7, 8],
          [1, 7, 8],
          [2, 7, 8],
        ],
        'the first handler',
      );
      same(
        sorted(second),
        [
          [0, 7, 8],
          [1, 7, 8],
          [2, 7, 8],
        ],
        'the second handler, after the first mutated its copy',
      );
      same(removed, [], 'a removed handler');
      await link.close();
    },
  },
  {
    name: 'when the connection is lost, every unacknowledged publish rejects, then onDown runs once',
    async run(rig) {
      const link = rig.link();
      await link.connect();
      const log: string[] = [];
      // A promise job queued by onDown runs after the reactions to publishes rejected before it.
      link.onDown((d) => void Promise.resolve().then(() => log.push(`down: ${d.reason}`)));
      const t = topic('lost');
      const pending = ([1, 2] as const).map((qos) =>
        link.publish(t, new Uint8Array([qos]), { qos }).then(
          () => log.push(`qos ${qos} acknowledged`),
          (e: Error) => log.push(`qos ${qos}: ${e.message}`),
        ),
      );
      rig.drop(link);
      await Promise.all(pending);
      await until(rig, () => log.length >= 3, 'onDown');
      await settleDown(rig);
      const why = rig.publishLossReason ?? LOST;
      same(log, [`qos 1: ${why}`, `qos 2: ${why}`, `down: ${LOST}`], 'publishes reject before onDown, once');
      check(!link.connected, 'not connected');
      same(await rejection(link.publish(t, new Uint8Array([3]), { qos: 1 }), 'publish'), NOT_CONNECTED, 'afterwards');
      openClients(rig, 0, 'the lost client is ended');
      await link.close();
    },
  },
  {
    name: 'subscriptions are made again on the next connection before onUp runs',
    async run(rig) {
      const link = rig.link();
      await link.connect();
      const t = topic('resubscribe');
      await link.subscribe(t, { qos: 1 });
      const got: number[][] = [];
      link.onMessage((name, payload) => {
        if (name === t) got.push([...payload]);
      });
      const down = new Promise<void>((resolve) => link.onDown(() => resolve()));
      rig.drop(link);
      await down;
      let published: Promise<void> | undefined;
      link.onUp(() => {
        // subscribed again by now: this message comes back
        published = link.publish(t, new Uint8Array([9]), { qos: 1 });
      });
      await link.connect();
      check(published !== undefined, 'onUp ran before connect() resolved');
      await published;
      await until(rig, () => got.length === 1, 'the message on the topic subscribed before the loss');
      same(got, [[9]], 'the message');
      await link.close();
    },
  },
  {
    name: 'onUp and onDown handlers run once per event and stop once removed',
    async run(rig) {
      const link = rig.link();
      const log: string[] = [];
      const removeUp = link.onUp(() => log.push('up'));
      const removeDown = link.onDown((d) => log.push(`down: ${d.reason}`));
      await link.connect();
      rig.drop(link);
      await until(rig, () => log.length === 2, 'onDown');
      await link.connect();
      same(log, ['up', `down: ${LOST}`, 'up'], 'up, down, up');
      removeUp();
      removeDown();
      rig.drop(link);
      await until(rig, () => !link.connected, 'the loss');
      await link.connect();
      await settleDown(rig);
      same(log.length, 3, 'removed handlers are not called');
      await link.close();
    },
  },
  {
    name: 'close() rejects pending publishes, reports no onDown, is idempotent, and the link connects again',
    async run(rig) {
      const link = rig.link();
      const seen = counted(link);
      await link.connect();
      const pending = link.publish(topic('close'), new Uint8Array([1]), { qos: 1 });
      const closing = link.close();
      same(await rejection(pending, 'the pending publish'), CLOSED, 'the pending publish');
      await closing;
      await link.close();
      await settleDown(rig);
      check(!link.connected, 'not connected');
      same(seen, { ups: 1, downs: [] }, 'no onDown for close()');
      openClients(rig, 0, 'the client is ended');
      await link.connect();
      check(link.connected, 'connected again');
      same(seen.ups, 2, 'onUp again');
      await link.close();
    },
  },
  {
    name: 'close() during an attempt rejects it without onDown; a late CONNACK does not bring the link up',
    async run(rig) {
      const link = rig.link();
      const seen = counted(link);
      const attempt = link.connect();
      await link.close();
      same(await rejection(attempt, 'the attempt'), CLOSED, 'the attempt');
      await settleDown(rig);
      check(!link.connected, 'not connected');
      same(seen, { ups: 0, downs: [] }, 'no events');
      openClients(rig, 0, 'the abandoned client is ended, if need be once it connects');
      await link.connect();
      check(link.connected, 'the next connect() works');
      await link.close();
    },
  },
];

/** Cases for a broker that can be told to refuse a subscription (the fakes). */
export function refusedSubscriptionCase(refuse: (topic: string) => void): LinkCase {
  return {
    name: 'a refused subscription rejects and is not made again on the next connection',
    async run(rig) {
      const link = rig.link();
      await link.connect();
      const t = topic('refused');
      refuse(t);
      same(
        await rejection(link.subscribe(t, { qos: 1 }), 'subscribe'),
        `the broker refused the subscription to ${t}`,
        'the reason',
      );
      rig.drop(link);
      await until(rig, () => !link.connected, 'the loss');
      await link.connect(); // would fail if the refused subscription were made again
      check(link.connected, 'connected again');
      await link.close();
    },
  };
}
