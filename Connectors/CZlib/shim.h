// zlib from the system (Debian zlib1g-dev): the CRC-32 of the MQTT journal's records.
#include <zlib.h>
