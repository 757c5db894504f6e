/**
 * src/moddable/sdk/network.ts and mqtt.ts in XS over fakes of the SDK's mqtt/js client, MQTT
 * client and sockets (test/moddable/sdk-fakes.ts): what the link reports when mqtt/js says only
 * `error`, that a TLS error thrown inside a socket callback is caught (and reported) rather than
 * left to abort the application, and that mqtts:// takes the CA from the configuration. Prints
 * `name value` lines (values JSON) for test/moddable/sdk.test.ts.
 */
import { ModdableMqttLink } from '../../../src/moddable/sdk/mqtt.js';
import { configureNetwork, networkProblem } from '../../../src/moddable/sdk/network.js';
import { host, runMain } from '../../xs/entries/host.js';
import { fakeSdk } from '../sdk-fakes.js';

function report(name: string, value: unknown): void {
  host.print(`${name} ${JSON.stringify(value)}`);
}

async function attempt(url: string): Promise<{ ok: boolean; reason?: string; down?: string }> {
  const link = new ModdableMqttLink(url, { clientId: 'xs-test' });
  let down: string | undefined;
  link.onDown((d) => {
    down = d.reason;
  });
  try {
    await link.connect();
    const connected = link.connected;
    await link.close();
    return { ok: connected };
  } catch (e) {
    return { ok: false, reason: (e as Error).message, ...(down === undefined ? {} : { down }) };
  }
}

runMain(async () => {
  const ca = new Uint8Array([0x30, 0x82, 0x01, 0x02, 7, 7, 7]);

  configureNetwork({});
  report('mqtts-without-ca-problem', networkProblem('mqtts://127.0.0.1:8883'));
  report('mqtts-without-ca', await attempt('mqtts://127.0.0.1:8883'));

  fakeSdk.tcp = 'refuse';
  report('tcp-refused', await attempt('mqtt://user:secret@127.0.0.1:1883'));

  fakeSdk.tcp = 'accept';
  report('plain-connects', await attempt('mqtt://127.0.0.1:1883'));
  report('plain-socket-options', fakeSdk.tcpOptions);

  configureNetwork({ brokerCa: ca });
  fakeSdk.tls = 'reject';
  fakeSdk.escaped.length = 0;
  report('tls-rejected', await attempt('mqtts://127.0.0.1:8883'));
  report('tls-rejected-escaped', fakeSdk.escaped);
  const certificate = fakeSdk.secure?.certificate;
  report(
    'tls-certificate',
    certificate instanceof ArrayBuffer ? Array.from(new Uint8Array(certificate)) : String(certificate),
  );

  fakeSdk.tls = 'setup-fails';
  report('tls-setup-fails', await attempt('mqtts://127.0.0.1:8883'));

  fakeSdk.tls = 'verify';
  report('tls-connects', await attempt('mqtts://127.0.0.1:8883'));
  report('tls-escaped', fakeSdk.escaped);
  report('done', true);
});
