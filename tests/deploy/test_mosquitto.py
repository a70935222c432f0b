"""deploy/mosquitto.conf and its example ACL, run by the machine's mosquitto on free loopback ports.

The broker the compose file starts must refuse anonymous clients and wrong passwords on every listener (plain,
TLS, secure WebSockets), and the ACL must keep a measuring device from switching hardware (an action topic is a
command to the hub). The TLS listeners use a certificate made by deploy/selfsigned-cert.sh, the documented
fallback, in the test's temp folder.
"""

from __future__ import annotations

import os
import queue
import shutil
import socket
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import yaml

from tests.support.services import in_ci
from tests.support.waiting import accepts_connections, wait_until

PROJECT_DIR = Path(__file__).resolve().parents[2]
PASSWORDS = {"hub": "hub-password", "sensor": "sensor-password", "homeassistant": "ha-password"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Broker:
    port: int  # plain MQTT (inside the compose network)
    tls_port: int  # MQTT over TLS (8883 in the shipped config)
    wss_port: int  # MQTT over secure WebSockets (8884)
    ca_certs: str  # the self-signed certificate, which clients trust


@pytest.fixture
def broker_tls(tmp_path):
    mosquitto, mosquitto_passwd = shutil.which("mosquitto"), shutil.which("mosquitto_passwd")
    for path in ("/usr/sbin/mosquitto", "/usr/bin/mosquitto_passwd"):
        if Path(path).exists():
            mosquitto = mosquitto or (path if path.endswith("mosquitto") else None)
            mosquitto_passwd = mosquitto_passwd or (path if path.endswith("passwd") else None)
    if not (mosquitto and mosquitto_passwd):
        if in_ci():
            pytest.fail("mosquitto is not installed (.ci/run expects the machine's broker)")
        pytest.skip("mosquitto is not installed; `apt-get install mosquitto mosquitto-clients` to test its config")
    passwd = tmp_path / "passwd"
    passwd.touch()
    for user, password in PASSWORDS.items():
        subprocess.run([mosquitto_passwd, "-b", str(passwd), user, password], check=True, timeout=30)
    tls = tmp_path / "tls"
    subprocess.run(
        ["sh", str(PROJECT_DIR / "deploy" / "selfsigned-cert.sh"), "localhost", "127.0.0.1"],
        env={**os.environ, "TLS_DIR": str(tls), "DAYS": "2"},
        check=True,
        capture_output=True,
        timeout=60,
    )
    port, tls_port, wss_port = free_port(), free_port(), free_port()
    shipped = (PROJECT_DIR / "deploy" / "mosquitto.conf").read_text()
    for listener in ("listener 1883\n", "listener 8883\n", "listener 8884\n"):
        assert listener in shipped, f"the shipped config has no {listener.strip()!r}"
    conf = (
        shipped.replace("listener 1883\n", f"listener {port} 127.0.0.1\n")
        .replace("listener 8883\n", f"listener {tls_port} 127.0.0.1\n")
        .replace("listener 8884\n", f"listener {wss_port} 127.0.0.1\n")
        .replace("/mosquitto/certs/", f"{tls}/")
        .replace("/mosquitto/data/passwd", str(passwd))
        .replace("/mosquitto/config/acl", str(PROJECT_DIR / "deploy" / "mosquitto.acl"))
        .replace("/mosquitto/data/", f"{tmp_path}/")
    )
    if os.geteuid() == 0:
        conf += "\n# started as root here: stay root to read pytest's private temp dir\nuser root\n"
    (tmp_path / "mosquitto.conf").write_text(conf)
    process = subprocess.Popen(
        [mosquitto, "-c", str(tmp_path / "mosquitto.conf")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:

        def listening() -> bool:
            assert process.poll() is None, process.stdout.read().decode()
            return all(accepts_connections(each) for each in (port, tls_port, wss_port))

        assert wait_until(listening, timeout=10, interval=0.05), "mosquitto did not listen within 10 s"
        yield Broker(port, tls_port, wss_port, str(tls / "fullchain.pem"))
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def broker(broker_tls):
    return broker_tls.port


def connect(
    port: int,
    username: str | None = None,
    password: str | None = None,
    *,
    ca_certs: str | None = None,
    transport: str = "tcp",
):
    """A connected client and its CONNACK reason code (0 = accepted), or an unconnected client and the refusal."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311, transport=transport)
    if ca_certs:
        client.tls_set(ca_certs=ca_certs)
    connack: queue.Queue = queue.Queue()
    messages: queue.Queue = queue.Queue()
    client.on_connect = lambda _c, _u, _f, reason, _p: connack.put(reason)
    client.on_message = lambda _c, _u, message: messages.put((message.topic, message.payload))
    if username:
        client.username_pw_set(username, password)
    client.connect("127.0.0.1", port, keepalive=10)
    client.loop_start()
    reason = connack.get(timeout=5)
    client.messages = messages
    return client, reason


def close(client) -> None:
    client.disconnect()
    client.loop_stop()


def test_anonymous_clients_and_wrong_passwords_are_refused(broker):
    for username, password in ((None, None), ("hub", "not-the-password"), ("stranger", "x")):
        client, reason = connect(broker, username, password)
        close(client)
        assert reason.is_failure, f"{username or 'anonymous'} was let in"
        assert reason.value in (4, 5, 134, 135)  # bad user name or password / not authorised


def test_the_acl_lets_a_sensor_report_measurements_but_not_switch_anything(broker):
    hub, reason = connect(broker, "hub", PASSWORDS["hub"])
    assert not reason.is_failure
    sensor, reason = connect(broker, "sensor", PASSWORDS["sensor"])
    assert not reason.is_failure
    try:
        subscribed: queue.Queue = queue.Queue()
        hub.on_subscribe = lambda *_args: subscribed.put(True)
        hub.subscribe("/home/#", qos=1)
        subscribed.get(timeout=5)
        sensor.publish("/home/kitchen/action/1.12.0", b"on", qos=1).wait_for_publish(timeout=5)
        sensor.publish("/home/kitchen/measure/1.13.0", b"21.5", qos=1).wait_for_publish(timeout=5)
        # Mosquitto delivers in order, so the measurement arriving first proves the action was dropped.
        assert hub.messages.get(timeout=5) == ("/home/kitchen/measure/1.13.0", b"21.5")
        with pytest.raises(queue.Empty):
            hub.messages.get(timeout=0.3)
    finally:
        close(hub)
        close(sensor)


def test_the_acl_lets_home_assistant_set_a_rooms_target_and_read_discovery_but_not_switch_a_heater(broker):
    hub, reason = connect(broker, "hub", PASSWORDS["hub"])
    assert not reason.is_failure
    home_assistant, reason = connect(broker, "homeassistant", PASSWORDS["homeassistant"])
    assert not reason.is_failure
    try:
        subscribed: queue.Queue = queue.Queue()
        home_assistant.on_subscribe = lambda *_args: subscribed.put(True)
        home_assistant.subscribe("homeassistant/climate/#", qos=1)
        subscribed.get(timeout=5)
        hub.publish("homeassistant/climate/home_kitchen/config", b"{}", qos=1).wait_for_publish(timeout=5)
        assert home_assistant.messages.get(timeout=5) == ("homeassistant/climate/home_kitchen/config", b"{}")

        hub.on_subscribe = lambda *_args: subscribed.put(True)
        hub.subscribe("/home/#", qos=1)
        subscribed.get(timeout=5)
        home_assistant.publish("/home/kitchen/action/1.12.0", b"on", qos=1).wait_for_publish(timeout=5)
        home_assistant.publish("/home/kitchen/target/set", b"21.5", qos=1).wait_for_publish(timeout=5)
        # In order: the command arriving first proves the action was dropped.
        assert hub.messages.get(timeout=5) == ("/home/kitchen/target/set", b"21.5")
        with pytest.raises(queue.Empty):
            hub.messages.get(timeout=0.3)
    finally:
        close(hub)
        close(home_assistant)


def test_the_compose_health_check_signs_in_as_the_hub_and_reads_the_broker_uptime(broker):
    if shutil.which("mosquitto_sub") is None:
        if in_ci():
            pytest.fail("mosquitto_sub is not installed (.ci/run installs mosquitto-clients)")
        pytest.skip("mosquitto_sub is not installed; `apt-get install mosquitto-clients`")
    compose = yaml.safe_load((PROJECT_DIR / "docker-compose.yml").read_text())
    kind, command = compose["services"]["mosquitto"]["healthcheck"]["test"]
    assert kind == "CMD-SHELL"
    script = command.replace("$$", "$").replace("-h 127.0.0.1", f"-h 127.0.0.1 -p {broker}")
    healthy = subprocess.run(["sh", "-c", script], env={**os.environ, "MQTT_PASSWORD": PASSWORDS["hub"]}, timeout=30)
    assert healthy.returncode == 0
    wrong = subprocess.run(["sh", "-c", script], env={**os.environ, "MQTT_PASSWORD": "wrong"}, timeout=30)
    assert wrong.returncode != 0


@pytest.mark.parametrize("transport", ["tcp", "websockets"], ids=["mqtt-tls-8883", "wss-8884"])
def test_the_tls_listeners_let_a_client_with_a_password_in_and_carry_its_messages(broker_tls, transport):
    port = broker_tls.tls_port if transport == "tcp" else broker_tls.wss_port
    client, reason = connect(port, "hub", PASSWORDS["hub"], ca_certs=broker_tls.ca_certs, transport=transport)
    try:
        assert not reason.is_failure, reason
        subscribed: queue.Queue = queue.Queue()
        client.on_subscribe = lambda *_args: subscribed.put(True)
        client.subscribe("/home/#", qos=1)
        subscribed.get(timeout=5)
        client.publish("/home/kitchen/measure/1.13.0", b"21.5", qos=1).wait_for_publish(timeout=5)
        assert client.messages.get(timeout=5) == ("/home/kitchen/measure/1.13.0", b"21.5")
    finally:
        close(client)


@pytest.mark.parametrize("transport", ["tcp", "websockets"], ids=["mqtt-tls-8883", "wss-8884"])
def test_the_tls_listeners_refuse_anonymous_clients_and_wrong_passwords(broker_tls, transport):
    port = broker_tls.tls_port if transport == "tcp" else broker_tls.wss_port
    for username, password in ((None, None), ("hub", "not-the-password")):
        client, reason = connect(port, username, password, ca_certs=broker_tls.ca_certs, transport=transport)
        close(client)
        assert reason.is_failure, f"{username or 'anonymous'} was let in over TLS"
        assert reason.value in (4, 5, 134, 135)


def test_the_tls_listener_speaks_only_tls(broker_tls):
    # A plain MQTT CONNECT sent to 8883 gets no CONNACK: passwords never cross the LAN in clear there.
    connect_packet = bytes.fromhex("101000044d5154540402003c0004") + b"test"
    with socket.create_connection(("127.0.0.1", broker_tls.tls_port), timeout=5) as sock:
        sock.sendall(connect_packet)
        try:
            answer = sock.recv(4)
        except (ConnectionResetError, TimeoutError):
            answer = b""
    assert not answer.startswith(b"\x20"), "the TLS port accepted a plain MQTT connection"
    # And the certificate it presents is the operator's (here: the self-signed fallback).
    context = ssl.create_default_context(cafile=broker_tls.ca_certs)
    with (
        socket.create_connection(("127.0.0.1", broker_tls.tls_port), timeout=5) as sock,
        context.wrap_socket(sock, server_hostname="localhost") as secure,
    ):
        assert secure.version() in ("TLSv1.2", "TLSv1.3")
