/*
 * cf_test: runs test cases through the C API of native/crypto and prints one line per failure,
 * a tally per kind and, last, "N passed, N failed". Exit status 0 only when nothing failed.
 *
 *   cf_test CASES-FILE
 *
 * CASES-FILE is written by test/native/cases.ts from the Wycheproof JSON in test/vectors/wycheproof
 * (its README says where it comes from) and from known answers computed by Node. One
 * case per line, fields separated by one space, byte strings in hex, "-" for an empty one:
 *
 *   ecdsa  WHERE RESULT PUBLIC MSG SIG          Wycheproof ECDSA P-256 SHA-256, P1363 (r || s)
 *   ecdh   WHERE RESULT D PUBLIC SHARED         Wycheproof ECDH P-256, ecpoint encoding
 *   gcm    WHERE RESULT KEY IV AAD MSG CT TAG   Wycheproof AES-GCM (128-bit key, 96-bit IV, 128-bit tag)
 *   kw     WHERE RESULT KEK MSG CT              Wycheproof AES key wrap (RFC 3394), 128-bit KEK
 *   hkdf   WHERE RESULT IKM SALT INFO SIZE OKM  Wycheproof HKDF-SHA-256
 *   sha256 WHERE DATA DIGEST                    known answers
 *   hmac   WHERE KEY DATA MAC
 *   public WHERE D PUBLIC                       d * G
 *   sign   WHERE D MSG SIG                      deterministic ECDSA (RFC 6979), when the build signs so
 *   seed   WHERE SEED D                         FIPS 186-5 A.2.1 scalar from 48 bytes
 *   device WHERE SECRET PUBLIC ID               the device identity derived from S
 *   selftest WHERE                              round trips that need no vector (random, keys, ECDH)
 *
 * RESULT is Wycheproof's: "valid" must be accepted with the expected output, "invalid" must be
 * rejected, "acceptable" may go either way (but must not crash).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cf_crypto.h"
#include "cf_device_key.h"

#define MAX_FIELDS 10
#define MAX_FAILURES_SHOWN 50

typedef struct {
	uint8_t* data;
	size_t length;
} bytes;

typedef struct {
	const char* kind;
	unsigned passed, failed;
} tally;

static tally gxTallies[] = {
	{ "ecdsa", 0, 0 }, { "ecdh", 0, 0 }, { "gcm", 0, 0 }, { "kw", 0, 0 }, { "hkdf", 0, 0 }, { "sha256", 0, 0 },
	{ "hmac", 0, 0 }, { "public", 0, 0 }, { "sign", 0, 0 }, { "seed", 0, 0 }, { "device", 0, 0 },
	{ "selftest", 0, 0 }, { NULL, 0, 0 },
};
static unsigned gxFailuresShown = 0;

static tally* tallyOf(const char* kind)
{
	tally* t;
	for (t = gxTallies; t->kind; t++) {
		if (!strcmp(t->kind, kind))
			return t;
	}
	return NULL;
}

static int isWycheproof(const char* kind)
{
	return !strcmp(kind, "ecdsa") || !strcmp(kind, "ecdh") || !strcmp(kind, "gcm") || !strcmp(kind, "kw") ||
		!strcmp(kind, "hkdf");
}

static void report(tally* t, const char* where, int ok, const char* why)
{
	if (ok) {
		t->passed++;
		return;
	}
	t->failed++;
	if (gxFailuresShown++ < MAX_FAILURES_SHOWN)
		printf("FAIL %s %s: %s\n", t->kind, where, why);
}

/* Hex to bytes; "-" is empty (NULL data, so the API's NULL-for-empty path runs too). */
static int parseHex(const char* hex, bytes* out)
{
	size_t length = strlen(hex), i;
	out->data = NULL;
	out->length = 0;
	if (!strcmp(hex, "-"))
		return 1;
	if (length % 2)
		return 0;
	out->data = malloc(length / 2 ? length / 2 : 1);
	if (!out->data)
		return 0;
	for (i = 0; i < length / 2; i++) {
		unsigned value;
		if (sscanf(hex + 2 * i, "%2x", &value) != 1) {
			free(out->data);
			out->data = NULL;
			return 0;
		}
		out->data[i] = (uint8_t)value;
	}
	out->length = length / 2;
	return 1;
}

static int same(const uint8_t* a, size_t a_length, const bytes* b)
{
	return (a_length == b->length) && (!a_length || !memcmp(a, b->data, a_length));
}

