/*
 * cose-flow native crypto: the primitives of cose-flow/1 in plain C over the PSA Crypto API.
 *
 * One source for every target: Mbed TLS 2.28 (Debian 12's libmbedtls-dev, the host tests) and
 * Mbed TLS 4.x / TF-PSA-Crypto 1.x (ESP-IDF v6.0, the device), where the legacy mbedtls_*
 * crypto calls are gone. Only PSA functions are used, plus mbedtls_platform_zeroize, and only
 * one-shot ones: no multi-part operation objects, whose size depends on the configuration PSA
 * was built with (a Moddable SDK build compiles this outside ESP-IDF's CMake, without it).
 *
 * Conventions (the same as src/crypto/provider.ts, which this implements for the device):
 * - Byte strings are (pointer, length); a pointer may be NULL only when its length is 0. A NULL
 *   input with a length, a NULL output where bytes are due, or a length whose output size does
 *   not fit in size_t is CF_ERR_BAD_INPUT, before PSA is called.
 * - Output buffers are the caller's; their size is fixed by the inputs and named at each
 *   function. On any failure, outputs hold no secret (they are wiped).
 * - P-256 public keys are 65-byte uncompressed SEC1 points (0x04 || x || y); ECDSA signatures
 *   are raw r || s (64 bytes) over SHA-256 of the message; private scalars are 32 bytes,
 *   big-endian, 1 <= d < n.
 * - Every function initialises PSA Crypto on first use (psa_crypto_init is idempotent).
 * - Keys are imported into PSA for one operation and destroyed right after it, with a policy
 *   for exactly that operation; secrets on the stack are wiped before returning.
 *
 * Nothing here is thread-safe beyond what PSA itself guarantees; the device runs one thread.
 */
#ifndef CF_CRYPTO_H
#define CF_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CF_SHA256_BYTES 32
#define CF_AES128_KEY_BYTES 16
#define CF_GCM_IV_BYTES 12
#define CF_GCM_TAG_BYTES 16
#define CF_KEY_WRAP_SEMIBLOCK 8
#define CF_P256_SCALAR_BYTES 32
#define CF_P256_PUBLIC_KEY_BYTES 65
#define CF_P256_SIGNATURE_BYTES 64
#define CF_P256_SEED_BYTES 48 /* FIPS 186-5 A.2.1: 256 + 64 bits of randomness per scalar */
#define CF_HKDF_SHA256_MAX_BYTES (255 * CF_SHA256_BYTES)

typedef enum {
	CF_OK = 0,
	CF_ERR_BAD_INPUT = 1,      /* a length or value this operation never accepts */
	CF_ERR_BAD_KEY = 2,        /* a scalar out of range, a public key not on P-256 */
	CF_ERR_DECRYPT_FAILED = 3, /* AES-GCM tag or key-wrap integrity check did not match */
	CF_ERR_BAD_SIGNATURE = 4,  /* ECDSA: the signature does not verify (or is malformed) */
	CF_ERR_UNAVAILABLE = 5,    /* an entropy source or device secret is missing or not provisioned */
	CF_ERR_NO_MEMORY = 6,      /* PSA ran out of memory or key slots */
	CF_ERR_INTERNAL = 7,       /* anything else the crypto library reported */
} cf_status;

/* A short, stable name for a status ("ok", "bad-input", ...), for messages and tests. */
const char* cf_status_name(cf_status status);

/* Initialises PSA Crypto. Optional: every function below does it on first use. */
cf_status cf_crypto_init(void);

/* Wipes `length` bytes in a way the compiler cannot optimise away. */
void cf_wipe(void* data, size_t length);

/* Constant-time comparison: 1 when the two buffers are equal, else 0. */
int cf_equal(const uint8_t* a, const uint8_t* b, size_t length);

/*
 * `length` bytes from the platform's hardware or kernel RNG (cf_random.c): esp_fill_random on
 * the ESP32, getrandom(2) on Linux, getentropy(3) on macOS, BCryptGenRandom on Windows. It does
 * not need PSA, so the desktop simulator links it alone.
 */
cf_status cf_random(uint8_t* out, size_t length);

/* ---- hashing and key derivation ---- */

cf_status cf_sha256(const uint8_t* data, size_t length, uint8_t digest[CF_SHA256_BYTES]);

/* HMAC-SHA-256 (RFC 2104) with a key of any length, including 0. */
cf_status cf_hmac_sha256(const uint8_t* key, size_t key_length, const uint8_t* data, size_t length,
	uint8_t mac[CF_SHA256_BYTES]);

/*
 * HKDF-SHA-256 (RFC 5869): extract with `salt` (none when salt_length is 0: HashLen zeros), then
 * expand with `info` to `out_length` bytes, 1 <= out_length <= CF_HKDF_SHA256_MAX_BYTES. Built on
 * one-shot HMAC (PSA's HKDF is a multi-part operation); info longer than 128 bytes is copied to
 * the heap (CF_ERR_NO_MEMORY when that fails).
 */
cf_status cf_hkdf_sha256(const uint8_t* ikm, size_t ikm_length, const uint8_t* salt, size_t salt_length,
	const uint8_t* info, size_t info_length, uint8_t* out, size_t out_length);

/* ---- AES-128 ---- */

