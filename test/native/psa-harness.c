/*
 * psa-harness: native/crypto/cf_crypto.c over a PSA Crypto that it watches and breaks on purpose.
 * Built and run by test/native/psa-harness.test.ts, which links every PSA function cf_crypto.c
 * calls through `-Wl,--wrap=NAME` to the __wrap_NAME functions here (the real ones stay reachable
 * as __real_NAME). Prints one `FAIL …` line per problem and last "N passed, N failed".
 *
 *   psa-harness faults|ecdsa-ranges|sizes
 *
 * What it checks:
 * - Faults: every operation of the C API runs once with the k-th PSA call failing, for every k
 *   the operation reaches. A failure must be reported (never CF_OK), every key imported into PSA
 *   must be destroyed exactly once (a key id destroyed twice may by then name another task's key:
 *   ids are reused), and the outputs must hold no secret (all zero: untouched, or wiped). A failing
 *   PSA call first scribbles over its output, as a half-done operation would.
 * - ECDSA ranges: cf_ecdsa_p256_verify must refuse r or s equal to 0 or >= n itself. ESP-IDF 6's
 *   ECDSA peripheral driver does not check them, so PSA must never be asked to verify them.
 * - Sizes and NULL pointers: a NULL output with a non-empty input, and lengths whose output size
 *   overflows size_t, are CF_ERR_BAD_INPUT before PSA is called. The wrapped GCM calls refuse
 *   (and report) a NULL output or an output size smaller than the input, instead of running.
 */
#include <psa/crypto.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cf_crypto.h"

#define MAX_LIVE_KEYS 16
#define MAX_FAILURES_SHOWN 60

static unsigned gxPassed = 0, gxFailed = 0, gxFailuresShown = 0;

static void check(int ok, const char* where, const char* why)
{
	if (ok) {
		gxPassed++;
		return;
	}
	gxFailed++;
	if (gxFailuresShown++ < MAX_FAILURES_SHOWN)
		printf("FAIL %s: %s\n", where, why);
}

/* ---- the wrapped PSA ---- */

static unsigned gxCalls = 0;    /* PSA operations (not destroy) since the last reset */
static unsigned gxFailAt = 0;   /* the operation that fails, 1-based; 0: none */
static unsigned gxFaults = 0;   /* operations made to fail */
static char gxProblems[512];    /* misuse the wrappers saw since the last reset */
static psa_key_id_t gxLive[MAX_LIVE_KEYS];
static unsigned gxLiveCount = 0;

static void problem(const char* text)
{
	size_t used = strlen(gxProblems);
	snprintf(gxProblems + used, sizeof(gxProblems) - used, "%s%s", used ? "; " : "", text);
}

static void resetWatch(unsigned failAt)
{
	gxCalls = 0;
	gxFailAt = failAt;
	gxFaults = 0;
	gxProblems[0] = 0;
}

/* Counts an operation; true when this one must fail, after scribbling over its output. */
static int injectFault(uint8_t* output, size_t size)
{
	if (++gxCalls != gxFailAt)
		return 0;
	gxFaults++;
	if (output && size)
		memset(output, 0xA5, size);
	return 1;
}
#define CF_FAULT PSA_ERROR_HARDWARE_FAILURE

static void keyMade(psa_key_id_t id)
{
	if (gxLiveCount < MAX_LIVE_KEYS)
		gxLive[gxLiveCount++] = id;
	else
		problem("more than 16 keys live at once");
}

psa_status_t __real_psa_import_key(const psa_key_attributes_t* attributes, const uint8_t* data, size_t length,
	psa_key_id_t* id);
psa_status_t __wrap_psa_import_key(const psa_key_attributes_t* attributes, const uint8_t* data, size_t length,
	psa_key_id_t* id)
{
	psa_status_t status;
	if (injectFault(NULL, 0)) {
		*id = PSA_KEY_ID_NULL;
		return CF_FAULT;
	}
	status = __real_psa_import_key(attributes, data, length, id);
	if (status == PSA_SUCCESS)
		keyMade(*id);
	return status;
}

psa_status_t __real_psa_generate_key(const psa_key_attributes_t* attributes, psa_key_id_t* id);
psa_status_t __wrap_psa_generate_key(const psa_key_attributes_t* attributes, psa_key_id_t* id)
{
	psa_status_t status;
	if (injectFault(NULL, 0)) {
		*id = PSA_KEY_ID_NULL;
		return CF_FAULT;
	}
	status = __real_psa_generate_key(attributes, id);
	if (status == PSA_SUCCESS)
		keyMade(*id);
	return status;
}

