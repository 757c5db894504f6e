/**
 * The `MqttLink` contract (test/platform/mqtt-link-contract.ts) against src/moddable/sdk/mqtt.ts
 * in XS, over the fake mqtt/js of fake-mqtt-js.ts (and the SDK socket fakes network.ts imports).
 * Prints one `case {"name":…,"error":…}` line per case (no error: passed), then `done true`, for
 * test/moddable/mqtt-link.test.ts.
 */
import { ModdableMqttLink } from '../../../src/moddable/sdk/mqtt.js';
import { LINK_CASES, type LinkRig, refusedSubscriptionCase } from '../../platform/mqtt-link-contract.js';
import { host, runMain } from '../../xs/entries/host.js';
import { fakeBroker } from './fake-mqtt-js.js';

let clients = 0;
const rig: LinkRig = {
  link: () => {
    fakeBroker.refuse = false;
    return new ModdableMqttLink('mqtt://user:secret@127.0.0.1:1883', { clientId: `xs-link-${++clients}` });
  },
  refusedLink: () => {
    fakeBroker.refuse = true;
    return new ModdableMqttLink('mqtt://127.0.0.1:1883', { clientId: 'xs-link-refused' });
  },
  drop: () => fakeBroker.drop(),
  pause: () => Promise.resolve(),
  openClients: () => fakeBroker.open,
};

runMain(async () => {
  const cases = [...LINK_CASES, refusedSubscriptionCase((t) => fakeBroker.refusedTopics.add(t))];
  for (const c of cases) {
    let error: string | undefined;
    try {
      await c.run(rig);
    } catch (e) {
      error = e instanceof Error ? e.message : String(e);
    }
    host.print(`case ${JSON.stringify(error === undefined ? { name: c.name } : { name: c.name, error })}`);
  }
  // The reason a failed attempt gives: the broker without credentials, and how far it got.
  fakeBroker.refuse = true;
  const link = new ModdableMqttLink('mqtt://user:secret@127.0.0.1:1883', { clientId: 'xs-link-reason' });
  try {
    await link.connect();
  } catch (e) {
    host.print(`refused-reason ${JSON.stringify((e as Error).message)}`);
  }
  host.print('done true');
});
