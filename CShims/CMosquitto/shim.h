#ifndef FLOWCHAIN_CMOSQUITTO_SHIM_H
#define FLOWCHAIN_CMOSQUITTO_SHIM_H

#include <mosquitto.h>
#include <mqtt_protocol.h>

#endif
