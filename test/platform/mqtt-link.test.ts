/**
 * The `MqttLink` contract (test/platform/mqtt-link-contract.ts) against:
 * - the runtime-neutral core (src/platform/mqtt-link.ts) over a scripted fake client and broker
 *   (test/platform/fake-broker.ts), in process, in milliseconds;
 * - the MQTT.js adapter (host-sim/mqtt.ts) against the embedded aedes broker.
 * The Moddable adapter runs the same cases in XS: test/moddable/mqtt-link.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { HostMqttLink } from '../../host-sim/mqtt.js';
import { MqttLinkCore } from '../../src/platform/mqtt-link.js';
import { startBroker, type TestBroker } from '../fixtures/broker.js';
import { FakeBroker, fakeTransport } from './fake-broker.js';
import { LINK_CASES, type LinkRig, refusedSubscriptionCase } from './mqtt-link-contract.js';

describe('MqttLink contract: the core over a scripted fake client', () => {
  const broker = new FakeBroker();
  const rig: LinkRig = {
    link: () => {
      broker.refuse = false;
      return new MqttLinkCore(fakeTransport(broker));
    },
    refusedLink: () => {
      broker.refuse = true;
      return new MqttLinkCore(fakeTransport(broker));
    },
    drop: () => broker.drop(),
    pause: () => Promise.resolve(),
    openClients: () => broker.open,
  };
  for (const c of [...LINK_CASES, refusedSubscriptionCase((t) => broker.refusedTopics.add(t))]) {
    test(c.name, () => c.run(rig));
  }

  test('the whole fake-client suite runs in well under a second', async () => {
    const started = performance.now();
    for (const c of LINK_CASES) await c.run(rig);
    const ms = performance.now() - started;
    assert.ok(ms < 250, `${ms.toFixed(1)} ms`);
  });
});

describe('MqttLink contract: HostMqttLink (MQTT.js) against the embedded broker', () => {
  let broker: TestBroker;
  let clients = 0;
  before(async () => {
    broker = await startBroker();
  });
  after(() => broker.close());
  const rig: LinkRig = {
    link: () => new HostMqttLink(broker.url, { mqtt: { clientId: `link-contract-${process.pid}-${++clients}` } }),
    // port 1 on the loopback interface: nothing listens, the connection is refused at once
    refusedLink: () => new HostMqttLink('mqtt://127.0.0.1:1', { mqtt: { clientId: `link-refused-${process.pid}` } }),
    drop: (link) => {
      const client = (link as HostMqttLink).client;
      assert.ok(client !== undefined, 'a connection to drop');
      client.stream.destroy();
    },
    pause: () => new Promise((resolve) => setTimeout(resolve, 5)),
    waitMs: 60_000, // events come over a socket: a loaded machine may take a while
    // MQTT.js fails its in-flight messages itself ("Connection closed") just before its close event
    publishLossReason: 'Connection closed',
  };
  for (const c of LINK_CASES) test(c.name, () => c.run(rig));

  test("a failed attempt names the broker without the URL's password", async () => {
    const link = new HostMqttLink('mqtt://user:secret@127.0.0.1:1', {
      mqtt: { clientId: `link-redact-${process.pid}` },
    });
    await assert.rejects(link.connect(), (e: Error) => {
      assert.match(e.message, /^connection to mqtt:\/\/user:\*\*\*@127\.0\.0\.1:1 failed: .*ECONNREFUSED/);
      return true;
    });
  });
});