psa_status_t __real_psa_destroy_key(psa_key_id_t id);
psa_status_t __wrap_psa_destroy_key(psa_key_id_t id)
{
	unsigned i;
	char text[96];
	if (id == PSA_KEY_ID_NULL)
		return PSA_SUCCESS; /* allowed, and a no-op */
	for (i = 0; i < gxLiveCount; i++) {
		if (gxLive[i] == id) {
			gxLive[i] = gxLive[--gxLiveCount];
			return __real_psa_destroy_key(id);
		}
	}
	snprintf(text, sizeof(text), "destroyed key id %lu, which is not live (destroyed twice?)", (unsigned long)id);
	problem(text);
	return PSA_ERROR_INVALID_HANDLE;
}

psa_status_t __real_psa_hash_compute(psa_algorithm_t alg, const uint8_t* input, size_t length, uint8_t* hash,
	size_t size, size_t* hash_length);
psa_status_t __wrap_psa_hash_compute(psa_algorithm_t alg, const uint8_t* input, size_t length, uint8_t* hash,
	size_t size, size_t* hash_length)
{
	if (injectFault(hash, size))
		return CF_FAULT;
	return __real_psa_hash_compute(alg, input, length, hash, size, hash_length);
}

psa_status_t __real_psa_mac_compute(psa_key_id_t id, psa_algorithm_t alg, const uint8_t* input, size_t length,
	uint8_t* mac, size_t size, size_t* mac_length);
psa_status_t __wrap_psa_mac_compute(psa_key_id_t id, psa_algorithm_t alg, const uint8_t* input, size_t length,
	uint8_t* mac, size_t size, size_t* mac_length)
{
	if (injectFault(mac, size))
		return CF_FAULT;
	return __real_psa_mac_compute(id, alg, input, length, mac, size, mac_length);
}

/* A GCM call that would write to NULL or past an output size that wrapped: refused here, reported. */
static int badAeadOutput(const char* name, size_t input_length, int encrypt, uint8_t* output, size_t size)
{
	char text[160];
	size_t expected = encrypt ? input_length + CF_GCM_TAG_BYTES : input_length - CF_GCM_TAG_BYTES;
	if (!output && size) {
		snprintf(text, sizeof(text), "%s was asked to write %lu bytes to NULL", name, (unsigned long)size);
		problem(text);
		return 1;
	}
	if ((encrypt && (expected < input_length)) || (size < expected)) {
		snprintf(text, sizeof(text), "%s was given an output of %lu bytes for %lu bytes of input", name,
			(unsigned long)size, (unsigned long)input_length);
		problem(text);
		return 1;
	}
	return 0;
}

psa_status_t __real_psa_aead_encrypt(psa_key_id_t id, psa_algorithm_t alg, const uint8_t* nonce,
	size_t nonce_length, const uint8_t* aad, size_t aad_length, const uint8_t* plaintext, size_t plaintext_length,
	uint8_t* ciphertext, size_t size, size_t* ciphertext_length);
psa_status_t __wrap_psa_aead_encrypt(psa_key_id_t id, psa_algorithm_t alg, const uint8_t* nonce,
	size_t nonce_length, const uint8_t* aad, size_t aad_length, const uint8_t* plaintext, size_t plaintext_length,
	uint8_t* ciphertext, size_t size, size_t* ciphertext_length)
{
	if (badAeadOutput("psa_aead_encrypt", plaintext_length, 1, ciphertext, size))
		return PSA_ERROR_BUFFER_TOO_SMALL;
	if (injectFault(ciphertext, size))
		return CF_FAULT;
	return __real_psa_aead_encrypt(id, alg, nonce, nonce_length, aad, aad_length, plaintext, plaintext_length,
		ciphertext, size, ciphertext_length);
}

psa_status_t __real_psa_aead_decrypt(psa_key_id_t id, psa_algorithm_t alg, const uint8_t* nonce,
	size_t nonce_length, const uint8_t* aad, size_t aad_length, const uint8_t* ciphertext, size_t ciphertext_length,
	uint8_t* plaintext, size_t size, size_t* plaintext_length);
