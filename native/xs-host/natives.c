/*
 * The host functions that JavaScript reaches with `native(name)` and the host destructors that
 * `Native(name)` builds classes on, as the Moddable SDK binds `@ "name"` declarations at link
 * time. A native module adds its entries here; its C file sees XS only through xsmc.h.
 */
#include "host.h"

/* native/moddable/xs_cf_random.c */
extern void xs_cf_random(xsMachine* the);
extern void xs_cf_get_random_values(xsMachine* the);

/* native/moddable/xs_cf_crypto.c */
extern void xs_cf_sha256(xsMachine* the);
extern void xs_cf_hmac_sha256(xsMachine* the);
extern void xs_cf_hkdf_sha256(xsMachine* the);
extern void xs_cf_aes_gcm_encrypt(xsMachine* the);
extern void xs_cf_aes_gcm_decrypt(xsMachine* the);
extern void xs_cf_aes_key_wrap(xsMachine* the);
extern void xs_cf_aes_key_unwrap(xsMachine* the);
extern void xs_cf_p256_key_destructor(void* data);
extern void xs_cf_p256_key_generate(xsMachine* the);
extern void xs_cf_p256_key_import(xsMachine* the);
extern void xs_cf_p256_key_device(xsMachine* the);
extern void xs_cf_device_id(xsMachine* the);
extern void xs_cf_device_secret_source(xsMachine* the);
extern void xs_cf_ecdsa_sign(xsMachine* the);
extern void xs_cf_ecdsa_verify(xsMachine* the);
extern void xs_cf_ecdh(xsMachine* the);

const xsHostNative gxHostNatives[] = {
	{ "xs_cf_random", xs_cf_random, 1 },
	{ "xs_cf_get_random_values", xs_cf_get_random_values, 1 },
	{ "xs_cf_sha256", xs_cf_sha256, 1 },
	{ "xs_cf_hmac_sha256", xs_cf_hmac_sha256, 2 },
	{ "xs_cf_hkdf_sha256", xs_cf_hkdf_sha256, 4 },
	{ "xs_cf_aes_gcm_encrypt", xs_cf_aes_gcm_encrypt, 4 },
	{ "xs_cf_aes_gcm_decrypt", xs_cf_aes_gcm_decrypt, 4 },
	{ "xs_cf_aes_key_wrap", xs_cf_aes_key_wrap, 2 },
	{ "xs_cf_aes_key_unwrap", xs_cf_aes_key_unwrap, 2 },
	{ "xs_cf_p256_key_generate", xs_cf_p256_key_generate, 0 },
	{ "xs_cf_p256_key_import", xs_cf_p256_key_import, 1 },
	{ "xs_cf_p256_key_device", xs_cf_p256_key_device, 0 },
	{ "xs_cf_device_id", xs_cf_device_id, 0 },
	{ "xs_cf_device_secret_source", xs_cf_device_secret_source, 0 },
	{ "xs_cf_ecdsa_sign", xs_cf_ecdsa_sign, 1 },
	{ "xs_cf_ecdsa_verify", xs_cf_ecdsa_verify, 3 },
	{ "xs_cf_ecdh", xs_cf_ecdh, 1 },
	{ NULL, NULL, 0 },
};

const xsHostDestructor gxHostDestructors[] = {
	{ "xs_cf_p256_key_destructor", xs_cf_p256_key_destructor },
	{ NULL, NULL },
};