/* What a case did: 1 accepted (with the right output), 0 rejected, -1 wrong output or error. */
static void judge(tally* t, const char* where, const char* result, int outcome, const char* detail)
{
	char why[160];
	if (outcome < 0) {
		report(t, where, 0, detail);
		return;
	}
	if (!strcmp(result, "valid"))
		report(t, where, outcome == 1, "valid case rejected");
	else if (!strcmp(result, "invalid"))
		report(t, where, outcome == 0, "invalid case accepted");
	else if (!strcmp(result, "acceptable"))
		report(t, where, 1, "");
	else {
		snprintf(why, sizeof(why), "unknown result %s", result);
		report(t, where, 0, why);
	}
}

static int runEcdsa(bytes* f, char* detail)
{
	cf_status status = cf_ecdsa_p256_verify(f[0].data, f[0].length, f[1].data, f[1].length, f[2].data, f[2].length);
	if (status == CF_OK)
		return 1;
	if (status == CF_ERR_BAD_SIGNATURE)
		return 0;
	sprintf(detail, "verify failed with %s", cf_status_name(status));
	return -1;
}

static int runEcdh(bytes* f, char* detail)
{
	cf_p256_key key;
	uint8_t shared[CF_P256_SCALAR_BYTES];
	cf_status status;
	if (f[0].length != CF_P256_SCALAR_BYTES)
		return 0;
	status = cf_p256_import(&key, f[0].data);
	if (status == CF_OK) {
		status = cf_ecdh_p256(&key, f[1].data, f[1].length, shared);
		cf_p256_key_wipe(&key);
	}
	if (status == CF_ERR_BAD_KEY)
		return 0;
	if (status != CF_OK) {
		sprintf(detail, "ECDH failed with %s", cf_status_name(status));
		return -1;
	}
	if (!same(shared, sizeof(shared), &f[2])) {
		strcpy(detail, "wrong shared secret");
		return -1;
	}
	return 1;
}

static int runGcm(bytes* f, const char* result, char* detail)
{
	/* KEY IV AAD MSG CT TAG: decrypt CT || TAG, and for valid cases encrypt MSG to it. */
	size_t sealed_length = f[4].length + f[5].length;
	uint8_t* sealed = malloc(sealed_length + 1);
	uint8_t* out = malloc(sealed_length + CF_GCM_TAG_BYTES + 1);
	int outcome = -1;
	cf_status status;
	if (!sealed || !out) {
		strcpy(detail, "out of memory");
		goto done;
	}
	if ((f[0].length != CF_AES128_KEY_BYTES) || (f[1].length != CF_GCM_IV_BYTES)) {
		strcpy(detail, "not a 128-bit key and 96-bit IV (wrong group selected)");
		goto done;
	}
	if (f[4].length)
		memcpy(sealed, f[4].data, f[4].length);
	if (f[5].length)
		memcpy(sealed + f[4].length, f[5].data, f[5].length);
	if (!strcmp(result, "valid")) {
		status = cf_aes_gcm_encrypt(f[0].data, f[1].data, f[3].data, f[3].length, f[2].data, f[2].length, out);
		if ((status != CF_OK) || (f[3].length + CF_GCM_TAG_BYTES != sealed_length) ||
			memcmp(out, sealed, sealed_length)) {
			strcpy(detail, "encryption differs");
			goto done;
		}
	}
	status = cf_aes_gcm_decrypt(f[0].data, f[1].data, sealed, sealed_length, f[2].data, f[2].length, out);
	if (status == CF_ERR_DECRYPT_FAILED)
		outcome = 0;
	else if (status != CF_OK)
		sprintf(detail, "decrypt failed with %s", cf_status_name(status));
	else if (!same(out, sealed_length - CF_GCM_TAG_BYTES, &f[3]))
		strcpy(detail, "decrypted plaintext differs");
	else
		outcome = 1;
done:
	free(sealed);
	free(out);
	return outcome;
}

