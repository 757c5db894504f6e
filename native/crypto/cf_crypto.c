/*
 * cose-flow native crypto over the PSA Crypto API (see cf_crypto.h).
 *
 * Only one-shot PSA calls and mbedtls_platform_zeroize, so that this file compiles unchanged
 * against Mbed TLS 2.28 and against Mbed TLS 4 / TF-PSA-Crypto 1.x, and depends on no structure
 * of PSA but the key attributes. Every key lives in PSA for exactly one operation: imported with
 * a policy that allows that operation and nothing else, and destroyed (which wipes PSA's copy)
 * before the function returns, whatever the outcome.
 */
#include "cf_crypto.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/*
 * ESP-IDF's CMake gives every component that uses its mbedtls these definitions (components/
 * mbedtls/CMakeLists.txt); a Moddable SDK build compiles native modules with its own makefile,
 * which does not. Without them PSA's headers would describe the default configuration, not the
 * one the library was built with.
 */
#if defined(ESP_PLATFORM)
#ifndef MBEDTLS_CONFIG_FILE
#define MBEDTLS_CONFIG_FILE "mbedtls/esp_config.h"
#endif
#ifndef TF_PSA_CRYPTO_USER_CONFIG_FILE
#define TF_PSA_CRYPTO_USER_CONFIG_FILE "mbedtls/esp_config.h"
#endif
#endif

#include <mbedtls/platform_util.h>
#include <psa/crypto.h>

#ifndef PSA_KEY_ID_NULL /* PSA 1.0 names it; Mbed TLS 2.28 does not */
#define PSA_KEY_ID_NULL ((psa_key_id_t)0)
#endif

/* Deterministic ECDSA (RFC 6979) needs no randomness at signing time; hardware-only PSA
 * builds may offer only the randomized form, which verifies the same way. */
#if defined(PSA_WANT_ALG_DETERMINISTIC_ECDSA)
#define CF_ECDSA_SIGN_ALG PSA_ALG_DETERMINISTIC_ECDSA(PSA_ALG_SHA_256)
#else
#define CF_ECDSA_SIGN_ALG PSA_ALG_ECDSA(PSA_ALG_SHA_256)
#endif
#define CF_ECDSA_VERIFY_ALG PSA_ALG_ECDSA(PSA_ALG_SHA_256)

#define CF_P256_KEY_PAIR PSA_KEY_TYPE_ECC_KEY_PAIR(PSA_ECC_FAMILY_SECP_R1)
#define CF_P256_PUBLIC_KEY PSA_KEY_TYPE_ECC_PUBLIC_KEY(PSA_ECC_FAMILY_SECP_R1)
#define CF_SHA256_BLOCK_BYTES 64
#define CF_AES_BLOCK_BYTES 16

/* Stands in for the NULL pointer of an empty input: PSA wants a valid pointer. */
static const uint8_t gxEmpty[1] = { 0 };
#define CF_BYTES(pointer) ((pointer) ? (pointer) : gxEmpty)
/* A byte string the caller may pass: NULL only when empty. CF_BYTES must never stand in for more. */
#define CF_VALID(pointer, length) ((pointer) || !(length))

/* RFC 3394 §2.2.3.1 default initial value. */
static const uint8_t gxKeyWrapIV[CF_KEY_WRAP_SEMIBLOCK] = { 0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6 };

/* ---- status, init, helpers ---- */

/* cf_status_name is in cf_random.c, which every build links (the simulator links no PSA). */

/* The statuses that mean the same whatever the operation; callers map the others themselves. */
static cf_status fromPsa(psa_status_t status)
{
	switch (status) {
	case PSA_SUCCESS:
		return CF_OK;
	case PSA_ERROR_INSUFFICIENT_MEMORY:
		return CF_ERR_NO_MEMORY;
	case PSA_ERROR_INSUFFICIENT_ENTROPY:
		return CF_ERR_UNAVAILABLE;
	default:
		return CF_ERR_INTERNAL;
	}
}

cf_status cf_crypto_init(void)
{
	return fromPsa(psa_crypto_init());
}

void cf_wipe(void* data, size_t length)
{
	if (data && length)
		mbedtls_platform_zeroize(data, length);
}

int cf_equal(const uint8_t* a, const uint8_t* b, size_t length)
{
	uint8_t difference = 0;
	size_t i;
	for (i = 0; i < length; i++)
		difference |= (uint8_t)(a[i] ^ b[i]);
	return difference == 0;
}

