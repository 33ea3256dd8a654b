"""The peer of bench/mqtt-to-postgres: MQTT telemetry into PostgreSQL the way an integrator writes it
by hand — paho-mqtt subscribing with QoS 1, rows buffered and written with psycopg's COPY in batches
of 5,000 (or every half second), into a table shaped like Enchufe's `readings`.

    python mqtt_to_postgres.py HOST PORT TOPIC CLIENT_ID POSTGRES_DSN TABLE COUNT [SESSION_EXPIRY_S]

With SESSION_EXPIRY_S the broker keeps the session (and queues messages for it) that long after the
script disconnects: the benchmark's backlog stage.

Exits once COUNT rows are written. paho acknowledges a message when its callback returns, so what is
buffered when the script dies is lost: the usual trade of such scripts.
"""
import json
import queue
import sys
import threading
import time
from datetime import datetime, timezone

import paho.mqtt.client as mqtt
import psycopg

host, port, topic, client_id, dsn, table, count = sys.argv[1:8]
port, count = int(port), int(count)
expiry = int(sys.argv[8]) if len(sys.argv) > 8 else 0
rows: "queue.Queue[tuple]" = queue.Queue()


def on_connect(client, userdata, flags, reason_code, properties):
    client.subscribe(topic, qos=1)


def on_message(client, userdata, message):
    data = json.loads(message.payload)
    device = message.topic.split("/")[1]
    ts = datetime.fromtimestamp(data["ts"], tz=timezone.utc)
    rows.put(("demo", "device:" + device, "power", ts, "PT0S", float(data["w"]), "W", "measured", "python/peer", 1, 0, ts))


client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
client.on_connect = on_connect
client.on_message = on_message
properties = None
if expiry:
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = expiry
client.connect(host, port, keepalive=30, clean_start=False, properties=properties)
client.loop_start()

written = 0
with psycopg.connect(dsn) as connection:
    while written < count:
        batch = []
        deadline = time.monotonic() + 0.5
        while len(batch) < 5000:
            try:
                batch.append(rows.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                break
        if not batch:
            continue
        with connection.cursor() as cursor:
            with cursor.copy(
                f"COPY {table} (tenant, series, quantity, ts, resolution, value, unit, quality, source, revision, seq, updated_at) FROM STDIN"
            ) as copy:
                for row in batch:
                    copy.write_row(row)
        connection.commit()
        written += len(batch)
client.loop_stop()
print(written)