psa_status_t __wrap_psa_aead_decrypt(psa_key_id_t id, psa_algorithm_t alg, const uint8_t* nonce,
	size_t nonce_length, const uint8_t* aad, size_t aad_length, const uint8_t* ciphertext, size_t ciphertext_length,
	uint8_t* plaintext, size_t size, size_t* plaintext_length)
{
	if (badAeadOutput("psa_aead_decrypt", ciphertext_length, 0, plaintext, size))
		return PSA_ERROR_BUFFER_TOO_SMALL;
	if (injectFault(plaintext, size))
		return CF_FAULT;
	return __real_psa_aead_decrypt(id, alg, nonce, nonce_length, aad, aad_length, ciphertext, ciphertext_length,
		plaintext, size, plaintext_length);
}

psa_status_t __real_psa_cipher_encrypt(psa_key_id_t id, psa_algorithm_t alg, const uint8_t* input, size_t length,
	uint8_t* output, size_t size, size_t* output_length);
psa_status_t __wrap_psa_cipher_encrypt(psa_key_id_t id, psa_algorithm_t alg, const uint8_t* input, size_t length,
	uint8_t* output, size_t size, size_t* output_length)
{
	if (injectFault(output, size))
		return CF_FAULT;
	return __real_psa_cipher_encrypt(id, alg, input, length, output, size, output_length);
}

psa_status_t __real_psa_cipher_decrypt(psa_key_id_t id, psa_algorithm_t alg, const uint8_t* input, size_t length,
	uint8_t* output, size_t size, size_t* output_length);
psa_status_t __wrap_psa_cipher_decrypt(psa_key_id_t id, psa_algorithm_t alg, const uint8_t* input, size_t length,
	uint8_t* output, size_t size, size_t* output_length)
{
	if (injectFault(output, size))
		return CF_FAULT;
	return __real_psa_cipher_decrypt(id, alg, input, length, output, size, output_length);
}

psa_status_t __real_psa_export_key(psa_key_id_t id, uint8_t* data, size_t size, size_t* length);
psa_status_t __wrap_psa_export_key(psa_key_id_t id, uint8_t* data, size_t size, size_t* length)
{
	if (injectFault(data, size))
		return CF_FAULT;
	return __real_psa_export_key(id, data, size, length);
}

psa_status_t __real_psa_export_public_key(psa_key_id_t id, uint8_t* data, size_t size, size_t* length);
psa_status_t __wrap_psa_export_public_key(psa_key_id_t id, uint8_t* data, size_t size, size_t* length)
{
	if (injectFault(data, size))
		return CF_FAULT;
	return __real_psa_export_public_key(id, data, size, length);
}

psa_status_t __real_psa_sign_message(psa_key_id_t id, psa_algorithm_t alg, const uint8_t* input, size_t length,
	uint8_t* signature, size_t size, size_t* signature_length);
psa_status_t __wrap_psa_sign_message(psa_key_id_t id, psa_algorithm_t alg, const uint8_t* input, size_t length,
	uint8_t* signature, size_t size, size_t* signature_length)
{
	if (injectFault(signature, size))
		return CF_FAULT;
	return __real_psa_sign_message(id, alg, input, length, signature, size, signature_length);
}

/* The order n of P-256, big-endian. */
static const uint8_t gxOrder[32] = {
	0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
	0xBC, 0xE6, 0xFA, 0xAD, 0xA7, 0x17, 0x9E, 0x84, 0xF3, 0xB9, 0xCA, 0xC2, 0xFC, 0x63, 0x25, 0x51,
};

/* 1 <= x < n, for a 32-byte big-endian x. */
static int inRange(const uint8_t* x)
{
	static const uint8_t zero[32] = { 0 };
	return memcmp(x, zero, 32) && (memcmp(x, gxOrder, 32) < 0);
}

static unsigned gxOutOfRangeVerifies = 0;

psa_status_t __real_psa_verify_message(psa_key_id_t id, psa_algorithm_t alg, const uint8_t* input, size_t length,
	const uint8_t* signature, size_t signature_length);