/* Imports `data` as a volatile key that allows `usage` with `alg` only. */
static psa_status_t importKey(psa_key_type_t type, size_t bits, psa_key_usage_t usage, psa_algorithm_t alg,
	const uint8_t* data, size_t length, psa_key_id_t* id)
{
	psa_key_attributes_t attributes = PSA_KEY_ATTRIBUTES_INIT;
	psa_status_t status;
	psa_set_key_type(&attributes, type);
	psa_set_key_bits(&attributes, bits);
	psa_set_key_usage_flags(&attributes, usage);
	psa_set_key_algorithm(&attributes, alg);
	*id = PSA_KEY_ID_NULL;
	status = psa_import_key(&attributes, data, length, id);
	psa_reset_key_attributes(&attributes);
	return status;
}

/*
 * Destroys a key made by importKey (or none: PSA_KEY_ID_NULL is a no-op) and forgets its id, so
 * that no path destroys it twice: PSA reuses key ids, and on ESP-IDF other tasks use PSA, so a
 * second destroy could take someone else's key.
 */
static void destroyKey(psa_key_id_t* id)
{
	psa_destroy_key(*id);
	*id = PSA_KEY_ID_NULL;
}

/* An import that PSA refused for its content (not for lack of memory) means a bad key. */
static cf_status fromPsaImport(psa_status_t status)
{
	if ((status == PSA_ERROR_INVALID_ARGUMENT) || (status == PSA_ERROR_NOT_SUPPORTED))
		return CF_ERR_BAD_KEY;
	return fromPsa(status);
}

/* ---- hashing and key derivation ---- */

cf_status cf_sha256(const uint8_t* data, size_t length, uint8_t digest[CF_SHA256_BYTES])
{
	size_t digest_length = 0;
	psa_status_t status;
	if (!CF_VALID(data, length) || !digest)
		return CF_ERR_BAD_INPUT;
	status = psa_crypto_init();
	if (status == PSA_SUCCESS)
		status = psa_hash_compute(PSA_ALG_SHA_256, CF_BYTES(data), length, digest, CF_SHA256_BYTES, &digest_length);
	if ((status == PSA_SUCCESS) && (digest_length != CF_SHA256_BYTES))
		status = PSA_ERROR_GENERIC_ERROR;
	return fromPsa(status);
}

/* HMAC-SHA-256 of `data` under `id`, a key imported by importHmacKey. */
static psa_status_t hmacWithKey(psa_key_id_t id, const uint8_t* data, size_t length, uint8_t mac[CF_SHA256_BYTES])
{
	size_t mac_length = 0;
	psa_status_t status =
		psa_mac_compute(id, PSA_ALG_HMAC(PSA_ALG_SHA_256), CF_BYTES(data), length, mac, CF_SHA256_BYTES, &mac_length);
	if ((status == PSA_SUCCESS) && (mac_length != CF_SHA256_BYTES))
		status = PSA_ERROR_GENERIC_ERROR;
	return status;
}

/*
 * Imports an HMAC-SHA-256 key of any length. PSA refuses an empty key and caps key sizes;
 * HMAC itself takes any key. RFC 2104 pads a key up to the block size with zeros and hashes a
 * longer one first, so the empty key is the one-byte key 0x00 and a long key is its SHA-256:
 * the same MAC, with a key PSA accepts.
 */
static psa_status_t importHmacKey(const uint8_t* key, size_t key_length, psa_key_id_t* id)
{
	uint8_t hashed[CF_SHA256_BYTES];
	size_t hashed_length = 0;
	psa_status_t status = PSA_SUCCESS;
	*id = PSA_KEY_ID_NULL;
	if (key_length > CF_SHA256_BLOCK_BYTES) {
		status = psa_hash_compute(PSA_ALG_SHA_256, key, key_length, hashed, sizeof(hashed), &hashed_length);
		key = hashed;
		key_length = hashed_length;
	}
	else if (key_length == 0) {
		key = gxEmpty;
		key_length = 1;
	}
	if (status == PSA_SUCCESS)
		status = importKey(PSA_KEY_TYPE_HMAC, 0, PSA_KEY_USAGE_SIGN_MESSAGE, PSA_ALG_HMAC(PSA_ALG_SHA_256), key,
			key_length, id);
	cf_wipe(hashed, sizeof(hashed));
	return status;
}

