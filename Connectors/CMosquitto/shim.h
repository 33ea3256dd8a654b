// libmosquitto from the system (Debian libmosquitto-dev), for the MQTT connector.
#include <mosquitto.h>
#include <mqtt_protocol.h>