/*
 * AES-128-GCM with a 12-byte IV and a 16-byte tag: `out` receives length + 16 bytes (ciphertext ||
 * tag), so it is never NULL; CF_ERR_BAD_INPUT when it is, or when length + 16 overflows size_t.
 */
cf_status cf_aes_gcm_encrypt(const uint8_t key[CF_AES128_KEY_BYTES], const uint8_t iv[CF_GCM_IV_BYTES],
	const uint8_t* plaintext, size_t length, const uint8_t* aad, size_t aad_length, uint8_t* out);

/*
 * The inverse: `sealed` is ciphertext || tag (sealed_length >= 16), `out` receives
 * sealed_length - 16 bytes (NULL only when that is 0, else CF_ERR_BAD_INPUT).
 * CF_ERR_DECRYPT_FAILED when the tag does not match (`out` wiped), or sealed_length < 16.
 */
cf_status cf_aes_gcm_decrypt(const uint8_t key[CF_AES128_KEY_BYTES], const uint8_t iv[CF_GCM_IV_BYTES],
	const uint8_t* sealed, size_t sealed_length, const uint8_t* aad, size_t aad_length, uint8_t* out);

/*
 * RFC 3394 AES key wrap with a 128-bit KEK and the default IV (A6A6A6A6A6A6A6A6), built on
 * single-block AES (PSA_ALG_ECB_NO_PADDING): PSA has no key-wrap algorithm. `length` is a
 * multiple of 8 and at least 16; `out` receives length + 8 bytes (CF_ERR_BAD_INPUT when that
 * overflows size_t).
 */
cf_status cf_aes_key_wrap(const uint8_t kek[CF_AES128_KEY_BYTES], const uint8_t* key_data, size_t length,
	uint8_t* out);

/*
 * RFC 3394 unwrap: `length` is a multiple of 8 and at least 24, `out` receives length - 8
 * bytes. CF_ERR_DECRYPT_FAILED (and `out` wiped) when the integrity check fails.
 */
cf_status cf_aes_key_unwrap(const uint8_t kek[CF_AES128_KEY_BYTES], const uint8_t* wrapped, size_t length,
	uint8_t* out);

/* ---- P-256 ---- */

/*
 * A P-256 private key: its scalar (secret) and its public key. The scalar is imported into PSA
 * for each operation, with a policy for that one operation, and the PSA copy destroyed after
 * it; this struct's copy is wiped by cf_p256_key_wipe. Treat the fields as read-only.
 */
typedef struct {
	uint8_t d[CF_P256_SCALAR_BYTES];
	uint8_t public_key[CF_P256_PUBLIC_KEY_BYTES];
} cf_p256_key;

/*
 * A new key from PSA's key generator: on ESP-IDF 6 (TF-PSA-Crypto) it reads esp_fill_random
 * directly, with no DRBG; Mbed TLS 2.28 on a host uses its CTR_DRBG seeded from the OS.
 */
cf_status cf_p256_generate(cf_p256_key* key);

/* A key from its scalar; CF_ERR_BAD_KEY unless 1 <= d < n. */
cf_status cf_p256_import(cf_p256_key* key, const uint8_t d[CF_P256_SCALAR_BYTES]);

/* Wipes the key (scalar and public key). */
void cf_p256_key_wipe(cf_p256_key* key);

/*
 * The scalar FIPS 186-5 A.2.1 derives from 48 uniformly random bytes: d = (c mod (n - 1)) + 1,
 * with c the seed as a big-endian integer. The bias is below 2^-64. Constant time.
 */
void cf_p256_scalar_from_seed(const uint8_t seed[CF_P256_SEED_BYTES], uint8_t d[CF_P256_SCALAR_BYTES]);

/*
 * ECDSA P-256 with SHA-256 over `message`: raw r || s. Deterministic (RFC 6979) where the PSA
 * implementation offers it (PSA_WANT_ALG_DETERMINISTIC_ECDSA), else randomized.
 */
cf_status cf_ecdsa_p256_sign(const cf_p256_key* key, const uint8_t* message, size_t length,
	uint8_t signature[CF_P256_SIGNATURE_BYTES]);

/*
 * CF_OK when `signature` (r || s) is a valid ECDSA P-256 / SHA-256 signature of `message` under
 * `public_key`; CF_ERR_BAD_SIGNATURE when it is not, including a public key that is not a point
 * on P-256, a signature of the wrong size, or r or s outside 1 ... n - 1 (refused here, before
 * PSA: ESP-IDF 6's ECDSA peripheral driver does not check it). CF_ERR_BAD_INPUT for a NULL
 * pointer with a length; other statuses are failures of the library. High-S signatures are
 * accepted (no low-S rule), as ECDSA specifies.
 */
cf_status cf_ecdsa_p256_verify(const uint8_t* public_key, size_t public_key_length, const uint8_t* message,
	size_t length, const uint8_t* signature, size_t signature_length);

/*
 * ECDH on P-256: the x-coordinate of d * Q (32 bytes). CF_ERR_BAD_KEY when `peer` is not a
 * 65-byte uncompressed point on the curve (invalid-curve attacks).
 */
cf_status cf_ecdh_p256(const cf_p256_key* key, const uint8_t* peer, size_t peer_length,
	uint8_t shared[CF_P256_SCALAR_BYTES]);

#ifdef __cplusplus
}
#endif

#endif /* CF_CRYPTO_H */
