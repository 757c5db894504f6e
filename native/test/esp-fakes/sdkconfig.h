/* Fake sdkconfig.h for the host tests: the SDK's defaults as far as native/crypto reads them. */
#pragma once
