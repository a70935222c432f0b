"""bench/push.py's own MQTT 3.1.1 codec (the anchor side speaks it to Mosquitto without paho) and its figures."""

from __future__ import annotations

import asyncio
import json
import shutil
from urllib.parse import urlsplit

import pytest

from bench import push as push_bench
from tests.support.mosquitto_sub import messages, start_subscriber


def test_a_publish_split_anywhere_across_frames_comes_out_whole():
    payload = json.dumps({"t": 1.5, "s": 3, "pad": "x" * 300}).encode()  # remaining length needs two bytes
    packet = push_bench.mqtt_publish("bench/1/measure", payload)
    stream = push_bench.MqttStream()
    packets = []
    for start in range(0, len(packet), 7):
        packets += stream.feed(packet[start : start + 7])
    assert len(packets) == 1
    first_byte, body = packets[0]
    assert first_byte >> 4 == 3
    assert push_bench.publish_payload(body, first_byte) == payload


def test_several_packets_in_one_frame_are_all_read():
    stream = push_bench.MqttStream()
    data = b"\x20\x02\x00\x00" + push_bench.mqtt_publish("a", b"1") + push_bench.mqtt_publish("b", b"2")
    kinds = [first_byte >> 4 for first_byte, _ in stream.feed(data)]
    assert kinds == [2, 3, 3]


def test_a_qos1_publish_skips_its_packet_id():
    body = b"\x00\x01a" + b"\x00\x07" + b"payload"
    assert push_bench.publish_payload(body, 0x32) == b"payload"


def test_percentiles():
    values = [i / 1000 for i in range(1, 101)]
    assert push_bench.percentile(values, 0.5) == pytest.approx(0.051)
    assert push_bench.percentile(values, 0.99) == pytest.approx(0.1)


@pytest.mark.services
def test_the_codec_is_understood_by_mosquitto(mqtt_url):
    """What the anchor side and the publisher send is real MQTT: mosquitto_sub receives the publisher's message."""
    subscriber_binary = shutil.which("mosquitto_sub") or "/usr/bin/mosquitto_sub"
    parts = urlsplit(mqtt_url)
    command = [subscriber_binary, "-h", parts.hostname, "-p", str(parts.port), "-t", "bench-test/+/measure"]
    subscriber = start_subscriber([*command, "-C", "1", "-W", "5"])
    published, _ = asyncio.run(push_bench.publish_at(10, 0.2, 7, parts.port, topic_prefix="bench-test"))
    output = messages(subscriber, timeout=10)
    assert published == 2
    assert json.loads(output)["s"] == 7
