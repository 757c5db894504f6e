/*
 * The device's identity from its hardware unique key (HUK): a P-256 key pair and a stable
 * 16-byte device id, derived the same way on every platform. Only the source of one HMAC differs:
 *
 *   ESP32-S2/S3/C3/C6/H2… (SOC_HMAC_SUPPORTED)  esp_hmac_calculate with an eFuse key block whose
 *       purpose is HMAC_UP and whose software read-out is disabled (anything else is refused, with
 *       a log line): the key never leaves the chip, is not in flash, and survives firmware
 *       updates. It must be provisioned (native/README.md).
 *   ESP32 (no HMAC peripheral)  a 32-byte random secret made once (with the bootloader's entropy
 *       source on) and kept in an NVS partition of its own, "cf_huk" (native/partitions.csv),
 *       which the SDK's Preference cannot open; HMAC'd in software. Secret only with flash
 *       encryption and NVS encryption enabled.
 *   Host (Linux, macOS)  the same from a 32-byte file (COSE_FLOW_HUK_FILE): a development
 *       stand-in, protected by file permissions only.
 *
 * Derivation (cf_device_identity_from_secret):
 *   S  = HMAC-SHA-256(HUK, "cose-flow/1 device secret")        32 bytes, from the platform source
 *   c  = HKDF-SHA-256(ikm = S, salt = none, info = "cose-flow/1 device key P-256", L = 48)
 *   d  = (c mod (n - 1)) + 1                                  FIPS 186-5 A.2.1
 *   id = HKDF-SHA-256(ikm = S, salt = none, info = "cose-flow/1 device id", L = 16)
 */
#ifndef CF_DEVICE_KEY_H
#define CF_DEVICE_KEY_H

#include "cf_crypto.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CF_DEVICE_ID_BYTES 16
#define CF_DEVICE_SECRET_BYTES CF_SHA256_BYTES

#define CF_DEVICE_SECRET_LABEL "cose-flow/1 device secret"
#define CF_DEVICE_KEY_INFO "cose-flow/1 device key P-256"
#define CF_DEVICE_ID_INFO "cose-flow/1 device id"

/*
 * The device key and id (either pointer may be NULL). CF_ERR_UNAVAILABLE when the platform's
 * secret is missing: the eFuse key block is not provisioned (or not HMAC_UP and read-protected),
 * the NVS partition is missing or cannot be opened, the host file cannot be read or made.
 */
cf_status cf_device_identity(cf_p256_key* key, uint8_t id[CF_DEVICE_ID_BYTES]);

/* The derivation alone, from S (the HMAC output above); the same code on every platform. */
cf_status cf_device_identity_from_secret(const uint8_t secret[CF_DEVICE_SECRET_BYTES], cf_p256_key* key,
	uint8_t id[CF_DEVICE_ID_BYTES]);

/* Where S comes from in this build: "efuse-hmac", "nvs" or "file". */
const char* cf_device_secret_source(void);

#ifdef __cplusplus
}
#endif

#endif /* CF_DEVICE_KEY_H */