cf_status cf_hmac_sha256(const uint8_t* key, size_t key_length, const uint8_t* data, size_t length,
	uint8_t mac[CF_SHA256_BYTES])
{
	psa_key_id_t id = PSA_KEY_ID_NULL;
	psa_status_t status;
	if (!CF_VALID(key, key_length) || !CF_VALID(data, length) || !mac)
		return CF_ERR_BAD_INPUT;
	status = psa_crypto_init();
	if (status == PSA_SUCCESS)
		status = importHmacKey(key, key_length, &id);
	if (status == PSA_SUCCESS)
		status = hmacWithKey(id, data, length, mac);
	destroyKey(&id);
	if (status != PSA_SUCCESS)
		cf_wipe(mac, CF_SHA256_BYTES);
	return fromPsa(status);
}

/* Room on the stack for T(i-1) || info || i in HKDF-Expand; longer info takes the heap. */
#define CF_HKDF_STACK_INFO 128

cf_status cf_hkdf_sha256(const uint8_t* ikm, size_t ikm_length, const uint8_t* salt, size_t salt_length,
	const uint8_t* info, size_t info_length, uint8_t* out, size_t out_length)
{
	/*
	 * RFC 5869 on one-shot HMAC (psa_mac_compute). PSA's own HKDF is a multi-part operation
	 * object whose size depends on the configuration the library was built with; a Moddable
	 * SDK build compiles this file outside ESP-IDF's CMake, without that configuration, so this
	 * file uses no multi-part operation at all.
	 */
	uint8_t prk[CF_SHA256_BYTES], t[CF_SHA256_BYTES];
	uint8_t stack_input[CF_SHA256_BYTES + CF_HKDF_STACK_INFO + 1];
	uint8_t* input = stack_input;
	size_t input_capacity = CF_SHA256_BYTES + info_length + 1, done = 0, t_length = 0;
	psa_key_id_t id = PSA_KEY_ID_NULL;
	psa_status_t status;
	uint8_t counter = 0;
	if ((out_length < 1) || (out_length > CF_HKDF_SHA256_MAX_BYTES) || !out || !CF_VALID(ikm, ikm_length) ||
		!CF_VALID(salt, salt_length) || !CF_VALID(info, info_length))
		return CF_ERR_BAD_INPUT;
	if (info_length > CF_HKDF_STACK_INFO) {
		if (info_length > SIZE_MAX - CF_SHA256_BYTES - 1)
			return CF_ERR_BAD_INPUT;
		input = malloc(input_capacity);
		if (!input)
			return CF_ERR_NO_MEMORY;
	}
	status = psa_crypto_init();
	/* Extract: PRK = HMAC(salt, IKM). No salt is HashLen zeros, which HMAC pads like the empty key. */
	if (status == PSA_SUCCESS)
		status = importHmacKey(salt, salt_length, &id);
	if (status == PSA_SUCCESS)
		status = hmacWithKey(id, ikm, ikm_length, prk);
	destroyKey(&id);
	/* Expand: T(i) = HMAC(PRK, T(i-1) || info || i), OKM = the first out_length bytes of T(1) || T(2) || ... */
	if (status == PSA_SUCCESS)
		status = importHmacKey(prk, sizeof(prk), &id);
	while ((status == PSA_SUCCESS) && (done < out_length)) {
		size_t take = out_length - done;
		if (t_length)
			memcpy(input, t, t_length);
		if (info_length)
			memcpy(input + t_length, info, info_length);
		input[t_length + info_length] = ++counter;
		status = hmacWithKey(id, input, t_length + info_length + 1, t);
		t_length = sizeof(t);
		if (take > sizeof(t))
			take = sizeof(t);
		if (status == PSA_SUCCESS)
			memcpy(out + done, t, take);
		done += take;
	}
	destroyKey(&id);
	cf_wipe(prk, sizeof(prk));
	cf_wipe(t, sizeof(t));
	cf_wipe(input, (input == stack_input) ? sizeof(stack_input) : input_capacity);
	if (input != stack_input)
		free(input);
	if (status != PSA_SUCCESS)
		cf_wipe(out, out_length);
	return fromPsa(status);
}

/* ---- AES-128-GCM ---- */