static int runKeyWrap(bytes* f, const char* result, char* detail)
{
	/* KEK MSG CT. Accepted: unwrap gives MSG, or wrap gives CT. Valid cases need both. */
	uint8_t* wrapped = malloc(f[1].length + CF_KEY_WRAP_SEMIBLOCK);
	uint8_t* unwrapped = malloc(f[2].length + 1);
	int wrapMatches = 0, unwrapMatches = 0, outcome = -1;
	cf_status wrapStatus, unwrapStatus;
	if (!wrapped || !unwrapped) {
		strcpy(detail, "out of memory");
		goto done;
	}
	wrapStatus = cf_aes_key_wrap(f[0].data, f[1].data, f[1].length, wrapped);
	if ((wrapStatus != CF_OK) && (wrapStatus != CF_ERR_BAD_INPUT)) {
		sprintf(detail, "wrap failed with %s", cf_status_name(wrapStatus));
		goto done;
	}
	wrapMatches = (wrapStatus == CF_OK) && same(wrapped, f[1].length + CF_KEY_WRAP_SEMIBLOCK, &f[2]);
	unwrapStatus = cf_aes_key_unwrap(f[0].data, f[2].data, f[2].length, unwrapped);
	if ((unwrapStatus != CF_OK) && (unwrapStatus != CF_ERR_DECRYPT_FAILED) && (unwrapStatus != CF_ERR_BAD_INPUT)) {
		sprintf(detail, "unwrap failed with %s", cf_status_name(unwrapStatus));
		goto done;
	}
	unwrapMatches = (unwrapStatus == CF_OK) && same(unwrapped, f[2].length - CF_KEY_WRAP_SEMIBLOCK, &f[1]);
	if ((unwrapStatus == CF_OK) && !unwrapMatches) {
		strcpy(detail, "unwrap accepted CT but gave another key");
		goto done;
	}
	if (!strcmp(result, "valid") && (wrapMatches != unwrapMatches)) {
		strcpy(detail, wrapMatches ? "unwrap refused a valid CT" : "wrap did not give CT");
		goto done;
	}
	outcome = (wrapMatches || unwrapMatches) ? 1 : 0;
done:
	free(wrapped);
	free(unwrapped);
	return outcome;
}

static int runHkdf(bytes* f, const char* size_text, char* detail)
{
	/* IKM SALT INFO SIZE OKM */
	long size = strtol(size_text, NULL, 10);
	uint8_t* okm;
	cf_status status;
	int outcome = -1;
	if ((size < 1) || (size > 1000000)) {
		strcpy(detail, "a SIZE this test does not expect");
		return -1;
	}
	okm = malloc((size_t)size);
	if (!okm) {
		strcpy(detail, "out of memory");
		return -1;
	}
	status = cf_hkdf_sha256(f[0].data, f[0].length, f[1].data, f[1].length, f[2].data, f[2].length, okm, (size_t)size);
	if (status == CF_ERR_BAD_INPUT)
		outcome = 0;
	else if (status != CF_OK)
		sprintf(detail, "HKDF failed with %s", cf_status_name(status));
	else if (!same(okm, (size_t)size, &f[3]))
		strcpy(detail, "wrong OKM");
	else
		outcome = 1;
	free(okm);
	return outcome;
}

/* Known answers: 1 when right, else -1 with `detail`. */
static int runKnown(const char* kind, bytes* f, char* detail)
{
	uint8_t out[CF_P256_SIGNATURE_BYTES];
	uint8_t id[CF_DEVICE_ID_BYTES];
	cf_p256_key key;
	cf_status status = CF_OK;
	int ok = 0;
	if (!strcmp(kind, "sha256")) {
		status = cf_sha256(f[0].data, f[0].length, out);
		ok = same(out, CF_SHA256_BYTES, &f[1]);
	}
	else if (!strcmp(kind, "hmac")) {
		status = cf_hmac_sha256(f[0].data, f[0].length, f[1].data, f[1].length, out);
		ok = same(out, CF_SHA256_BYTES, &f[2]);
	}
	else if (!strcmp(kind, "public")) {
		status = cf_p256_import(&key, f[0].data);
		ok = same(key.public_key, CF_P256_PUBLIC_KEY_BYTES, &f[1]);
		cf_p256_key_wipe(&key);
	}
	else if (!strcmp(kind, "sign")) {
		status = cf_p256_import(&key, f[0].data);
		if (status == CF_OK)
			status = cf_ecdsa_p256_sign(&key, f[1].data, f[1].length, out);
		ok = same(out, CF_P256_SIGNATURE_BYTES, &f[2]);
		cf_p256_key_wipe(&key);
	}
	else if (!strcmp(kind, "seed")) {
		if (f[0].length != CF_P256_SEED_BYTES) {
			strcpy(detail, "a seed is 48 bytes");
			return -1;
		}
		cf_p256_scalar_from_seed(f[0].data, out);
		ok = same(out, CF_P256_SCALAR_BYTES, &f[1]);
	}
	else if (!strcmp(kind, "device")) {
		status = cf_device_identity_from_secret(f[0].data, &key, id);
		ok = same(key.public_key, CF_P256_PUBLIC_KEY_BYTES, &f[1]) && same(id, sizeof(id), &f[2]);
		cf_p256_key_wipe(&key);
	}
	if (status != CF_OK)
		sprintf(detail, "failed with %s", cf_status_name(status));
	else if (!ok)
		strcpy(detail, "wrong answer");
	return (status == CF_OK && ok) ? 1 : -1;
}

