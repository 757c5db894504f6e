/*
 * Fake ESP-IDF for host tests of the ESP32 paths of native/crypto (test-only; never in a device
 * build). Each fake records what it was asked in a trace (stdout, "call ..." lines) and keeps its
 * state in memory, so a test program can set up a chip (HMAC or not, eFuse key purpose and read
 * protection, NVS contents) and check what the code under test did.
 */
#ifndef ESP_FAKES_H
#define ESP_FAKES_H

#include <stddef.h>
#include <stdint.h>

/* eFuse: the purpose and read protection of every key block (index 0..5). */
void fake_efuse_set(int key, int purpose, int readProtected);

/* NVS: put or read a blob; partition "nvs" is the default one. fake_nvs_get returns its length or -1. */
void fake_nvs_put(const char* partition, const char* space, const char* key, const uint8_t* value, size_t length);
int fake_nvs_get(const char* partition, const char* space, const char* key, uint8_t* value, size_t capacity);
/* Whether the partition exists in the partition table (default: "nvs" and "cf_huk"). */
void fake_nvs_partition_exists(const char* partition, int exists);
/* Makes the n-th next nvs_set_blob fail (1 = the next one); 0 = none. */
void fake_nvs_fail_set(int n);
/* Prints every blob as "nvs PARTITION/NAMESPACE/KEY HEX". */
void fake_nvs_dump(void);

/* Wi-Fi: -1 not initialised (the default), else the wifi_mode_t it runs in (0 = WIFI_MODE_NULL). */
void fake_wifi_set(int mode);

/*
 * Counters. A draw has an entropy source while the bootloader's is enabled or the radio runs; an
 * enable while the radio runs is unsafe (ESP-IDF: not while anything else uses RF or the ADC).
 */
extern int fake_random_calls, fake_random_calls_without_entropy, fake_bootloader_random_enabled;
extern int fake_unsafe_enables;

#endif
