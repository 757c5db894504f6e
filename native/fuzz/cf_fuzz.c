/*
 * libFuzzer harness over every entry point of native/crypto/cf_crypto.h that takes bytes.
 * Built by scripts/build-native-fuzz.js with clang -fsanitize=fuzzer,address,undefined; one
 * program, the entry point chosen by the environment variable CF_FUZZ_TARGET (see `targets`
 * below; `all` picks one per input from its first byte).
 *
 *   CF_FUZZ_TARGET=gcm-decrypt native/build/cf-fuzz -max_total_time=60 corpus/
 *
 * Each input is cut into pieces (a length byte, then that many bytes), and every piece is copied
 * into a heap block of exactly its size, and every output into a heap block of exactly the size
 * the header names, so AddressSanitizer sees a read or write one byte past any of them. Beyond
 * "no sanitizer finding", each target checks what cf_crypto.h promises and aborts otherwise:
 * - statuses are in the enum, and only the ones the function documents;
 * - on failure, outputs hold no secret: wiped (all zero), or not written at all when the
 *   arguments were refused before any work;
 * - decrypt, unwrap and verify accept nothing but what was made: each target also mutates a
 *   valid sealed message / wrapped key / signature made at start-up with the input, and an
 *   accepted mutation must be byte-identical to the valid one (or, for ECDSA, its high-S twin,
 *   which ECDSA accepts by definition);
 * - encrypt → decrypt, wrap → unwrap and sign → verify round trip, and import/ECDH agree on d·G.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cf_crypto.h"

#define CHECK(cond)                                                                               \
	do {                                                                                          \
		if (!(cond)) {                                                                            \
			fprintf(stderr, "cf-fuzz: check failed at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
			abort();                                                                              \
		}                                                                                         \
	} while (0)

/* ---- input cutting ---- */

typedef struct {
	const uint8_t* data;
	size_t left;
} reader;

static uint8_t take_byte(reader* r)
{
	if (r->left == 0)
		return 0;
	r->left--;
	return *r->data++;
}

/* A heap copy of exactly n bytes (fewer when the input runs out); NULL when n is 0. */
static uint8_t* take(reader* r, size_t n, size_t* got)
{
	if (n > r->left)
		n = r->left;
	*got = n;
	if (n == 0)
		return NULL;
	uint8_t* p = malloc(n);
	CHECK(p != NULL);
	memcpy(p, r->data, n);
	r->data += n;
	r->left -= n;
	return p;
}

/* A piece whose length is the next byte (0…255). */
static uint8_t* take_piece(reader* r, size_t* got)
{
	return take(r, take_byte(r), got);
}

/* The rest of the input. */
static uint8_t* take_rest(reader* r, size_t* got)
{
	return take(r, r->left, got);
}

/* Exactly n bytes, zero-padded when the input runs out (for fixed-size arguments). */
static uint8_t* take_fixed(reader* r, size_t n)
{
	uint8_t* p = calloc(1, n);
	CHECK(p != NULL);
	size_t k = n < r->left ? n : r->left;
	memcpy(p, r->data, k);
	r->data += k;
	r->left -= k;
	return p;
}

static uint8_t* out_block(size_t n)
{
	uint8_t* p = malloc(n == 0 ? 1 : n);
	CHECK(p != NULL);
	memset(p, 0xa5, n == 0 ? 1 : n); /* not zero: a "wiped" check then means something */
	return p;
}

static int all_zero(const uint8_t* p, size_t n)
{
	uint8_t acc = 0;
	for (size_t i = 0; i < n; i++)
		acc |= p[i];
	return acc == 0;
}

/*
 * After a failure: the output holds no secret — wiped (all zero), or never written (still the
 * 0xa5 fill of out_block: a refusal of the arguments before any work).
 */
static int wiped_or_untouched(const uint8_t* p, size_t n)
{
	int untouched = 1;
	for (size_t i = 0; i < n; i++)
		untouched &= p[i] == 0xa5;
	return untouched || all_zero(p, n);
}

static void check_status(cf_status s)
{
	CHECK(s >= CF_OK && s <= CF_ERR_INTERNAL);
	CHECK(cf_status_name(s) != NULL);
	/* PSA running out of memory or failing inside is not a fuzzing result we accept either. */
	CHECK(s != CF_ERR_NO_MEMORY && s != CF_ERR_INTERNAL && s != CF_ERR_UNAVAILABLE);
}

/* ---- fixtures made once ---- */

