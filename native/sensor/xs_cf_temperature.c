/*
 * The chip's internal temperature sensor for JavaScript (src/moddable/esp32/temperature.ts):
 *
 *   native("xs_cf_temperature_read")()   degrees Celsius (a number), or undefined
 *
 * over ESP-IDF's temperature_sensor driver (component esp_driver_tsens) on the chips that have the
 * sensor (SOC_TEMP_SENSOR_SUPPORTED: ESP32-S2, S3, C3, C6, H2…). The original ESP32 has none: there
 * the function always returns undefined, and readings carry no `temp`. The driver is installed
 * and enabled at the first reading and stays enabled; if that fails, every reading is undefined.
 * It measures the die, not the air: expect some degrees above the ambient temperature.
 */
#include "xsmc.h"

#include "soc/soc_caps.h"

#if SOC_TEMP_SENSOR_SUPPORTED

#include "driver/temperature_sensor.h"

/* The measuring range ESP-IDF picks its best-accuracy setting for (±1 °C over -10…80 °C). */
#define CF_TEMPERATURE_MIN (-10)
#define CF_TEMPERATURE_MAX 80

static temperature_sensor_handle_t gSensor = NULL;
static uint8_t gSensorFailed = 0;

static temperature_sensor_handle_t sensor(void)
{
	if (!gSensor && !gSensorFailed) {
		temperature_sensor_config_t config = TEMPERATURE_SENSOR_CONFIG_DEFAULT(CF_TEMPERATURE_MIN, CF_TEMPERATURE_MAX);
		temperature_sensor_handle_t handle = NULL;
		if (temperature_sensor_install(&config, &handle) == ESP_OK) {
			if (temperature_sensor_enable(handle) == ESP_OK)
				gSensor = handle;
			else
				temperature_sensor_uninstall(handle);
		}
		if (!gSensor)
			gSensorFailed = 1;
	}
	return gSensor;
}

void xs_cf_temperature_read(xsMachine* the)
{
	float celsius;
	temperature_sensor_handle_t handle = sensor();
	/* ESP_FAIL when the die is outside the configured range: no reading rather than a wrong one. */
	if (handle && (temperature_sensor_get_celsius(handle, &celsius) == ESP_OK))
		xsmcSetNumber(xsResult, (xsNumberValue)celsius);
}

#else /* no temperature sensor on this chip */

void xs_cf_temperature_read(xsMachine* the)
{
	xsmcSetUndefined(xsResult);
}

#endif /* SOC_TEMP_SENSOR_SUPPORTED */