psa_status_t __wrap_psa_verify_message(psa_key_id_t id, psa_algorithm_t alg, const uint8_t* input, size_t length,
	const uint8_t* signature, size_t signature_length)
{
	if ((signature_length == 64) && (!inRange(signature) || !inRange(signature + 32))) {
		gxOutOfRangeVerifies++;
		problem("psa_verify_message was given r or s outside [1, n - 1], which ESP-IDF 6's ECDSA peripheral "
				"driver does not check");
	}
	if (injectFault(NULL, 0))
		return CF_FAULT;
	return __real_psa_verify_message(id, alg, input, length, signature, signature_length);
}

psa_status_t __real_psa_raw_key_agreement(psa_algorithm_t alg, psa_key_id_t id, const uint8_t* peer,
	size_t peer_length, uint8_t* output, size_t size, size_t* output_length);
psa_status_t __wrap_psa_raw_key_agreement(psa_algorithm_t alg, psa_key_id_t id, const uint8_t* peer,
	size_t peer_length, uint8_t* output, size_t size, size_t* output_length)
{
	if (injectFault(output, size))
		return CF_FAULT;
	return __real_psa_raw_key_agreement(alg, id, peer, peer_length, output, size, output_length);
}

/* ---- the operations under test ---- */

static uint8_t gxKey16[16], gxIv[12], gxData[200], gxSealed[48], gxWrapped[40], gxSignature[64];
static cf_p256_key gxA, gxB;

typedef struct {
	const char* name;
	size_t out_length; /* bytes of `out` the operation writes */
	int secret;        /* outputs must be wiped on failure */
	cf_status (*run)(uint8_t* out);
} operation;

static cf_status runSha256(uint8_t* out)
{
	return cf_sha256(gxData, 100, out);
}
static cf_status runHmac(uint8_t* out)
{
	return cf_hmac_sha256(gxKey16, 16, gxData, 100, out);
}
static cf_status runHmacLongKey(uint8_t* out)
{
	return cf_hmac_sha256(gxData, 100, gxKey16, 16, out);
}
static cf_status runHkdf(uint8_t* out)
{
	return cf_hkdf_sha256(gxKey16, 16, gxIv, 12, gxData, 10, out, 100);
}
static cf_status runHkdfLongInfo(uint8_t* out)
{
	return cf_hkdf_sha256(gxKey16, 16, gxData, 100, gxData, 200, out, 70);
}
static cf_status runGcmEncrypt(uint8_t* out)
{
	return cf_aes_gcm_encrypt(gxKey16, gxIv, gxData, 32, gxData + 32, 7, out);
}
static cf_status runGcmDecrypt(uint8_t* out)
{
	return cf_aes_gcm_decrypt(gxKey16, gxIv, gxSealed, sizeof(gxSealed), gxData + 32, 7, out);
}
static cf_status runKeyWrap(uint8_t* out)
{
	return cf_aes_key_wrap(gxKey16, gxData, 32, out);
}
static cf_status runKeyUnwrap(uint8_t* out)
{
	return cf_aes_key_unwrap(gxKey16, gxWrapped, sizeof(gxWrapped), out);
}
static cf_status runGenerate(uint8_t* out)
{
	return cf_p256_generate((cf_p256_key*)out);
}
static cf_status runImport(uint8_t* out)
{
	return cf_p256_import((cf_p256_key*)out, gxA.d);
}
static cf_status runSign(uint8_t* out)
{
	return cf_ecdsa_p256_sign(&gxA, gxData, 100, out);
}
static cf_status runVerify(uint8_t* out)
{
	(void)out;
	return cf_ecdsa_p256_verify(gxA.public_key, sizeof(gxA.public_key), gxData, 100, gxSignature, 64);
}
static cf_status runEcdh(uint8_t* out)
{
	return cf_ecdh_p256(&gxA, gxB.public_key, sizeof(gxB.public_key), out);
}

static const operation gxOperations[] = {
	{ "sha256", CF_SHA256_BYTES, 0, runSha256 },
	{ "hmac", CF_SHA256_BYTES, 1, runHmac },
	{ "hmac-long-key", CF_SHA256_BYTES, 1, runHmacLongKey },
	{ "hkdf", 100, 1, runHkdf },
	{ "hkdf-long-info", 70, 1, runHkdfLongInfo },
	{ "gcm-encrypt", 48, 1, runGcmEncrypt },
	{ "gcm-decrypt", 32, 1, runGcmDecrypt },
	{ "key-wrap", 40, 1, runKeyWrap },
	{ "key-unwrap", 32, 1, runKeyUnwrap },
	{ "p256-generate", sizeof(cf_p256_key), 1, runGenerate },
	{ "p256-import", sizeof(cf_p256_key), 1, runImport },
	{ "ecdsa-sign", CF_P256_SIGNATURE_BYTES, 1, runSign },
	{ "ecdsa-verify", 0, 0, runVerify },
	{ "ecdh", CF_P256_SCALAR_BYTES, 1, runEcdh },
	{ NULL, 0, 0, NULL },
};