static const uint8_t fixed_key[CF_AES128_KEY_BYTES] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
static const uint8_t fixed_iv[CF_GCM_IV_BYTES] = { 0xc0, 0x5e, 0xf1, 0x0, 1, 2, 3, 4, 5, 6, 7, 8 };
static const uint8_t fixed_aad[] = "Encrypt0 fuzz aad";
static const uint8_t fixed_plain[] = "{\"temperature\": 21.5, \"uptime\": 1234}";
static uint8_t fixed_sealed[sizeof fixed_plain + CF_GCM_TAG_BYTES];
static const uint8_t fixed_cek[16] = { 0xca, 0xfe, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14 };
static uint8_t fixed_wrapped[sizeof fixed_cek + 8];
static cf_p256_key fixed_p256;
static const uint8_t fixed_message[] = "Signature1 fuzz message";
static uint8_t fixed_signature[CF_P256_SIGNATURE_BYTES];
static uint8_t fixed_signature_high_s[CF_P256_SIGNATURE_BYTES];

/* n of P-256, big-endian. */
static const uint8_t p256_n[32] = { 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xff, 0xff, 0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51 };

/* out = n - s (32-byte big-endian): the other s ECDSA accepts for the same (r, message, key). */
static void negate_mod_n(const uint8_t s[32], uint8_t out[32])
{
	int borrow = 0;
	for (int i = 31; i >= 0; i--) {
		int v = (int)p256_n[i] - (int)s[i] - borrow;
		borrow = v < 0;
		out[i] = (uint8_t)(v + (borrow ? 256 : 0));
	}
}

static void setup(void)
{
	CHECK(cf_crypto_init() == CF_OK);
	CHECK(cf_aes_gcm_encrypt(fixed_key, fixed_iv, fixed_plain, sizeof fixed_plain, fixed_aad, sizeof fixed_aad,
			  fixed_sealed)
		== CF_OK);
	CHECK(cf_aes_key_wrap(fixed_key, fixed_cek, sizeof fixed_cek, fixed_wrapped) == CF_OK);
	uint8_t d[32];
	memset(d, 0x42, sizeof d);
	CHECK(cf_p256_import(&fixed_p256, d) == CF_OK);
	CHECK(cf_ecdsa_p256_sign(&fixed_p256, fixed_message, sizeof fixed_message, fixed_signature) == CF_OK);
	memcpy(fixed_signature_high_s, fixed_signature, 32);
	negate_mod_n(fixed_signature + 32, fixed_signature_high_s + 32);
}

/* XORs the input over a copy of `valid` (and may truncate or extend it): a mutated message. */
static uint8_t* mutate(reader* r, const uint8_t* valid, size_t valid_length, size_t* length)
{
	uint8_t mode = take_byte(r);
	size_t n = valid_length;
	if (mode & 1)
		n = take_byte(r) % (valid_length + 9); /* truncate or extend by up to 8 bytes */
	uint8_t* p = malloc(n == 0 ? 1 : n);
	CHECK(p != NULL);
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)((i < valid_length ? valid[i] : 0) ^ take_byte(r));
	*length = n;
	return p;
}

/* ---- one function per entry point ---- */

static void fuzz_sha256(reader* r)
{
	size_t n;
	uint8_t* data = take_rest(r, &n);
	uint8_t* digest = out_block(CF_SHA256_BYTES);
	check_status(cf_sha256(data, n, digest));
	free(data);
	free(digest);
}

static void fuzz_hmac(reader* r)
{
	size_t kn, n;
	uint8_t* key = take_piece(r, &kn);
	uint8_t* data = take_rest(r, &n);
	uint8_t* mac = out_block(CF_SHA256_BYTES);
	cf_status s = cf_hmac_sha256(key, kn, data, n, mac);
	check_status(s);
	CHECK(s == CF_OK);
	free(key);
	free(data);
	free(mac);
}

static void fuzz_hkdf(reader* r)
{
	size_t out_length = ((size_t)take_byte(r) << 8 | take_byte(r)) % (CF_HKDF_SHA256_MAX_BYTES + 40);
	size_t in, sn, fn;
	uint8_t* ikm = take_piece(r, &in);
	uint8_t* salt = take_piece(r, &sn);
	uint8_t* info = take_rest(r, &fn);
	uint8_t* out = out_block(out_length);
	cf_status s = cf_hkdf_sha256(ikm, in, salt, sn, info, fn, out_length == 0 ? NULL : out, out_length);
	check_status(s);
	if (out_length >= 1 && out_length <= CF_HKDF_SHA256_MAX_BYTES)
		CHECK(s == CF_OK);
	else
		CHECK(s == CF_ERR_BAD_INPUT);
	free(ikm);
	free(salt);
	free(info);
	free(out);
}