/* The order n of P-256, big-endian. */
static const uint8_t gxOrder[CF_P256_SCALAR_BYTES] = {
	0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
	0xBC, 0xE6, 0xFA, 0xAD, 0xA7, 0x17, 0x9E, 0x84, 0xF3, 0xB9, 0xCA, 0xC2, 0xFC, 0x63, 0x25, 0x51,
};

/*
 * A valid signature `sig` of `msg` under `key` with r or s replaced by 0, n, n + 1 or 2^256 - 1
 * must not verify. cf_ecdsa_p256_verify refuses these itself (ESP-IDF 6's ECDSA peripheral
 * driver does not check 1 <= r, s < n); here PSA would refuse them too, so these are known
 * answers, not the proof of the check (test/native/psa-harness.c watches PSA's input for that).
 */
static void ecdsaRanges(tally* t, const char* where, const cf_p256_key* key, const uint8_t* msg, size_t length,
	const uint8_t sig[CF_P256_SIGNATURE_BYTES])
{
	static const char* const values[] = { "0", "n", "n + 1", "2^256 - 1" };
	uint8_t bad[CF_P256_SIGNATURE_BYTES];
	char name[160];
	int part, value, i;
	for (part = 0; part < 2; part++) {
		for (value = 0; value < 4; value++) {
			uint8_t* x = bad + 32 * part;
			memcpy(bad, sig, sizeof(bad));
			if (value == 0)
				memset(x, 0, 32);
			else if (value == 3)
				memset(x, 0xFF, 32);
			else {
				memcpy(x, gxOrder, 32);
				for (i = 31; (value == 2) && (i >= 0) && !++x[i]; i--)
					; /* + 1, with carry */
			}
			snprintf(name, sizeof(name), "%s ecdsa range %s = %s", where, part ? "s" : "r", values[value]);
			report(t, name,
				cf_ecdsa_p256_verify(key->public_key, sizeof(key->public_key), msg, length, bad, sizeof(bad)) ==
					CF_ERR_BAD_SIGNATURE,
				"verified, or failed otherwise than bad-signature");
		}
	}
	memcpy(bad, sig, sizeof(bad));
	snprintf(name, sizeof(name), "%s ecdsa range unchanged", where);
	report(t, name,
		cf_ecdsa_p256_verify(key->public_key, sizeof(key->public_key), msg, length, bad, sizeof(bad)) == CF_OK,
		"the unchanged signature does not verify");
}

