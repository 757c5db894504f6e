/**
 * XS side of test/xs/frozen-errors.test.ts: the Moddable SDK freezes the built-ins, including
 * Error.prototype, so an error class that assigns `this.name` throws "set name: not writable" on
 * the device instead of the error it meant. The XS test host freezes them as the SDK does (this
 * entry checks that it did); construct every error class of src/ and print `error CLASS NAME REASON`.
 */
import { CborError } from '../../../src/cbor/index.js';
import { CoseError } from '../../../src/cose/errors.js';
import { CryptoError } from '../../../src/crypto/provider.js';
import { EnrollmentError } from '../../../src/device/enrollment.js';
import { DerError } from '../../../src/pki/der.js';
import { emit, runMain } from './host.js';

runMain(() => {
  if (!Object.isFrozen(Error.prototype)) throw new Error('the XS test host did not freeze the built-ins');
  const make: [string, () => Error][] = [
    ['CoseError', () => new CoseError('bad-cbor', 'x')],
    ['CborError', () => new CborError('x', 0)],
    ['CryptoError', () => new CryptoError('bad-key', 'x')],
    ['DerError', () => new DerError('x', 0)],
    ['EnrollmentError', () => new EnrollmentError('key-conflict', 'x', true, 1)],
  ];
  for (const [cls, fn] of make) {
    try {
      throw fn();
    } catch (e) {
      emit('error', cls, (e as Error).name, (e as { reason?: string; code?: string }).reason ?? 'none');
    }
  }
});