cf_status cf_aes_gcm_encrypt(const uint8_t key[CF_AES128_KEY_BYTES], const uint8_t iv[CF_GCM_IV_BYTES],
	const uint8_t* plaintext, size_t length, const uint8_t* aad, size_t aad_length, uint8_t* out)
{
	psa_key_id_t id = PSA_KEY_ID_NULL;
	size_t out_length = 0;
	psa_status_t status;
	/* `out` always receives the tag; length + 16 must not wrap around. */
	if (!key || !iv || !out || !CF_VALID(plaintext, length) || !CF_VALID(aad, aad_length) ||
		(length > SIZE_MAX - CF_GCM_TAG_BYTES))
		return CF_ERR_BAD_INPUT;
	status = psa_crypto_init();
	if (status == PSA_SUCCESS)
		status = importKey(PSA_KEY_TYPE_AES, 128, PSA_KEY_USAGE_ENCRYPT, PSA_ALG_GCM, key, CF_AES128_KEY_BYTES, &id);
	if (status == PSA_SUCCESS)
		status = psa_aead_encrypt(id, PSA_ALG_GCM, iv, CF_GCM_IV_BYTES, CF_BYTES(aad), aad_length,
			CF_BYTES(plaintext), length, out, length + CF_GCM_TAG_BYTES, &out_length);
	if ((status == PSA_SUCCESS) && (out_length != length + CF_GCM_TAG_BYTES))
		status = PSA_ERROR_GENERIC_ERROR;
	destroyKey(&id);
	if (status != PSA_SUCCESS)
		cf_wipe(out, length + CF_GCM_TAG_BYTES);
	return fromPsa(status);
}

cf_status cf_aes_gcm_decrypt(const uint8_t key[CF_AES128_KEY_BYTES], const uint8_t iv[CF_GCM_IV_BYTES],
	const uint8_t* sealed, size_t sealed_length, const uint8_t* aad, size_t aad_length, uint8_t* out)
{
	psa_key_id_t id = PSA_KEY_ID_NULL;
	uint8_t none[1]; /* the output of an empty plaintext, when `out` is NULL */
	size_t out_length = 0;
	psa_status_t status;
	if (!key || !iv || !CF_VALID(sealed, sealed_length) || !CF_VALID(aad, aad_length))
		return CF_ERR_BAD_INPUT;
	if (sealed_length < CF_GCM_TAG_BYTES)
		return CF_ERR_DECRYPT_FAILED; /* too short to carry a tag: cannot be authentic */
	if (!out && (sealed_length > CF_GCM_TAG_BYTES))
		return CF_ERR_BAD_INPUT; /* only an empty plaintext may go to NULL (`none`, 0 bytes) */
	status = psa_crypto_init();
	if (status == PSA_SUCCESS)
		status = importKey(PSA_KEY_TYPE_AES, 128, PSA_KEY_USAGE_DECRYPT, PSA_ALG_GCM, key, CF_AES128_KEY_BYTES, &id);
	if (status == PSA_SUCCESS)
		status = psa_aead_decrypt(id, PSA_ALG_GCM, iv, CF_GCM_IV_BYTES, CF_BYTES(aad), aad_length, sealed,
			sealed_length, out ? out : none, sealed_length - CF_GCM_TAG_BYTES, &out_length);
	if ((status == PSA_SUCCESS) && (out_length != sealed_length - CF_GCM_TAG_BYTES))
		status = PSA_ERROR_GENERIC_ERROR;
	destroyKey(&id);
	if (status != PSA_SUCCESS)
		cf_wipe(out, sealed_length - CF_GCM_TAG_BYTES);
	if (status == PSA_ERROR_INVALID_SIGNATURE)
		return CF_ERR_DECRYPT_FAILED;
	return fromPsa(status);
}

/* ---- RFC 3394 AES key wrap on single-block AES ---- */

/* The KEK in PSA for single-block AES, encrypting (wrap) or decrypting (unwrap). */
static psa_status_t importKek(const uint8_t kek[CF_AES128_KEY_BYTES], int encrypt, psa_key_id_t* id)
{
	psa_status_t status = psa_crypto_init();
	if (status == PSA_SUCCESS)
		status = importKey(PSA_KEY_TYPE_AES, 128, encrypt ? PSA_KEY_USAGE_ENCRYPT : PSA_KEY_USAGE_DECRYPT,
			PSA_ALG_ECB_NO_PADDING, kek, CF_AES128_KEY_BYTES, id);
	return status;
}

