// The C flags the host test programs of native/ share (scripts/build-native-test.js,
// scripts/build-esp-fake-test.js, test/native/psa-harness.test.ts), so that one change reaches all
// of them. (The XS test host keeps its own: it builds the engine at -O2.) CF_PSA_CFLAGS / CF_PSA_LIBS point the builds at another
// PSA Crypto (e.g. TF-PSA-Crypto instead of Debian's Mbed TLS 2.28).

const split = (flags) => flags.split(/\s+/).filter(Boolean);

/** Warnings are errors; the POSIX and GNU declarations the host code uses. */
export const STRICT_C_FLAGS = ['-D_GNU_SOURCE', '-g', '-Wall', '-Wextra', '-Werror'];

/** AddressSanitizer and UndefinedBehaviorSanitizer, stopping at the first finding. */
export const SANITIZER_C_FLAGS = [
  '-O1',
  '-fno-omit-frame-pointer',
  '-fsanitize=address,undefined',
  '-fno-sanitize-recover=all',
];

/** Compile flags of the PSA Crypto to build against (default: none, Debian's headers). */
export const psaCflags = () => split(process.env.CF_PSA_CFLAGS ?? '');

/** Link flags of the PSA Crypto to build against (default: Debian's libmbedcrypto). */
export const psaLibs = () => split(process.env.CF_PSA_LIBS ?? '-lmbedcrypto');