static void fuzz_gcm_encrypt(reader* r)
{
	uint8_t* key = take_fixed(r, CF_AES128_KEY_BYTES);
	uint8_t* iv = take_fixed(r, CF_GCM_IV_BYTES);
	size_t an, pn;
	uint8_t* aad = take_piece(r, &an);
	uint8_t* plain = take_rest(r, &pn);
	uint8_t* sealed = out_block(pn + CF_GCM_TAG_BYTES);
	cf_status s = cf_aes_gcm_encrypt(key, iv, plain, pn, aad, an, sealed);
	check_status(s);
	CHECK(s == CF_OK);
	uint8_t* back = out_block(pn);
	s = cf_aes_gcm_decrypt(key, iv, sealed, pn + CF_GCM_TAG_BYTES, aad, an, pn == 0 ? NULL : back);
	CHECK(s == CF_OK);
	CHECK(pn == 0 || memcmp(back, plain, pn) == 0);
	free(key);
	free(iv);
	free(aad);
	free(plain);
	free(sealed);
	free(back);
}

static void fuzz_gcm_decrypt(reader* r)
{
	uint8_t mode = take_byte(r);
	if (mode & 1) {
		/* Arbitrary key, IV, AAD, sealed bytes. */
		uint8_t* key = take_fixed(r, CF_AES128_KEY_BYTES);
		uint8_t* iv = take_fixed(r, CF_GCM_IV_BYTES);
		size_t an, sn;
		uint8_t* aad = take_piece(r, &an);
		uint8_t* sealed = take_rest(r, &sn);
		size_t on = sn >= CF_GCM_TAG_BYTES ? sn - CF_GCM_TAG_BYTES : 0;
		uint8_t* out = out_block(on);
		cf_status s = cf_aes_gcm_decrypt(key, iv, sealed, sn, aad, an, on == 0 ? NULL : out);
		check_status(s);
		CHECK(s == CF_ERR_DECRYPT_FAILED || s == CF_OK);
		if (s != CF_OK)
			CHECK(wiped_or_untouched(out, on));
		free(key);
		free(iv);
		free(aad);
		free(sealed);
		free(out);
		return;
	}
	/* The valid message, mutated; the key, IV and AAD right. */
	size_t sn;
	uint8_t* sealed = mutate(r, fixed_sealed, sizeof fixed_sealed, &sn);
	size_t on = sn >= CF_GCM_TAG_BYTES ? sn - CF_GCM_TAG_BYTES : 0;
	uint8_t* out = out_block(on);
	cf_status s = cf_aes_gcm_decrypt(fixed_key, fixed_iv, sealed, sn, fixed_aad, sizeof fixed_aad, on == 0 ? NULL : out);
	check_status(s);
	if (s == CF_OK) {
		CHECK(sn == sizeof fixed_sealed && memcmp(sealed, fixed_sealed, sn) == 0); /* no forgery */
		CHECK(memcmp(out, fixed_plain, on) == 0);
	} else {
		CHECK(s == CF_ERR_DECRYPT_FAILED);
		CHECK(wiped_or_untouched(out, on));
	}
	free(sealed);
	free(out);
}

static void fuzz_key_wrap(reader* r)
{
	uint8_t* kek = take_fixed(r, CF_AES128_KEY_BYTES);
	size_t n;
	uint8_t* key = take_rest(r, &n);
	uint8_t* wrapped = out_block(n + 8);
	cf_status s = cf_aes_key_wrap(kek, key, n, wrapped);
	check_status(s);
	if (n >= 16 && n % 8 == 0) {
		CHECK(s == CF_OK);
		uint8_t* back = out_block(n);
		CHECK(cf_aes_key_unwrap(kek, wrapped, n + 8, back) == CF_OK);
		CHECK(memcmp(back, key, n) == 0);
		free(back);
	} else {
		CHECK(s == CF_ERR_BAD_INPUT);
	}
	free(kek);
	free(key);
	free(wrapped);
}