/* Round trips with fresh keys and random bytes. */
static void selfTest(tally* t, const char* where)
{
	cf_p256_key a, b;
	uint8_t r1[64], r2[64], sab[32], sba[32], sig[64], msg[100];
	uint8_t device_id[CF_DEVICE_ID_BYTES], device_id_again[CF_DEVICE_ID_BYTES];
	cf_p256_key device, device_again;
	char name[128];
	int i, nonzero = 0;

	snprintf(name, sizeof(name), "%s random", where);
	report(t, name,
		(cf_random(r1, sizeof(r1)) == CF_OK) && (cf_random(r2, sizeof(r2)) == CF_OK) && memcmp(r1, r2, sizeof(r1)),
		"two random draws are equal or failed");
	for (i = 0; i < 64; i++)
		nonzero |= r1[i];
	report(t, name, nonzero != 0, "random bytes are all zero");
	report(t, name, cf_random(NULL, 0) == CF_OK, "zero random bytes");

	snprintf(name, sizeof(name), "%s keys", where);
	report(t, name, (cf_p256_generate(&a) == CF_OK) && (cf_p256_generate(&b) == CF_OK), "generate failed");
	report(t, name, memcmp(a.d, b.d, sizeof(a.d)) && (a.public_key[0] == 4), "two generated keys are equal");
	report(t, name,
		(cf_ecdh_p256(&a, b.public_key, sizeof(b.public_key), sab) == CF_OK) &&
			(cf_ecdh_p256(&b, a.public_key, sizeof(a.public_key), sba) == CF_OK) && !memcmp(sab, sba, sizeof(sab)),
		"ECDH does not agree");
	cf_random(msg, sizeof(msg));
	report(t, name,
		(cf_ecdsa_p256_sign(&a, msg, sizeof(msg), sig) == CF_OK) &&
			(cf_ecdsa_p256_verify(a.public_key, sizeof(a.public_key), msg, sizeof(msg), sig, sizeof(sig)) == CF_OK),
		"a signature does not verify");
	report(t, name,
		cf_ecdsa_p256_verify(b.public_key, sizeof(b.public_key), msg, sizeof(msg), sig, sizeof(sig)) ==
			CF_ERR_BAD_SIGNATURE,
		"a signature verifies under another key");
	report(t, name,
		cf_ecdsa_p256_verify(a.public_key, sizeof(a.public_key), msg, sizeof(msg) - 1, sig, sizeof(sig)) ==
			CF_ERR_BAD_SIGNATURE,
		"a signature verifies for another message");
	report(t, name,
		cf_ecdsa_p256_verify(a.public_key, sizeof(a.public_key), msg, sizeof(msg), sig, 63) == CF_ERR_BAD_SIGNATURE,
		"a 63-byte signature is not refused");
	ecdsaRanges(t, where, &a, msg, sizeof(msg), sig);
	report(t, name, cf_ecdh_p256(&a, b.public_key, 33, sab) == CF_ERR_BAD_KEY, "a compressed-size peer is not refused");
	b.public_key[64] ^= 1;
	report(t, name, cf_ecdh_p256(&a, b.public_key, sizeof(b.public_key), sab) == CF_ERR_BAD_KEY,
		"an off-curve peer is not refused");
	cf_p256_key_wipe(&a);
	cf_p256_key_wipe(&b);
	nonzero = 0;
	for (i = 0; i < (int)sizeof(a); i++)
		nonzero |= ((uint8_t*)&a)[i];
	report(t, name, nonzero == 0, "cf_p256_key_wipe left bytes");

	snprintf(name, sizeof(name), "%s bounds", where);
	memset(r1, 0, 32);
	report(t, name, cf_p256_import(&a, r1) == CF_ERR_BAD_KEY, "the scalar 0 is not refused");
	memset(r1, 0xff, 32);
	report(t, name, cf_p256_import(&a, r1) == CF_ERR_BAD_KEY, "the scalar 2^256 - 1 is not refused");
	report(t, name, cf_hkdf_sha256(r1, 32, NULL, 0, NULL, 0, r2, 0) == CF_ERR_BAD_INPUT, "HKDF of 0 bytes");
	report(t, name, cf_aes_key_wrap(r1, r1, 8, r2) == CF_ERR_BAD_INPUT, "wrap of 8 bytes");
	report(t, name, cf_aes_key_wrap(r1, r1, 20, r2) == CF_ERR_BAD_INPUT, "wrap of 20 bytes");
	report(t, name, cf_aes_key_unwrap(r1, r1, 16, r2) == CF_ERR_BAD_INPUT, "unwrap of 16 bytes");
	report(t, name, cf_aes_gcm_decrypt(r1, r1, r1, 15, NULL, 0, r2) == CF_ERR_DECRYPT_FAILED, "GCM of 15 bytes");
	report(t, name, cf_aes_gcm_encrypt(r1, r1, r1, 16, NULL, 0, NULL) == CF_ERR_BAD_INPUT, "GCM encrypt to NULL");
	report(t, name, cf_aes_gcm_encrypt(r1, r1, r1, SIZE_MAX - 8, NULL, 0, r2) == CF_ERR_BAD_INPUT,
		"GCM encrypt of SIZE_MAX - 8 bytes (+ 16 wraps)");
	report(t, name, cf_aes_gcm_decrypt(r1, r1, r1, 32, NULL, 0, NULL) == CF_ERR_BAD_INPUT, "GCM decrypt to NULL");
	report(t, name, cf_aes_key_wrap(r1, r1, SIZE_MAX - 7, r2) == CF_ERR_BAD_INPUT,
		"wrap of SIZE_MAX - 7 bytes (+ 8 wraps)");

	/* The device identity from COSE_FLOW_HUK_FILE (the test names a fresh file): stable across calls. */
	snprintf(name, sizeof(name), "%s device (%s)", where, cf_device_secret_source());
	report(t, name,
		(cf_device_identity(&device, device_id) == CF_OK) &&
			(cf_device_identity(&device_again, device_id_again) == CF_OK) &&
			!memcmp(device.public_key, device_again.public_key, sizeof(device.public_key)) &&
			!memcmp(device_id, device_id_again, sizeof(device_id)),
		"the device identity is not available or not stable");
	printf("device %s ", cf_device_secret_source());
	for (i = 0; i < CF_DEVICE_ID_BYTES; i++)
		printf("%02x", device_id[i]);
	printf(" ");
	for (i = 0; i < CF_P256_PUBLIC_KEY_BYTES; i++)
		printf("%02x", device.public_key[i]);
	printf("\n");
	cf_p256_key_wipe(&device);
	cf_p256_key_wipe(&device_again);
}

