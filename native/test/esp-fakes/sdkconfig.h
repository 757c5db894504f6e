/* Fake sdkconfig.h for the host tests: the SDK's defaults as far as native/crypto reads them. */
#pragma once
#define CONFIG_ESP_WIFI_ENABLED 1
