/*
 * Runs the ESP32 paths of native/crypto/cf_device_key.c on the host against the fakes of
 * esp_fakes.h. The arguments are steps, run in order; everything is printed to stdout:
 *
 *   efuse K PURPOSE READPROTECTED     set eFuse key block K (0..5)
 *   put PARTITION NAMESPACE KEY HEX   an NVS blob
 *   nopartition PARTITION             the partition table has no such partition
 *   failset N                         the N-th next nvs_set_blob fails
 *   wifi MODE                         Wi-Fi initialised in wifi_mode_t MODE (0 = NULL, 1 = STA, ...)
 *   identity                          cf_device_identity: "identity SOURCE ID PUBLIC" or "identity failed NAME"
 *   dump                              "nvs PARTITION/NAMESPACE/KEY HEX" for every blob
 *   mark TEXT                         "mark TEXT"
 *
 * then "random calls=N without-entropy=M unsafe-enables=K".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cf_device_key.h"
#include "esp_fakes.h"

static void hex(const uint8_t* bytes, size_t length)
{
	for (size_t i = 0; i < length; i++)
		printf("%02x", bytes[i]);
}

static size_t unhex(const char* text, uint8_t* out, size_t capacity)
{
	size_t n = strlen(text) / 2;
	if (n > capacity)
		n = capacity;
	for (size_t i = 0; i < n; i++) {
		unsigned value;
		sscanf(text + 2 * i, "%2x", &value);
		out[i] = (uint8_t)value;
	}
	return n;
}

int main(int argc, char** argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (int i = 1; i < argc; i++) {
		const char* step = argv[i];
		if (!strcmp(step, "efuse") && (i + 3 < argc)) {
			fake_efuse_set(atoi(argv[i + 1]), atoi(argv[i + 2]), atoi(argv[i + 3]));
			i += 3;
		}
		else if (!strcmp(step, "put") && (i + 4 < argc)) {
			uint8_t value[64];
			size_t length = unhex(argv[i + 4], value, sizeof(value));
			fake_nvs_put(argv[i + 1], argv[i + 2], argv[i + 3], value, length);
			i += 4;
		}
		else if (!strcmp(step, "nopartition") && (i + 1 < argc))
			fake_nvs_partition_exists(argv[++i], 0);
		else if (!strcmp(step, "failset") && (i + 1 < argc))
			fake_nvs_fail_set(atoi(argv[++i]));
		else if (!strcmp(step, "wifi") && (i + 1 < argc))
			fake_wifi_set(atoi(argv[++i]));
		else if (!strcmp(step, "identity")) {
			cf_p256_key key;
			uint8_t id[CF_DEVICE_ID_BYTES];
			cf_status status = cf_device_identity(&key, id);
			if (status == CF_OK) {
				printf("identity %s ", cf_device_secret_source());
				hex(id, sizeof(id));
				printf(" ");
				hex(key.public_key, sizeof(key.public_key));
				printf("\n");
			}
			else
				printf("identity failed %s\n", cf_status_name(status));
			cf_p256_key_wipe(&key);
		}
		else if (!strcmp(step, "dump"))
			fake_nvs_dump();
		else if (!strcmp(step, "mark") && (i + 1 < argc))
			printf("mark %s\n", argv[++i]);
		else {
			fprintf(stderr, "device-key-esp-test: bad step %s\n", step);
			return 2;
		}
	}
	printf("random calls=%d without-entropy=%d unsafe-enables=%d\n", fake_random_calls,
		fake_random_calls_without_entropy, fake_unsafe_enables);
	return 0;
}
