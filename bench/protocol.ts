/**
 * Protocol throughput on this machine: key message make/open and data message seal/open, per
 * crypto provider. Run: `npm run build && node dist/bench/protocol.js [seconds-per-case]`.
 */

import { deviceCertificateVerifier } from '../cloud/pki/verify.js';
import { nodeCrypto } from '../node/crypto.js';
import { equal } from '../src/bytes.js';
import { encode } from '../src/cbor/index.js';
import { nobleCrypto } from '../src/crypto/noble.js';
import type { CryptoProvider } from '../src/crypto/provider.js';
import {
  cloudKeyId,
  makeKeyMessage,
  newSessionKey,
  openData,
  openKeyMessage,
  parseDataMessage,
  sealData,
} from '../src/profile/index.js';
import { makePki } from '../test/fixtures/pki.js';

const seconds = Number(process.argv[2] ?? 1);

function measure(name: string, fn: () => void): void {
  for (let i = 0; i < 20; i++) fn(); // warm up
  const end = performance.now() + seconds * 1000;
  let n = 0;
  const start = performance.now();
  while (performance.now() < end) {
    fn();
    n++;
  }
  const elapsed = (performance.now() - start) / 1000;
  console.log(
    `${name.padEnd(44)} ${Math.round(n / elapsed)
      .toString()
      .padStart(8)} ops/s`,
  );
}

const pki = await makePki({ deviceIds: ['bench-1'] });
const dev = pki.devices.get('bench-1')!;
const payload = encode(
  new Map<string, unknown>([
    ['t', 21.5],
    ['uptime', 123456],
    ['heap', 81234],
  ]),
);
console.log(`node ${process.version}, payload ${payload.length} bytes, ${seconds} s per case`);

for (const crypto of [nobleCrypto(), nodeCrypto()] as CryptoProvider[]) {
  const deviceKey = crypto.p256Import(dev.privateScalar);
  const cloudKey = crypto.p256Import(pki.cloud.privateScalar);
  const cloudKid = cloudKeyId(crypto, cloudKey.publicKey);
  const verifyCertificate = deviceCertificateVerifier({ crypto, trustAnchors: [pki.caDer] });
  const session = newSessionKey(crypto, 1);
  const make = () =>
    makeKeyMessage(crypto, {
      deviceId: 'bench-1',
      deviceKey,
      deviceCertificate: dev.der,
      cloudPublicKey: pki.cloud.publicKey,
      session,
    });
  const keyMessage = make();
  const options = { cloudKey: (kid: Uint8Array) => (equal(kid, cloudKid) ? cloudKey : undefined), verifyCertificate };
  let seq = 0;
  const data = sealData(crypto, session, 1, payload);
  measure(`[${crypto.name}] makeKeyMessage`, make);
  measure(`[${crypto.name}] openKeyMessage (certificate cached)`, () => openKeyMessage(crypto, keyMessage, options));
  measure(`[${crypto.name}] sealData`, () => sealData(crypto, session, seq++, payload));
  measure(`[${crypto.name}] parseDataMessage + openData`, () => openData(crypto, parseDataMessage(data), session));
}