/* One AES block, one-shot (ECB has no IV): no multi-part operation object, as in cf_hkdf_sha256. */
static psa_status_t aesBlock(psa_key_id_t id, int encrypt, const uint8_t in[CF_AES_BLOCK_BYTES],
	uint8_t out[CF_AES_BLOCK_BYTES])
{
	size_t out_length = 0;
	psa_status_t status = encrypt
		? psa_cipher_encrypt(id, PSA_ALG_ECB_NO_PADDING, in, CF_AES_BLOCK_BYTES, out, CF_AES_BLOCK_BYTES, &out_length)
		: psa_cipher_decrypt(id, PSA_ALG_ECB_NO_PADDING, in, CF_AES_BLOCK_BYTES, out, CF_AES_BLOCK_BYTES, &out_length);
	if ((status == PSA_SUCCESS) && (out_length != CF_AES_BLOCK_BYTES))
		status = PSA_ERROR_GENERIC_ERROR;
	return status;
}

/* A ^= t, with t as a 64-bit big-endian integer (RFC 3394 §2.2.1). */
static void xorCounter(uint8_t a[CF_KEY_WRAP_SEMIBLOCK], uint64_t t)
{
	int i;
	for (i = CF_KEY_WRAP_SEMIBLOCK - 1; i >= 0; i--, t >>= 8)
		a[i] ^= (uint8_t)t;
}

cf_status cf_aes_key_wrap(const uint8_t kek[CF_AES128_KEY_BYTES], const uint8_t* key_data, size_t length,
	uint8_t* out)
{
	psa_key_id_t id = PSA_KEY_ID_NULL;
	uint8_t block[CF_AES_BLOCK_BYTES], result[CF_AES_BLOCK_BYTES];
	uint8_t* a = out;                         /* A: the first semiblock of the output */
	uint8_t* r = out + CF_KEY_WRAP_SEMIBLOCK; /* R[1..n]: the rest */
	size_t n = length / CF_KEY_WRAP_SEMIBLOCK, i;
	unsigned j;
	psa_status_t status;
	if ((length < 2 * CF_KEY_WRAP_SEMIBLOCK) || (length % CF_KEY_WRAP_SEMIBLOCK) ||
		(length > SIZE_MAX - CF_KEY_WRAP_SEMIBLOCK) || !kek || !key_data || !out)
		return CF_ERR_BAD_INPUT;
	memcpy(a, gxKeyWrapIV, CF_KEY_WRAP_SEMIBLOCK);
	memmove(r, key_data, length);
	status = importKek(kek, 1, &id);
	for (j = 0; (status == PSA_SUCCESS) && (j < 6); j++) {
		for (i = 0; (status == PSA_SUCCESS) && (i < n); i++) {
			uint8_t* ri = r + i * CF_KEY_WRAP_SEMIBLOCK;
			/* B = AES(K, A | R[i]); A = MSB(64, B) ^ t; R[i] = LSB(64, B), with t = n*j + i (1-based i) */
			memcpy(block, a, CF_KEY_WRAP_SEMIBLOCK);
			memcpy(block + CF_KEY_WRAP_SEMIBLOCK, ri, CF_KEY_WRAP_SEMIBLOCK);
			status = aesBlock(id, 1, block, result);
			memcpy(a, result, CF_KEY_WRAP_SEMIBLOCK);
			xorCounter(a, (uint64_t)n * j + i + 1);
			memcpy(ri, result + CF_KEY_WRAP_SEMIBLOCK, CF_KEY_WRAP_SEMIBLOCK);
		}
	}
	destroyKey(&id);
	cf_wipe(block, sizeof(block));
	cf_wipe(result, sizeof(result));
	if (status != PSA_SUCCESS)
		cf_wipe(out, length + CF_KEY_WRAP_SEMIBLOCK);
	return fromPsa(status);
}

