/*
 * XS bindings of the native crypto (native/crypto/cf_crypto.h), in the Moddable SDK's style:
 * host functions over xsmc.h that JavaScript reaches with native("xs_cf_…"), and the P-256 key
 * as a host object of a `class … extends Native("xs_cf_p256_key_destructor")`, whose C state is
 * wiped and freed by that destructor. src/moddable/native-crypto.ts wraps all of it into the
 * CryptoProvider interface.
 *
 * Byte strings come in as an ArrayBuffer or a Uint8Array and go out as a new ArrayBuffer.
 * Arguments are checked here too, not only in TypeScript: a wrong type throws a TypeError, a
 * wrong size a RangeError, each naming the function and the argument. Outcomes that the protocol
 * expects from untrusted input are values, not exceptions: decryption that fails authentication
 * and ECDH with a point not on the curve return undefined, verify returns false.
 *
 * XS may move chunks (ArrayBuffer contents) whenever it allocates. Every function here therefore
 * checks its arguments, then allocates its result, then takes the data pointers and runs the C,
 * with no XS call in between.
 */
#include "xsmc.h"

#include <stdlib.h>
#include <string.h>

#include "cf_crypto.h"
#include "cf_device_key.h"

void xs_cf_p256_key_destructor(void* data);

/* ---- arguments and results ---- */

static void requireArguments(xsMachine* the, const char* function, xsIntegerValue count)
{
	if (xsmcArgc < count)
		xsTypeError("%s: expected %d arguments, got %d", function, (int)count, (int)xsmcArgc);
}

/* The size of argument `index`, which must be an ArrayBuffer or a byte-sized typed array. */
static size_t bytesLength(xsMachine* the, xsIntegerValue index, const char* function, const char* name)
{
	void* data;
	xsUnsignedValue length;
	if ((xsmcTypeOf(xsArg(index)) != xsReferenceType) ||
		!(xsmcIsInstanceOf(xsArg(index), xsArrayBufferPrototype) ||
			xsmcIsInstanceOf(xsArg(index), xsTypedArrayPrototype)))
		xsTypeError("%s: %s must be an ArrayBuffer or a Uint8Array", function, name);
	xsmcGetBufferReadable(xsArg(index), &data, &length); /* throws for a wider typed array */
	return (size_t)length;
}

static size_t bytesLengthExactly(xsMachine* the, xsIntegerValue index, const char* function, const char* name,
	size_t expected)
{
	size_t length = bytesLength(the, index, function, name);
	if (length != expected)
		xsRangeError("%s: %s must be %d bytes, got %d", function, name, (int)expected, (int)length);
	return length;
}

/* The data of an argument that bytesLength accepted. Valid until XS allocates again. */
static const uint8_t* bytesOf(xsMachine* the, xsIntegerValue index)
{
	void* data;
	xsUnsignedValue length;
	xsmcGetBufferReadable(xsArg(index), &data, &length);
	return (const uint8_t*)data;
}

/* A new ArrayBuffer of `length` bytes as the result; its data is taken later with resultBytes. */
static void newResult(xsMachine* the, size_t length)
{
	if (length > 0x7FFFFFFF)
		xsRangeError("result too large");
	xsmcSetArrayBuffer(xsResult, NULL, (xsIntegerValue)length);
}

static uint8_t* resultBytes(xsMachine* the)
{
	return (uint8_t*)xsmcToArrayBuffer(xsResult);
}

/* A non-negative integer argument no larger than `max`. */
static size_t lengthArgument(xsMachine* the, xsIntegerValue index, const char* function, const char* name, size_t max)
{
	xsNumberValue value;
	xsType type = xsmcTypeOf(xsArg(index));
	if ((type != xsIntegerType) && (type != xsNumberType))
		xsTypeError("%s: %s must be a number", function, name);
	value = xsmcToNumber(xsArg(index));
	if (!(value >= 0) || (value > (xsNumberValue)max) || (value != (xsNumberValue)(size_t)value))
		xsRangeError("%s: %s must be an integer from 0 to %lu", function, name, (unsigned long)max);
	return (size_t)value;
}

