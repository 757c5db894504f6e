/** Control messages (src/profile/control.ts): the wire format, and every way to get one wrong. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { nodeCrypto } from '../../node/crypto.js';
import { utf8Encode } from '../../src/bytes.js';
import { decode, encode, Tag } from '../../src/cbor/index.js';
import { isCoseError } from '../../src/cose/errors.js';
import { makeSign1 } from '../../src/cose/sign1.js';
import { nobleCrypto } from '../../src/crypto/noble.js';
import {
  CONTROL_CONTENT_TYPE,
  makeControlMessage,
  openControlMessage,
  peekControlMessage,
} from '../../src/profile/control.js';
import { encodeKid } from '../../src/profile/counter.js';

const cloudSide = nodeCrypto();
const device = nobleCrypto();
const cloudKey = cloudSide.p256Generate();
const kid = encodeKid(5);
const base = { deviceId: 'dev-1', request: 'rekey' as const, kid, issuedAt: 1_700_000_000 };
const open = (bytes: Uint8Array, deviceId = 'dev-1', keys = [cloudKey.publicKey]) =>
  openControlMessage(device, bytes, { cloudPublicKeys: keys, deviceId });

function refused(reason: string, run: () => unknown) {
  assert.throws(run, (e: unknown) => isCoseError(e) && e.reason === reason, `expected ${reason}`);
}

describe('control messages', () => {
  test('made by the cloud (node crypto), opened by the device (noble)', () => {
    const bytes = makeControlMessage(cloudSide, cloudKey, base);
    const opened = open(bytes);
    assert.deepEqual(
      { ...opened, kid: [...opened.kid] },
      { request: 'rekey', kid: [5], issuedAt: 1_700_000_000, signedBy: 0 },
    );
    const tagged = decode(bytes, { allowTags: [18] }) as Tag;
    assert.equal(tagged.tag, 18);
    const fields = tagged.value as unknown[];
    assert.deepEqual(
      decode(fields[0] as Uint8Array),
      new Map([
        [1, -7],
        [3, CONTROL_CONTENT_TYPE],
      ]),
    );
    const payload = decode(fields[2] as Uint8Array) as Map<number, unknown>;
    assert.deepEqual([...payload.keys()], [1, 2, 3]);
  });

  test('a new cloud certificate travels with "cloud-certificate" only', () => {
    const der = Uint8Array.of(0x30, 0x03, 0x02, 0x01, 0x01);
    const bytes = makeControlMessage(cloudSide, cloudKey, {
      ...base,
      request: 'cloud-certificate',
      cloudCertificate: der,
    });
    assert.deepEqual([...open(bytes).cloudCertificate!], [...der]);
    assert.deepEqual([...peekControlMessage(bytes).cloudCertificate!], [...der]);
    assert.throws(() => makeControlMessage(cloudSide, cloudKey, { ...base, cloudCertificate: der }), /only with it/);
    assert.throws(
      () => makeControlMessage(cloudSide, cloudKey, { ...base, request: 'cloud-certificate' }),
      /only with it/,
    );
  });

  test('the signature binds the device id (external AAD) and the cloud key', () => {
    const bytes = makeControlMessage(cloudSide, cloudKey, base);
    refused('bad-signature', () => open(bytes, 'dev-2'));
    refused('bad-signature', () => open(bytes, 'dev-1', [cloudSide.p256Generate().publicKey]));
    assert.equal(open(bytes, 'dev-1', [cloudSide.p256Generate().publicKey, cloudKey.publicKey]).signedBy, 1);
    const flipped = bytes.slice();
    flipped[flipped.length - 1]! ^= 1;
    refused('bad-signature', () => open(flipped));
  });

  test('malformed messages are refused with their reason', () => {
    refused('bad-cbor', () => open(Uint8Array.of(0xde, 0xad)));
    refused('bad-tag', () => open(encode(new Map([[1, 'rekey']]))));
    const sign = (protectedMap: Map<number, unknown>, payload: Map<number, unknown>) =>
      makeSign1(cloudSide, cloudKey, {
        protected: protectedMap,
        payload: encode(payload),
        externalAad: utf8Encode('dev-1'),
      });
    const good = new Map<number, unknown>([
      [1, -7],
      [3, 60],
    ]);
    const p = new Map<number, unknown>([
      [1, 'rekey'],
      [2, kid],
      [3, 1],
    ]);
    refused('bad-structure', () =>
      open(
        sign(
          new Map<number, unknown>([
            [1, -7],
            [3, 96],
          ]),
          p,
        ),
      ),
    );
    refused('missing-header', () => open(sign(new Map<number, unknown>([[1, -7]]), p)));
    refused('unknown-header', () =>
      open(
        sign(
          new Map<number, unknown>([
            [1, -7],
            [3, 60],
            [4, kid],
          ]),
          p,
        ),
      ),
    );
    refused('bad-structure', () =>
      open(
        sign(
          good,
          new Map<number, unknown>([
            [1, 'reboot'],
            [2, kid],
            [3, 1],
          ]),
        ),
      ),
    );
    refused('bad-kid', () =>
      open(
        sign(
          good,
          new Map<number, unknown>([
            [1, 'rekey'],
            [2, Uint8Array.of(0)],
            [3, 1],
          ]),
        ),
      ),
    );
    refused('bad-structure', () =>
      open(
        sign(
          good,
          new Map<number, unknown>([
            [1, 'rekey'],
            [2, kid],
            [3, -1],
          ]),
        ),
      ),
    );
    refused('bad-structure', () =>
      open(
        sign(
          good,
          new Map<number, unknown>([
            [1, 'rekey'],
            [2, kid],
            [3, 1],
            [9, 1],
          ]),
        ),
      ),
    );
    refused('missing-header', () =>
      open(
        sign(
          good,
          new Map<number, unknown>([
            [1, 'cloud-certificate'],
            [2, kid],
            [3, 1],
          ]),
        ),
      ),
    );
    refused('bad-structure', () =>
      open(
        sign(
          good,
          new Map<number, unknown>([
            [1, 'rekey'],
            [2, kid],
            [3, 1],
            [4, kid],
          ]),
        ),
      ),
    );
    const unsigned = encode(new Tag([encode(good), new Map(), encode(p), new Uint8Array(64)], 18));
    refused('bad-signature', () => open(unsigned));
    refused('too-large', () => open(new Uint8Array(9000)));
  });
});