cf_status cf_aes_key_unwrap(const uint8_t kek[CF_AES128_KEY_BYTES], const uint8_t* wrapped, size_t length,
	uint8_t* out)
{
	psa_key_id_t id = PSA_KEY_ID_NULL;
	uint8_t a[CF_KEY_WRAP_SEMIBLOCK], block[CF_AES_BLOCK_BYTES], result[CF_AES_BLOCK_BYTES];
	uint8_t* r = out; /* R[1..n] */
	size_t n = length / CF_KEY_WRAP_SEMIBLOCK - 1, i;
	int j;
	psa_status_t status;
	if ((length < 3 * CF_KEY_WRAP_SEMIBLOCK) || (length % CF_KEY_WRAP_SEMIBLOCK) || !kek || !wrapped || !out)
		return CF_ERR_BAD_INPUT;
	memcpy(a, wrapped, CF_KEY_WRAP_SEMIBLOCK);
	memmove(r, wrapped + CF_KEY_WRAP_SEMIBLOCK, length - CF_KEY_WRAP_SEMIBLOCK);
	status = importKek(kek, 0, &id);
	for (j = 5; (status == PSA_SUCCESS) && (j >= 0); j--) {
		for (i = n; (status == PSA_SUCCESS) && (i > 0); i--) {
			uint8_t* ri = r + (i - 1) * CF_KEY_WRAP_SEMIBLOCK;
			/* B = AES-1(K, (A ^ t) | R[i]); A = MSB(64, B); R[i] = LSB(64, B), with t = n*j + i */
			memcpy(block, a, CF_KEY_WRAP_SEMIBLOCK);
			xorCounter(block, (uint64_t)n * (unsigned)j + i);
			memcpy(block + CF_KEY_WRAP_SEMIBLOCK, ri, CF_KEY_WRAP_SEMIBLOCK);
			status = aesBlock(id, 0, block, result);
			memcpy(a, result, CF_KEY_WRAP_SEMIBLOCK);
			memcpy(ri, result + CF_KEY_WRAP_SEMIBLOCK, CF_KEY_WRAP_SEMIBLOCK);
		}
	}
	destroyKey(&id);
	cf_wipe(block, sizeof(block));
	cf_wipe(result, sizeof(result));
	if ((status == PSA_SUCCESS) && !cf_equal(a, gxKeyWrapIV, CF_KEY_WRAP_SEMIBLOCK)) {
		cf_wipe(a, sizeof(a));
		cf_wipe(out, length - CF_KEY_WRAP_SEMIBLOCK);
		return CF_ERR_DECRYPT_FAILED;
	}
	cf_wipe(a, sizeof(a));
	if (status != PSA_SUCCESS)
		cf_wipe(out, length - CF_KEY_WRAP_SEMIBLOCK);
	return fromPsa(status);
}

/* ---- P-256 ---- */

void cf_p256_key_wipe(cf_p256_key* key)
{
	if (key)
		cf_wipe(key, sizeof(*key));
}

/* Reads the public key of the key pair `id` into key->public_key. */
static psa_status_t exportPublicKey(psa_key_id_t id, cf_p256_key* key)
{
	size_t length = 0;
	psa_status_t status = psa_export_public_key(id, key->public_key, sizeof(key->public_key), &length);
	if ((status == PSA_SUCCESS) && ((length != CF_P256_PUBLIC_KEY_BYTES) || (key->public_key[0] != 0x04)))
		status = PSA_ERROR_GENERIC_ERROR;
	return status;
}

cf_status cf_p256_generate(cf_p256_key* key)
{
	/* Exportable for this one moment, so the scalar can be kept in `key` (see cf_p256_key). */
	psa_key_attributes_t attributes = PSA_KEY_ATTRIBUTES_INIT;
	psa_key_id_t id = PSA_KEY_ID_NULL;
	size_t length = 0;
	psa_status_t status;
	if (!key)
		return CF_ERR_BAD_INPUT;
	status = psa_crypto_init();
	psa_set_key_type(&attributes, CF_P256_KEY_PAIR);
	psa_set_key_bits(&attributes, 256);
	psa_set_key_usage_flags(&attributes, PSA_KEY_USAGE_EXPORT);
	if (status == PSA_SUCCESS)
		status = psa_generate_key(&attributes, &id);
	psa_reset_key_attributes(&attributes);
	if (status == PSA_SUCCESS)
		status = psa_export_key(id, key->d, sizeof(key->d), &length);
	if ((status == PSA_SUCCESS) && (length != CF_P256_SCALAR_BYTES))
		status = PSA_ERROR_GENERIC_ERROR;
	if (status == PSA_SUCCESS)
		status = exportPublicKey(id, key);
	destroyKey(&id);
	if (status != PSA_SUCCESS)
		cf_p256_key_wipe(key);
	return fromPsa(status);
}