static int allZero(const uint8_t* data, size_t length)
{
	size_t i;
	for (i = 0; i < length; i++) {
		if (data[i])
			return 0;
	}
	return 1;
}

/* After a run: no problem seen by the wrappers, and no key left in PSA. */
static void checkWatch(const char* where)
{
	char why[640];
	check(!gxProblems[0], where, gxProblems);
	snprintf(why, sizeof(why), "%u key(s) left in PSA", gxLiveCount);
	check(gxLiveCount == 0, where, why);
	while (gxLiveCount)
		__real_psa_destroy_key(gxLive[--gxLiveCount]);
}

static void faults(void)
{
	const operation* op;
	uint8_t out[sizeof(cf_p256_key) + 100];
	char where[96], why[96];
	for (op = gxOperations; op->name; op++) {
		unsigned k, reached = 0;
		for (k = 1; k < 40; k++) {
			cf_status status;
			memset(out, 0, sizeof(out));
			resetWatch(k);
			status = op->run(out);
			if (!gxFaults) { /* this run reached fewer than k PSA calls: every fault was tried */
				reached = gxCalls;
				snprintf(where, sizeof(where), "faults %s without a fault", op->name);
				check(status == CF_OK, where, cf_status_name(status));
				checkWatch(where);
				break;
			}
			snprintf(where, sizeof(where), "faults %s, PSA call %u failing", op->name, k);
			snprintf(why, sizeof(why), "returned %s", cf_status_name(status));
			check(status != CF_OK, where, why);
			checkWatch(where);
			if (op->secret)
				check(allZero(out, op->out_length), where, "the output was not wiped");
			check(allZero(out + op->out_length, sizeof(out) - op->out_length), where, "wrote past its output");
		}
		snprintf(where, sizeof(where), "faults %s", op->name);
		check(reached > 0, where, "no PSA call was made, or more than 39");
	}
}

/* ---- ECDSA: r and s out of range never reach PSA ---- */

/* x = n + delta (delta small, may be negative), big-endian, or 2^256 - 1 for `max`. */
static void nearOrder(uint8_t x[32], int delta, int max)
{
	int i, carry = delta;
	if (max) {
		memset(x, 0xFF, 32);
		return;
	}
	memcpy(x, gxOrder, 32);
	for (i = 31; (i >= 0) && carry; i--) {
		int value = x[i] + carry;
		x[i] = (uint8_t)value;
		carry = (value < 0) ? -1 : (value > 0xFF) ? 1 : 0;
	}
}

static void ecdsaRanges(void)
{
	static const struct {
		const char* name;
		int part;  /* 0: r, 1: s */
		int kind;  /* 0: zero, 1: n + delta, 2: 2^256 - 1 */
		int delta;
	} cases[] = {
		{ "r = 0", 0, 0, 0 }, { "s = 0", 1, 0, 0 }, { "r = n", 0, 1, 0 }, { "s = n", 1, 1, 0 },
		{ "r = n + 1", 0, 1, 1 }, { "s = n + 1", 1, 1, 1 }, { "r = 2^256 - 1", 0, 2, 0 },
		{ "s = 2^256 - 1", 1, 2, 0 },
	};
	uint8_t signature[64];
	char where[96];
	size_t i;
	cf_status status;

	resetWatch(0);
	status = cf_ecdsa_p256_verify(gxA.public_key, sizeof(gxA.public_key), gxData, 100, gxSignature, 64);
	check(status == CF_OK, "ecdsa-range a valid signature", cf_status_name(status));
	checkWatch("ecdsa-range a valid signature");
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t* part = signature + 32 * cases[i].part;
		memcpy(signature, gxSignature, 64);
		if (cases[i].kind == 0)
			memset(part, 0, 32);
		else
			nearOrder(part, cases[i].delta, cases[i].kind == 2);
		snprintf(where, sizeof(where), "ecdsa-range %s", cases[i].name);
		resetWatch(0);
		gxOutOfRangeVerifies = 0;
		status = cf_ecdsa_p256_verify(gxA.public_key, sizeof(gxA.public_key), gxData, 100, signature, 64);
		check(status == CF_ERR_BAD_SIGNATURE, where, cf_status_name(status));
		check(gxOutOfRangeVerifies == 0, where, "reached PSA");
		checkWatch(where);
	}
	/* n - 1 is in range: it goes to PSA, which finds it wrong. */
	memcpy(signature, gxSignature, 64);
	nearOrder(signature, -1, 0);
	resetWatch(0);
	gxOutOfRangeVerifies = 0;
	status = cf_ecdsa_p256_verify(gxA.public_key, sizeof(gxA.public_key), gxData, 100, signature, 64);
	check(status == CF_ERR_BAD_SIGNATURE, "ecdsa-range r = n - 1", cf_status_name(status));
	check(gxOutOfRangeVerifies == 0, "ecdsa-range r = n - 1", "counted as out of range");
	checkWatch("ecdsa-range r = n - 1");
}

