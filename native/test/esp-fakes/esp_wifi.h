/* Fake esp_wifi.h (host tests): whether Wi-Fi was initialised, and in which mode. */
#pragma once
#include "esp_err.h"
#define ESP_ERR_WIFI_NOT_INIT (0x3000 + 1)
typedef enum { WIFI_MODE_NULL = 0, WIFI_MODE_STA, WIFI_MODE_AP, WIFI_MODE_APSTA } wifi_mode_t;
esp_err_t esp_wifi_get_mode(wifi_mode_t* mode);