/* Throws for a status that is a failure of the call itself, not an expected outcome. */
static void throwStatus(xsMachine* the, const char* function, cf_status status)
{
	switch (status) {
	case CF_ERR_BAD_INPUT:
		xsRangeError("%s: input out of range", function);
		break;
	case CF_ERR_BAD_KEY:
		xsRangeError("%s: not a valid P-256 key", function);
		break;
	case CF_ERR_NO_MEMORY:
		xsUnknownError("%s: the crypto library ran out of memory", function);
		break;
	case CF_ERR_UNAVAILABLE:
		xsUnknownError("%s: the entropy source or device secret is not available", function);
		break;
	default:
		xsUnknownError("%s: crypto library failure (%s)", function, cf_status_name(status));
		break;
	}
}

/* ---- hashing and key derivation ---- */

void xs_cf_sha256(xsMachine* the)
{
	static const char* const function = "sha256";
	size_t length;
	cf_status status;
	requireArguments(the, function, 1);
	length = bytesLength(the, 0, function, "data");
	newResult(the, CF_SHA256_BYTES);
	status = cf_sha256(bytesOf(the, 0), length, resultBytes(the));
	if (status != CF_OK)
		throwStatus(the, function, status);
}

void xs_cf_hmac_sha256(xsMachine* the)
{
	static const char* const function = "hmacSha256";
	size_t keyLength, length;
	cf_status status;
	requireArguments(the, function, 2);
	keyLength = bytesLength(the, 0, function, "key");
	length = bytesLength(the, 1, function, "data");
	newResult(the, CF_SHA256_BYTES);
	status = cf_hmac_sha256(bytesOf(the, 0), keyLength, bytesOf(the, 1), length, resultBytes(the));
	if (status != CF_OK)
		throwStatus(the, function, status);
}

void xs_cf_hkdf_sha256(xsMachine* the)
{
	static const char* const function = "hkdfSha256";
	size_t ikmLength, saltLength, infoLength, length;
	cf_status status;
	requireArguments(the, function, 4);
	ikmLength = bytesLength(the, 0, function, "ikm");
	saltLength = bytesLength(the, 1, function, "salt");
	infoLength = bytesLength(the, 2, function, "info");
	length = lengthArgument(the, 3, function, "length", CF_HKDF_SHA256_MAX_BYTES);
	if (length < 1)
		xsRangeError("%s: length must be an integer from 1 to %d", function, CF_HKDF_SHA256_MAX_BYTES);
	newResult(the, length);
	status = cf_hkdf_sha256(bytesOf(the, 0), ikmLength, bytesOf(the, 1), saltLength, bytesOf(the, 2), infoLength,
		resultBytes(the), length);
	if (status != CF_OK)
		throwStatus(the, function, status);
}

/* ---- AES ---- */

void xs_cf_aes_gcm_encrypt(xsMachine* the)
{
	static const char* const function = "aesGcmEncrypt";
	size_t length, aadLength;
	cf_status status;
	requireArguments(the, function, 4);
	bytesLengthExactly(the, 0, function, "key", CF_AES128_KEY_BYTES);
	bytesLengthExactly(the, 1, function, "iv", CF_GCM_IV_BYTES);
	length = bytesLength(the, 2, function, "plaintext");
	aadLength = bytesLength(the, 3, function, "aad");
	newResult(the, length + CF_GCM_TAG_BYTES);
	status = cf_aes_gcm_encrypt(bytesOf(the, 0), bytesOf(the, 1), bytesOf(the, 2), length, bytesOf(the, 3),
		aadLength, resultBytes(the));
	if (status != CF_OK)
		throwStatus(the, function, status);
}

/* Returns the plaintext, or undefined when the tag does not match. */
void xs_cf_aes_gcm_decrypt(xsMachine* the)
{
	static const char* const function = "aesGcmDecrypt";
	size_t length, aadLength;
	cf_status status;
	requireArguments(the, function, 4);
	bytesLengthExactly(the, 0, function, "key", CF_AES128_KEY_BYTES);
	bytesLengthExactly(the, 1, function, "iv", CF_GCM_IV_BYTES);
	length = bytesLength(the, 2, function, "ciphertext");
	aadLength = bytesLength(the, 3, function, "aad");
	if (length < CF_GCM_TAG_BYTES) {
		xsmcSetUndefined(xsResult);
		return;
	}
	newResult(the, length - CF_GCM_TAG_BYTES);
	status = cf_aes_gcm_decrypt(bytesOf(the, 0), bytesOf(the, 1), bytesOf(the, 2), length, bytesOf(the, 3),
		aadLength, resultBytes(the));
	if (status == CF_ERR_DECRYPT_FAILED)
		xsmcSetUndefined(xsResult);
	else if (status != CF_OK)
		throwStatus(the, function, status);
}