/* ---- sizes and NULL pointers ---- */

static void expectBadInput(const char* where, cf_status status)
{
	char why[96];
	snprintf(why, sizeof(why), "returned %s, not bad-input", cf_status_name(status));
	check(status == CF_ERR_BAD_INPUT, where, why);
	checkWatch(where);
}

static void sizes(void)
{
	uint8_t out[64], d[CF_P256_SCALAR_BYTES];
	cf_p256_key key;
	const size_t huge = SIZE_MAX - 8; /* + 16 wraps to 7 */

	resetWatch(0);
	expectBadInput("gcm encrypt to NULL", cf_aes_gcm_encrypt(gxKey16, gxIv, gxData, 16, NULL, 0, NULL));
	resetWatch(0);
	expectBadInput("gcm encrypt of nothing to NULL", cf_aes_gcm_encrypt(gxKey16, gxIv, NULL, 0, NULL, 0, NULL));
	resetWatch(0);
	expectBadInput("gcm encrypt, length + 16 overflows", cf_aes_gcm_encrypt(gxKey16, gxIv, gxData, huge, NULL, 0, out));
	resetWatch(0);
	expectBadInput("gcm encrypt, plaintext NULL", cf_aes_gcm_encrypt(gxKey16, gxIv, NULL, 16, NULL, 0, out));
	resetWatch(0);
	expectBadInput("gcm encrypt, aad NULL", cf_aes_gcm_encrypt(gxKey16, gxIv, gxData, 16, NULL, 5, out));
	resetWatch(0);
	expectBadInput("gcm decrypt to NULL", cf_aes_gcm_decrypt(gxKey16, gxIv, gxSealed, sizeof(gxSealed), NULL, 0, NULL));
	resetWatch(0);
	expectBadInput("gcm decrypt, sealed NULL", cf_aes_gcm_decrypt(gxKey16, gxIv, NULL, 48, NULL, 0, out));
	resetWatch(0);
	expectBadInput("gcm decrypt, aad NULL", cf_aes_gcm_decrypt(gxKey16, gxIv, gxSealed, sizeof(gxSealed), NULL, 7, out));
	{
		/* An empty plaintext may go to NULL: the tag alone is checked. */
		uint8_t tagOnly[CF_GCM_TAG_BYTES];
		cf_status status;
		resetWatch(0);
		status = cf_aes_gcm_encrypt(gxKey16, gxIv, NULL, 0, NULL, 0, tagOnly);
		check(status == CF_OK, "gcm encrypt of nothing", cf_status_name(status));
		status = cf_aes_gcm_decrypt(gxKey16, gxIv, tagOnly, sizeof(tagOnly), NULL, 0, NULL);
		check(status == CF_OK, "gcm decrypt of a tag alone to NULL", cf_status_name(status));
		checkWatch("gcm of nothing");
	}
	resetWatch(0);
	expectBadInput("key wrap, length + 8 overflows", cf_aes_key_wrap(gxKey16, gxData, SIZE_MAX - 7, out));
	resetWatch(0);
	expectBadInput("key wrap to NULL", cf_aes_key_wrap(gxKey16, gxData, 16, NULL));
	resetWatch(0);
	expectBadInput("key wrap of NULL", cf_aes_key_wrap(gxKey16, NULL, 16, out));
	resetWatch(0);
	expectBadInput("key unwrap to NULL", cf_aes_key_unwrap(gxKey16, gxWrapped, sizeof(gxWrapped), NULL));
	resetWatch(0);
	expectBadInput("key unwrap of NULL", cf_aes_key_unwrap(gxKey16, NULL, 24, out));
	resetWatch(0);
	expectBadInput("sha256 of NULL", cf_sha256(NULL, 10, out));
	resetWatch(0);
	expectBadInput("hmac with a NULL key", cf_hmac_sha256(NULL, 10, gxData, 10, out));
	resetWatch(0);
	expectBadInput("hmac of NULL", cf_hmac_sha256(gxKey16, 16, NULL, 10, out));
	resetWatch(0);
	expectBadInput("hkdf of a NULL ikm", cf_hkdf_sha256(NULL, 10, NULL, 0, NULL, 0, out, 32));
	resetWatch(0);
	expectBadInput("hkdf with a NULL salt", cf_hkdf_sha256(gxKey16, 16, NULL, 10, NULL, 0, out, 32));
	resetWatch(0);
	expectBadInput("hkdf with a NULL info", cf_hkdf_sha256(gxKey16, 16, NULL, 0, NULL, 10, out, 32));
	resetWatch(0);
	expectBadInput("hkdf to NULL", cf_hkdf_sha256(gxKey16, 16, NULL, 0, NULL, 0, NULL, 32));
	resetWatch(0);
	expectBadInput("sign of NULL", cf_ecdsa_p256_sign(&gxA, NULL, 10, out));
	resetWatch(0);
	expectBadInput("verify of NULL", cf_ecdsa_p256_verify(gxA.public_key, 65, NULL, 10, gxSignature, 64));
	resetWatch(0);
	expectBadInput("verify with a NULL key", cf_ecdsa_p256_verify(NULL, 65, gxData, 100, gxSignature, 64));
	resetWatch(0);
	expectBadInput("verify with a NULL signature", cf_ecdsa_p256_verify(gxA.public_key, 65, gxData, 100, NULL, 64));
	resetWatch(0);
	expectBadInput("ecdh with a NULL peer", cf_ecdh_p256(&gxA, NULL, 65, out));
	memcpy(d, gxA.d, sizeof(d));
	resetWatch(0);
	check(cf_p256_import(&key, d) == CF_OK, "import", "failed");
	checkWatch("import");
	cf_p256_key_wipe(&key);
}