cf_status cf_p256_import(cf_p256_key* key, const uint8_t d[CF_P256_SCALAR_BYTES])
{
	/* No usage at all: PSA checks 1 <= d < n and computes the public key, nothing else. */
	psa_key_id_t id = PSA_KEY_ID_NULL;
	psa_status_t status;
	cf_status result;
	if (!key || !d)
		return CF_ERR_BAD_INPUT;
	status = psa_crypto_init();
	if (status != PSA_SUCCESS)
		return fromPsa(status);
	status = importKey(CF_P256_KEY_PAIR, 256, 0, 0, d, CF_P256_SCALAR_BYTES, &id);
	if (status != PSA_SUCCESS)
		return fromPsaImport(status);
	memmove(key->d, d, CF_P256_SCALAR_BYTES);
	status = exportPublicKey(id, key);
	destroyKey(&id);
	result = fromPsa(status);
	if (result != CF_OK)
		cf_p256_key_wipe(key);
	return result;
}

/* The order n of P-256 minus one, as 32-bit limbs, least significant first (one spare limb). */
static const uint32_t gxP256OrderMinusOne[9] = {
	0xFC632550, 0xF3B9CAC2, 0xA7179E84, 0xBCE6FAAD, 0xFFFFFFFF, 0xFFFFFFFF, 0x00000000, 0xFFFFFFFF, 0,
};

void cf_p256_scalar_from_seed(const uint8_t seed[CF_P256_SEED_BYTES], uint8_t d[CF_P256_SCALAR_BYTES])
{
	/*
	 * c mod (n - 1), one bit at a time from the most significant: r = 2r + bit, then subtract
	 * m = n - 1 when r >= m (r < m before doubling, so once is enough). The subtraction is
	 * always computed and selected with a mask, so time does not depend on the seed.
	 */
	uint32_t r[9] = { 0 }, t[9];
	uint64_t carry, borrow, difference;
	uint32_t keep;
	size_t k;
	int bit, i;
	for (k = 0; k < CF_P256_SEED_BYTES; k++) {
		for (bit = 7; bit >= 0; bit--) {
			carry = (seed[k] >> bit) & 1;
			for (i = 0; i < 9; i++) {
				uint64_t doubled = ((uint64_t)r[i] << 1) | carry;
				r[i] = (uint32_t)doubled;
				carry = doubled >> 32;
			}
			borrow = 0;
			for (i = 0; i < 9; i++) {
				difference = (uint64_t)r[i] - gxP256OrderMinusOne[i] - borrow;
				t[i] = (uint32_t)difference;
				borrow = difference >> 63;
			}
			keep = (uint32_t)0 - (uint32_t)borrow; /* all ones when r < m: keep r */
			for (i = 0; i < 9; i++)
				r[i] = (r[i] & keep) | (t[i] & ~keep);
		}
	}
	/* d = r + 1 <= n - 1: no carry out of 256 bits. */
	carry = 1;
	for (i = 0; i < 8; i++) {
		uint64_t sum = (uint64_t)r[i] + carry;
		r[i] = (uint32_t)sum;
		carry = sum >> 32;
	}
	for (i = 0; i < 8; i++) {
		d[31 - 4 * i] = (uint8_t)r[i];
		d[30 - 4 * i] = (uint8_t)(r[i] >> 8);
		d[29 - 4 * i] = (uint8_t)(r[i] >> 16);
		d[28 - 4 * i] = (uint8_t)(r[i] >> 24);
	}
	cf_wipe(r, sizeof(r));
	cf_wipe(t, sizeof(t));
}

/* The order n of P-256, big-endian. */
static const uint8_t gxP256Order[CF_P256_SCALAR_BYTES] = {
	0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
	0xBC, 0xE6, 0xFA, 0xAD, 0xA7, 0x17, 0x9E, 0x84, 0xF3, 0xB9, 0xCA, 0xC2, 0xFC, 0x63, 0x25, 0x51,
};

/* 1 <= x < n for a 32-byte big-endian x (a signature's r or s: public, so not constant time). */
static int p256ScalarInRange(const uint8_t x[CF_P256_SCALAR_BYTES])
{
	size_t i;
	uint8_t any = 0;
	for (i = 0; i < CF_P256_SCALAR_BYTES; i++)
		any |= x[i];
	return any && (memcmp(x, gxP256Order, CF_P256_SCALAR_BYTES) < 0);
}