int main(int argc, char* argv[])
{
	FILE* file;
	char* line = NULL;
	size_t capacity = 0;
	unsigned passed = 0, failed = 0, number = 0;
	tally* t;
	if (argc != 2) {
		fprintf(stderr, "usage: cf_test CASES-FILE\n");
		return 2;
	}
	file = fopen(argv[1], "r");
	if (!file) {
		fprintf(stderr, "cf_test: cannot read %s: %s\n", argv[1], strerror(errno));
		return 2;
	}
	if (cf_crypto_init() != CF_OK) {
		fprintf(stderr, "cf_test: psa_crypto_init failed\n");
		return 2;
	}
	while (getline(&line, &capacity, file) >= 0) {
		char* fields[MAX_FIELDS + 3];
		bytes values[MAX_FIELDS];
		char detail[160] = "";
		int count = 0, i, v = 0, outcome, parsed = 1, first;
		char* token = strtok(line, " \r\n");
		number++;
		while (token && (count < MAX_FIELDS + 3)) {
			fields[count++] = token;
			token = strtok(NULL, " \r\n");
		}
		if (!count || (fields[0][0] == '#'))
			continue;
		t = tallyOf(fields[0]);
		if (!t || (count < 2)) {
			fprintf(stderr, "cf_test: line %u: unknown case %s\n", number, fields[0]);
			return 2;
		}
		if (!strcmp(fields[0], "selftest")) {
			selfTest(t, fields[1]);
			continue;
		}
		/* Wycheproof cases carry RESULT after WHERE; known answers do not. */
		first = isWycheproof(fields[0]) ? 3 : 2;
		memset(values, 0, sizeof(values));
		for (i = first; i < count; i++) {
			if (!strcmp(fields[0], "hkdf") && (i == first + 3))
				continue; /* HKDF's SIZE is a number, not hex */
			if ((v >= MAX_FIELDS) || !parseHex(fields[i], &values[v++]))
				parsed = 0;
		}
		if (!parsed) {
			fprintf(stderr, "cf_test: line %u: bad hex\n", number);
			return 2;
		}
		if (!strcmp(fields[0], "ecdsa"))
			outcome = runEcdsa(values, detail);
		else if (!strcmp(fields[0], "ecdh"))
			outcome = runEcdh(values, detail);
		else if (!strcmp(fields[0], "gcm"))
			outcome = runGcm(values, fields[2], detail);
		else if (!strcmp(fields[0], "kw"))
			outcome = runKeyWrap(values, fields[2], detail);
		else if (!strcmp(fields[0], "hkdf"))
			outcome = runHkdf(values, fields[first + 3], detail);
		else
			outcome = runKnown(fields[0], values, detail);
		if (first == 3)
			judge(t, fields[1], fields[2], outcome, detail);
		else
			report(t, fields[1], outcome == 1, detail);
		for (i = 0; i < MAX_FIELDS; i++)
			free(values[i].data);
	}
	free(line);
	fclose(file);
	for (t = gxTallies; t->kind; t++) {
		if (t->passed || t->failed)
			printf("%s: %u passed, %u failed\n", t->kind, t->passed, t->failed);
		passed += t->passed;
		failed += t->failed;
	}
	printf("%u passed, %u failed\n", passed, failed);
	return failed ? 1 : 0;
}