void xs_cf_aes_key_wrap(xsMachine* the)
{
	static const char* const function = "aesKeyWrap";
	size_t length;
	cf_status status;
	requireArguments(the, function, 2);
	bytesLengthExactly(the, 0, function, "kek", CF_AES128_KEY_BYTES);
	length = bytesLength(the, 1, function, "keyData");
	if ((length < 2 * CF_KEY_WRAP_SEMIBLOCK) || (length % CF_KEY_WRAP_SEMIBLOCK))
		xsRangeError("%s: keyData must be a multiple of 8 bytes, at least 16; got %d", function, (int)length);
	newResult(the, length + CF_KEY_WRAP_SEMIBLOCK);
	status = cf_aes_key_wrap(bytesOf(the, 0), bytesOf(the, 1), length, resultBytes(the));
	if (status != CF_OK)
		throwStatus(the, function, status);
}

/* Returns the key data, or undefined when the integrity check fails or the size cannot be a wrapped key. */
void xs_cf_aes_key_unwrap(xsMachine* the)
{
	static const char* const function = "aesKeyUnwrap";
	size_t length;
	cf_status status;
	requireArguments(the, function, 2);
	bytesLengthExactly(the, 0, function, "kek", CF_AES128_KEY_BYTES);
	length = bytesLength(the, 1, function, "wrapped");
	if ((length < 3 * CF_KEY_WRAP_SEMIBLOCK) || (length % CF_KEY_WRAP_SEMIBLOCK)) {
		xsmcSetUndefined(xsResult);
		return;
	}
	newResult(the, length - CF_KEY_WRAP_SEMIBLOCK);
	status = cf_aes_key_unwrap(bytesOf(the, 0), bytesOf(the, 1), length, resultBytes(the));
	if (status == CF_ERR_DECRYPT_FAILED)
		xsmcSetUndefined(xsResult);
	else if (status != CF_OK)
		throwStatus(the, function, status);
}

/* ---- P-256 keys: host objects of `class … extends Native("xs_cf_p256_key_destructor")` ---- */

void xs_cf_p256_key_destructor(void* data)
{
	if (data) {
		cf_p256_key_wipe((cf_p256_key*)data);
		free(data);
	}
}

/* The host data of `this`: NULL for a key not yet made. TypeError when `this` is no such host object. */
static cf_p256_key* hostKey(xsMachine* the, const char* function)
{
	void* volatile data = NULL;
	xsTry {
		data = xsmcGetHostDataValidate(xsThis, (void*)xs_cf_p256_key_destructor);
	}
	xsCatch {
		xsTypeError("%s: this is not a native P-256 key object", function);
	}
	return (cf_p256_key*)data;
}

static cf_p256_key* thisKey(xsMachine* the, const char* function)
{
	cf_p256_key* key = hostKey(the, function);
	if (!key)
		xsTypeError("%s: this native P-256 key was never made", function);
	return key;
}

static void requireUnmadeKey(xsMachine* the, const char* function)
{
	if (hostKey(the, function))
		xsTypeError("%s: this native P-256 key is already made", function);
}

/*
 * Makes the key of `this` with `make` (generate, import, device) and returns its public key.
 * The caller has checked `this` (requireUnmadeKey) and read every input already (`scalar`, wiped
 * here, for import; else NULL): nothing between the malloc and xsmcSetHostData may throw, or the
 * struct would leak. From then on it belongs to the host object: the destructor wipes and frees it.
 */
static void makeKey(xsMachine* the, const char* function, cf_status (*make)(cf_p256_key*, const uint8_t*),
	uint8_t* scalar)
{
	cf_p256_key* key = malloc(sizeof(cf_p256_key));
	cf_status status = key ? make(key, scalar) : CF_ERR_NO_MEMORY;
	if (scalar)
		cf_wipe(scalar, CF_P256_SCALAR_BYTES);
	if (status != CF_OK) {
		if (key) {
			cf_p256_key_wipe(key);
			free(key);
		}
		if (status == CF_ERR_UNAVAILABLE)
			xsUnknownError("%s: the device secret is not available (%s); see native/README.md", function,
				cf_device_secret_source());
		throwStatus(the, function, status);
	}
	xsmcSetHostData(xsThis, key);
	xsmcSetArrayBuffer(xsResult, key->public_key, CF_P256_PUBLIC_KEY_BYTES);
}