static void fuzz_key_unwrap(reader* r)
{
	uint8_t mode = take_byte(r);
	const uint8_t* kek = fixed_key;
	uint8_t* own_kek = NULL;
	uint8_t* wrapped;
	size_t n;
	if (mode & 1) {
		own_kek = take_fixed(r, CF_AES128_KEY_BYTES);
		kek = own_kek;
		wrapped = take_rest(r, &n);
	} else {
		wrapped = mutate(r, fixed_wrapped, sizeof fixed_wrapped, &n);
	}
	size_t on = n >= 8 ? n - 8 : 0;
	uint8_t* out = out_block(on);
	cf_status s = cf_aes_key_unwrap(kek, wrapped, n, on == 0 ? NULL : out);
	check_status(s);
	if (n < 24 || n % 8 != 0)
		CHECK(s == CF_ERR_BAD_INPUT);
	else if (s == CF_OK) {
		if (own_kek == NULL) {
			CHECK(n == sizeof fixed_wrapped && memcmp(wrapped, fixed_wrapped, n) == 0); /* no forgery */
			CHECK(memcmp(out, fixed_cek, on) == 0);
		}
	} else {
		CHECK(s == CF_ERR_DECRYPT_FAILED);
		CHECK(wiped_or_untouched(out, on));
	}
	free(own_kek);
	free(wrapped);
	free(out);
}

static void fuzz_p256_import(reader* r)
{
	uint8_t* d = take_fixed(r, CF_P256_SCALAR_BYTES);
	cf_p256_key* key = malloc(sizeof *key);
	CHECK(key != NULL);
	cf_status s = cf_p256_import(key, d);
	check_status(s);
	CHECK(s == CF_OK || s == CF_ERR_BAD_KEY);
	if (s == CF_OK) {
		/* d·G agrees with ECDH against the fixed key both ways, and it signs verifiably. */
		uint8_t a[32], b[32], sig[64];
		CHECK(cf_ecdh_p256(key, fixed_p256.public_key, 65, a) == CF_OK);
		CHECK(cf_ecdh_p256(&fixed_p256, key->public_key, 65, b) == CF_OK);
		CHECK(memcmp(a, b, 32) == 0);
		CHECK(cf_ecdsa_p256_sign(key, d, 32, sig) == CF_OK);
		CHECK(cf_ecdsa_p256_verify(key->public_key, 65, d, 32, sig, 64) == CF_OK);
	}
	cf_p256_key_wipe(key);
	CHECK(all_zero((const uint8_t*)key, sizeof *key));
	free(key);
	free(d);
}

static void fuzz_scalar_from_seed(reader* r)
{
	uint8_t* seed = take_fixed(r, CF_P256_SEED_BYTES);
	uint8_t* d = out_block(CF_P256_SCALAR_BYTES);
	cf_p256_scalar_from_seed(seed, d);
	cf_p256_key key;
	CHECK(cf_p256_import(&key, d) == CF_OK); /* always 1 <= d < n */
	cf_p256_key_wipe(&key);
	free(seed);
	free(d);
}

static void fuzz_ecdsa_sign(reader* r)
{
	uint8_t* d = take_fixed(r, CF_P256_SCALAR_BYTES);
	size_t n;
	uint8_t* message = take_rest(r, &n);
	cf_p256_key key;
	if (cf_p256_import(&key, d) == CF_OK) {
		uint8_t* sig = out_block(CF_P256_SIGNATURE_BYTES);
		cf_status s = cf_ecdsa_p256_sign(&key, message, n, sig);
		check_status(s);
		CHECK(s == CF_OK);
		CHECK(cf_ecdsa_p256_verify(key.public_key, 65, message, n, sig, 64) == CF_OK);
		free(sig);
	}
	cf_p256_key_wipe(&key);
	free(d);
	free(message);
}

static void fuzz_ecdsa_verify(reader* r)
{
	uint8_t mode = take_byte(r);
	if (mode % 3 == 0) {
		/* Arbitrary public key, message, signature (any lengths). */
		size_t pn, sn, mn;
		uint8_t* pub = take_piece(r, &pn);
		uint8_t* sig = take_piece(r, &sn);
		uint8_t* message = take_rest(r, &mn);
		cf_status s = cf_ecdsa_p256_verify(pub, pn, message, mn, sig, sn);
		check_status(s);
		CHECK(s == CF_OK || s == CF_ERR_BAD_SIGNATURE);
		free(pub);
		free(sig);
		free(message);
		return;
	}
	/* The fixed key and message with a mutated signature, or the fixed signature over a mutated
	 * message (or a mutated key): whatever verifies must be the original (or its high-S twin). */
	size_t n;
	const uint8_t* pub = fixed_p256.public_key;
	const uint8_t* message = fixed_message;
	const uint8_t* sig = fixed_signature;
	size_t pn = 65, mn = sizeof fixed_message, sn = 64;
	uint8_t* mutated;
	int which = take_byte(r) % 3;
	if (which == 0) {
		mutated = mutate(r, fixed_signature, 64, &n);
		sig = mutated;
		sn = n;
	} else if (which == 1) {
		mutated = mutate(r, fixed_message, sizeof fixed_message, &n);
		message = mutated;
		mn = n;
	} else {
		mutated = mutate(r, fixed_p256.public_key, 65, &n);
		pub = mutated;
		pn = n;
	}
	cf_status s = cf_ecdsa_p256_verify(pub, pn, message, mn, sig, sn);
	check_status(s);
	CHECK(s == CF_OK || s == CF_ERR_BAD_SIGNATURE);
	if (s == CF_OK) {
		if (which == 0)
			CHECK(n == 64
				&& (memcmp(mutated, fixed_signature, 64) == 0 || memcmp(mutated, fixed_signature_high_s, 64) == 0));
		else if (which == 1)
			CHECK(n == sizeof fixed_message && memcmp(mutated, fixed_message, n) == 0);
		else
			CHECK(n == 65 && memcmp(mutated, fixed_p256.public_key, 65) == 0);
	}
	free(mutated);
}

