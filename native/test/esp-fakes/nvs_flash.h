/* Fake nvs_flash.h (host tests): ESP-IDF's signatures (no NVS encryption). */
#pragma once
#include "nvs.h"
esp_err_t nvs_flash_init(void);
esp_err_t nvs_flash_init_partition(const char* partition_label);