int main(int argc, char* argv[])
{
	const char* part = (argc == 2) ? argv[1] : "";
	size_t i;
	if (strcmp(part, "faults") && strcmp(part, "ecdsa-ranges") && strcmp(part, "sizes")) {
		fprintf(stderr, "usage: psa-harness faults|ecdsa-ranges|sizes\n");
		return 2;
	}
	if (cf_crypto_init() != CF_OK) {
		fprintf(stderr, "psa-harness: psa_crypto_init failed\n");
		return 2;
	}
	for (i = 0; i < sizeof(gxData); i++)
		gxData[i] = (uint8_t)(i * 7 + 1);
	for (i = 0; i < sizeof(gxKey16); i++)
		gxKey16[i] = (uint8_t)(0x30 + i);
	for (i = 0; i < sizeof(gxIv); i++)
		gxIv[i] = (uint8_t)(0x60 + i);
	resetWatch(0);
	if ((cf_p256_generate(&gxA) != CF_OK) || (cf_p256_generate(&gxB) != CF_OK) ||
		(cf_aes_gcm_encrypt(gxKey16, gxIv, gxData, 32, gxData + 32, 7, gxSealed) != CF_OK) ||
		(cf_aes_key_wrap(gxKey16, gxData, 32, gxWrapped) != CF_OK) ||
		(cf_ecdsa_p256_sign(&gxA, gxData, 100, gxSignature) != CF_OK)) {
		fprintf(stderr, "psa-harness: could not make its fixtures\n");
		return 2;
	}
	checkWatch("fixtures");
	if (!strcmp(part, "faults"))
		faults();
	else if (!strcmp(part, "ecdsa-ranges"))
		ecdsaRanges();
	else
		sizes();
	cf_p256_key_wipe(&gxA);
	cf_p256_key_wipe(&gxB);
	printf("%u passed, %u failed\n", gxPassed, gxFailed);
	return gxFailed ? 1 : 0;
}