static void fuzz_ecdh(reader* r)
{
	size_t pn;
	uint8_t* peer;
	uint8_t mode = take_byte(r);
	if (mode & 1)
		peer = take_rest(r, &pn);
	else
		peer = mutate(r, fixed_p256.public_key, 65, &pn); /* near-valid points: off-curve by a bit */
	uint8_t* shared = out_block(CF_P256_SCALAR_BYTES);
	cf_status s = cf_ecdh_p256(&fixed_p256, peer, pn, shared);
	check_status(s);
	CHECK(s == CF_OK || s == CF_ERR_BAD_KEY || s == CF_ERR_BAD_INPUT);
	if (s != CF_OK)
		CHECK(wiped_or_untouched(shared, CF_P256_SCALAR_BYTES));
	else
		CHECK(pn == 65 && peer[0] == 0x04);
	free(peer);
	free(shared);
}

static void fuzz_equal(reader* r)
{
	size_t n;
	uint8_t* data = take_rest(r, &n);
	size_t half = n / 2;
	if (half > 0) {
		int expect = memcmp(data, data + half, half) == 0;
		CHECK(cf_equal(data, data + half, half) == expect);
		CHECK(cf_equal(data, data, half) == 1);
		cf_wipe(data, n);
		CHECK(all_zero(data, n));
	}
	free(data);
}

typedef struct {
	const char* name;
	void (*run)(reader*);
} target;

static const target targets[] = {
	{ "sha256", fuzz_sha256 },
	{ "hmac-sha256", fuzz_hmac },
	{ "hkdf-sha256", fuzz_hkdf },
	{ "gcm-encrypt", fuzz_gcm_encrypt },
	{ "gcm-decrypt", fuzz_gcm_decrypt },
	{ "key-wrap", fuzz_key_wrap },
	{ "key-unwrap", fuzz_key_unwrap },
	{ "p256-import", fuzz_p256_import },
	{ "scalar-from-seed", fuzz_scalar_from_seed },
	{ "ecdsa-sign", fuzz_ecdsa_sign },
	{ "ecdsa-verify", fuzz_ecdsa_verify },
	{ "ecdh", fuzz_ecdh },
	{ "equal-wipe", fuzz_equal },
};
#define TARGET_COUNT (sizeof targets / sizeof targets[0])

static const target* chosen; /* NULL: "all" */

int LLVMFuzzerInitialize(int* argc, char*** argv);
int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int LLVMFuzzerInitialize(int* argc, char*** argv)
{
	(void)argc;
	(void)argv;
	const char* name = getenv("CF_FUZZ_TARGET");
	if (name == NULL || strcmp(name, "list") == 0) {
		for (size_t i = 0; i < TARGET_COUNT; i++)
			printf("%s\n", targets[i].name);
		if (name != NULL)
			exit(0);
		fprintf(stderr, "cf-fuzz: set CF_FUZZ_TARGET to one of the names above, or \"all\"\n");
		exit(2);
	}
	if (strcmp(name, "all") != 0) {
		for (size_t i = 0; i < TARGET_COUNT && chosen == NULL; i++)
			if (strcmp(targets[i].name, name) == 0)
				chosen = &targets[i];
		if (chosen == NULL) {
			fprintf(stderr, "cf-fuzz: unknown CF_FUZZ_TARGET %s\n", name);
			exit(2);
		}
	}
	setup();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
	reader r = { data, size };
	const target* t = chosen;
	if (t == NULL)
		t = &targets[take_byte(&r) % TARGET_COUNT];
	t->run(&r);
	return 0;
}