static cf_status generateKey(cf_p256_key* key, const uint8_t* scalar)
{
	(void)scalar;
	return cf_p256_generate(key);
}

static cf_status importKey(cf_p256_key* key, const uint8_t* scalar)
{
	return cf_p256_import(key, scalar);
}

static cf_status deviceKey(cf_p256_key* key, const uint8_t* scalar)
{
	(void)scalar;
	return cf_device_identity(key, NULL);
}

void xs_cf_p256_key_generate(xsMachine* the)
{
	static const char* const function = "p256Generate";
	requireUnmadeKey(the, function);
	makeKey(the, function, generateKey, NULL);
}

void xs_cf_p256_key_import(xsMachine* the)
{
	static const char* const function = "p256Import";
	uint8_t d[CF_P256_SCALAR_BYTES];
	requireArguments(the, function, 1);
	bytesLengthExactly(the, 0, function, "d", CF_P256_SCALAR_BYTES);
	requireUnmadeKey(the, function);
	/* Read before makeKey allocates: reading may throw (XS 13.3 reads a host object's byteLength). */
	memcpy(d, bytesOf(the, 0), CF_P256_SCALAR_BYTES);
	makeKey(the, function, importKey, d);
}

void xs_cf_p256_key_device(xsMachine* the)
{
	static const char* const function = "deviceKey";
	requireUnmadeKey(the, function);
	makeKey(the, function, deviceKey, NULL);
}

/* The device's stable 16-byte id, from the same secret as its key. */
void xs_cf_device_id(xsMachine* the)
{
	static const char* const function = "deviceId";
	uint8_t id[CF_DEVICE_ID_BYTES];
	cf_status status = cf_device_identity(NULL, id);
	if (status == CF_ERR_UNAVAILABLE)
		xsUnknownError("%s: the device secret is not available (%s); see native/README.md", function,
			cf_device_secret_source());
	if (status != CF_OK)
		throwStatus(the, function, status);
	xsmcSetArrayBuffer(xsResult, id, sizeof(id));
}

/* The source of the device secret in this build: "efuse-hmac", "nvs" or "file". */
void xs_cf_device_secret_source(xsMachine* the)
{
	xsmcSetString(xsResult, (char*)cf_device_secret_source());
}

void xs_cf_ecdsa_sign(xsMachine* the)
{
	static const char* const function = "ecdsaP256Sign";
	cf_p256_key* key = thisKey(the, function); /* C memory: it does not move when XS allocates */
	size_t length;
	cf_status status;
	requireArguments(the, function, 1);
	length = bytesLength(the, 0, function, "message");
	newResult(the, CF_P256_SIGNATURE_BYTES);
	status = cf_ecdsa_p256_sign(key, bytesOf(the, 0), length, resultBytes(the));
	if (status != CF_OK)
		throwStatus(the, function, status);
}

/* Returns the shared secret, or undefined when the peer is not an uncompressed point on P-256. */
void xs_cf_ecdh(xsMachine* the)
{
	static const char* const function = "ecdhP256";
	cf_p256_key* key = thisKey(the, function);
	size_t length;
	cf_status status;
	requireArguments(the, function, 1);
	length = bytesLength(the, 0, function, "peerPublicKey");
	newResult(the, CF_P256_SCALAR_BYTES);
	status = cf_ecdh_p256(key, bytesOf(the, 0), length, resultBytes(the));
	if (status == CF_ERR_BAD_KEY)
		xsmcSetUndefined(xsResult);
	else if (status != CF_OK)
		throwStatus(the, function, status);
}

/* true or false; a malformed key or signature is false. */
void xs_cf_ecdsa_verify(xsMachine* the)
{
	static const char* const function = "ecdsaP256Verify";
	size_t keyLength, length, signatureLength;
	cf_status status;
	requireArguments(the, function, 3);
	keyLength = bytesLength(the, 0, function, "publicKey");
	length = bytesLength(the, 1, function, "message");
	signatureLength = bytesLength(the, 2, function, "signature");
	status = cf_ecdsa_p256_verify(bytesOf(the, 0), keyLength, bytesOf(the, 1), length, bytesOf(the, 2),
		signatureLength);
	if ((status != CF_OK) && (status != CF_ERR_BAD_SIGNATURE))
		throwStatus(the, function, status);
	xsmcSetBoolean(xsResult, status == CF_OK);
}