cf_status cf_ecdsa_p256_sign(const cf_p256_key* key, const uint8_t* message, size_t length,
	uint8_t signature[CF_P256_SIGNATURE_BYTES])
{
	psa_key_id_t id = PSA_KEY_ID_NULL;
	size_t signature_length = 0;
	psa_status_t status;
	if (!key || !CF_VALID(message, length) || !signature)
		return CF_ERR_BAD_INPUT;
	status = psa_crypto_init();
	if (status == PSA_SUCCESS)
		status = importKey(CF_P256_KEY_PAIR, 256, PSA_KEY_USAGE_SIGN_MESSAGE, CF_ECDSA_SIGN_ALG, key->d,
			CF_P256_SCALAR_BYTES, &id);
	if (status == PSA_SUCCESS)
		status = psa_sign_message(id, CF_ECDSA_SIGN_ALG, CF_BYTES(message), length, signature,
			CF_P256_SIGNATURE_BYTES, &signature_length);
	if ((status == PSA_SUCCESS) && (signature_length != CF_P256_SIGNATURE_BYTES))
		status = PSA_ERROR_GENERIC_ERROR;
	destroyKey(&id);
	if (status != PSA_SUCCESS)
		cf_wipe(signature, CF_P256_SIGNATURE_BYTES);
	return fromPsa(status);
}

cf_status cf_ecdsa_p256_verify(const uint8_t* public_key, size_t public_key_length, const uint8_t* message,
	size_t length, const uint8_t* signature, size_t signature_length)
{
	psa_key_id_t id = PSA_KEY_ID_NULL;
	psa_status_t status;
	if (!CF_VALID(public_key, public_key_length) || !CF_VALID(message, length) ||
		!CF_VALID(signature, signature_length))
		return CF_ERR_BAD_INPUT;
	if ((public_key_length != CF_P256_PUBLIC_KEY_BYTES) || (public_key[0] != 0x04) ||
		(signature_length != CF_P256_SIGNATURE_BYTES))
		return CF_ERR_BAD_SIGNATURE;
	/*
	 * 1 <= r, s < n (SEC 1 4.1.4 step 1), checked here: ESP-IDF 6 can verify on the ECDSA
	 * peripheral (ESP32-H2 by default), and that PSA driver does not check it.
	 */
	if (!p256ScalarInRange(signature) || !p256ScalarInRange(signature + CF_P256_SCALAR_BYTES))
		return CF_ERR_BAD_SIGNATURE;
	status = psa_crypto_init();
	if (status != PSA_SUCCESS)
		return fromPsa(status);
	/* PSA checks that the point is on the curve: a key it refuses verifies nothing. */
	status = importKey(CF_P256_PUBLIC_KEY, 256, PSA_KEY_USAGE_VERIFY_MESSAGE, CF_ECDSA_VERIFY_ALG, public_key,
		public_key_length, &id);
	if (status != PSA_SUCCESS)
		return (fromPsaImport(status) == CF_ERR_BAD_KEY) ? CF_ERR_BAD_SIGNATURE : fromPsa(status);
	status = psa_verify_message(id, CF_ECDSA_VERIFY_ALG, CF_BYTES(message), length, signature, signature_length);
	destroyKey(&id);
	if (status == PSA_ERROR_INVALID_SIGNATURE)
		return CF_ERR_BAD_SIGNATURE;
	return fromPsa(status);
}

cf_status cf_ecdh_p256(const cf_p256_key* key, const uint8_t* peer, size_t peer_length,
	uint8_t shared[CF_P256_SCALAR_BYTES])
{
	psa_key_id_t id = PSA_KEY_ID_NULL;
	size_t shared_length = 0;
	psa_status_t status;
	if (!key || !CF_VALID(peer, peer_length) || !shared)
		return CF_ERR_BAD_INPUT;
	if ((peer_length != CF_P256_PUBLIC_KEY_BYTES) || (peer[0] != 0x04))
		return CF_ERR_BAD_KEY; /* only uncompressed points; PSA would refuse the rest anyway */
	status = psa_crypto_init();
	if (status == PSA_SUCCESS)
		status = importKey(CF_P256_KEY_PAIR, 256, PSA_KEY_USAGE_DERIVE, PSA_ALG_ECDH, key->d, CF_P256_SCALAR_BYTES,
			&id);
	/* PSA decodes the peer point and refuses it unless it is on the curve. */
	if (status == PSA_SUCCESS)
		status = psa_raw_key_agreement(PSA_ALG_ECDH, id, peer, peer_length, shared, CF_P256_SCALAR_BYTES,
			&shared_length);
	if ((status == PSA_SUCCESS) && (shared_length != CF_P256_SCALAR_BYTES))
		status = PSA_ERROR_GENERIC_ERROR;
	destroyKey(&id);
	if (status == PSA_SUCCESS)
		return CF_OK;
	cf_wipe(shared, CF_P256_SCALAR_BYTES);
	return fromPsaImport(status);
}
