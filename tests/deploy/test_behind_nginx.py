"""The real hub behind the shipped deploy/nginx.conf: whose address the hub sees, and what /healthz tells.

The hub runs as docker-compose.yml's `web` command (uvicorn), with only its port and the trusted proxy
address swapped for this machine's: nginx connects from 127.0.0.1 here, as it connects from its fixed
address on the compose network in production. It runs the embedded settings on a SQLite file, which changes
nothing about client addresses, sign-in throttling or /healthz.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.deploy.nginx_site import PROJECT_DIR, free_port, https, make_site, nginx_running
from tests.support.login_form import sign_in

pytestmark = pytest.mark.slow

WEB_COMMAND = yaml.safe_load((PROJECT_DIR / "docker-compose.yml").read_text())["services"]["web"]["command"]
PASSWORD = "plum-orchard-velvet-42"
NGINX_PEER = "127.0.0.1"  # the address nginx connects to the hub from in this test


def web_argv(port: int) -> list[str]:
    """docker-compose.yml's web command, listening on ``port`` and trusting forwarded headers from nginx only."""
    argv = []
    for arg in WEB_COMMAND:
        if arg.startswith("--forwarded-allow-ips="):
            arg = f"--forwarded-allow-ips={NGINX_PEER}"
        argv.append({"--host=0.0.0.0": "--host=127.0.0.1", "--port=8000": f"--port={port}"}.get(arg, arg))
    assert any(arg.startswith("--forwarded-allow-ips=") for arg in argv)
    assert "--proxy-headers" in argv
    return argv


@pytest.fixture(scope="module")
def hub_behind_nginx(tmp_path_factory):
    home = tmp_path_factory.mktemp("hub-behind-nginx")
    environ = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("HUB_", "DJANGO_", "DOWNLOADS_", "SYSLOG_", "AXES_", "FORWARDED_"))
        and key not in ("DATABASE_URL", "REDIS_URL", "AMQP_URL", "MQTT_URL", "DEBUG", "ALLOWED_HOSTS", "SECRET_KEY")
    }
    environ.update(
        HUB_MODE="embedded",
        HUB_VAR_DIR=str(home),
        DATABASE_URL=f"sqlite:///{home / 'hub.sqlite3'}",
        ALLOWED_HOSTS="localhost,127.0.0.1",
        PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    )
    for argv in (
        ["python", "manage.py", "migrate", "--noinput", "-v", "0"],
        [
            "python",
            "manage.py",
            "shell",
            "-c",
            "from django.contrib.auth import get_user_model; "
            f"get_user_model().objects.create_user('alice', password={PASSWORD!r})",
        ],
    ):
        subprocess.run(argv, cwd=PROJECT_DIR, env=environ, check=True, capture_output=True, timeout=120)
    port = free_port()
    log = (home / "web.log").open("w")
    web = subprocess.Popen(web_argv(port), cwd=PROJECT_DIR, env=environ, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert web.poll() is None, (home / "web.log").read_text()
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).close()
                break
            assert time.monotonic() < deadline, "the hub did not answer within 60 s:\n" + (home / "web.log").read_text()
            time.sleep(0.2)
        with nginx_running(make_site(home / "nginx", f"127.0.0.1:{port}")) as site:
            site["direct"] = f"http://127.0.0.1:{port}"
            yield site
    finally:
        web.terminate()
        try:
            web.wait(timeout=20)
        except subprocess.TimeoutExpired:
            web.kill()
            web.wait()
        log.close()


def nginx_sign_in(site: dict, password: str, forwarded_for: str):
    return sign_in(
        f"https://localhost:{site['https']}",
        "alice",
        password,
        origin="https://localhost",  # nginx passes `Host: $host`, the name without the port
        headers={"X-Forwarded-For": forwarded_for, "X-Real-IP": forwarded_for},
        cafile=str(site["dir"] / "tls" / "fullchain.pem"),
    )


def test_invented_forwarded_addresses_do_not_escape_the_sign_in_lockout(hub_behind_nginx):
    statuses = [nginx_sign_in(hub_behind_nginx, "wrong-password", f"198.51.100.{n}").status for n in range(1, 21)]
    # django-axes' limit is 5 failures per user and address (AXES_FAILURE_LIMIT); the fifth answers "locked".
    # Whatever each request claimed, the address nginx saw is one address.
    assert statuses == [200] * 4 + [429] * 16, statuses
    right = nginx_sign_in(hub_behind_nginx, PASSWORD, "203.0.113.99")
    assert right.status == 429
    assert "sessionid" not in right.cookies, "the right password did not sign in while locked out"


def test_healthz_details_are_not_given_to_a_client_claiming_loopback_through_nginx(hub_behind_nginx):
    # Straight from loopback without forwarded headers (the container's own health check): every detail.
    with urllib.request.urlopen(hub_behind_nginx["direct"] + "/healthz", timeout=10) as response:
        direct = json.loads(response.read())
    assert any(check.get("detail") for check in direct["checks"].values()), direct
    answer = https(hub_behind_nginx, "GET", "/healthz", headers={"X-Forwarded-For": "127.0.0.1", "X-Real-IP": "::1"})
    assert answer.status == 200
    body = json.loads(answer.body)
    assert body["status"] == direct["status"]
    assert set(body["checks"]) == set(direct["checks"])
    assert all(set(check) == {"ok"} for check in body["checks"].values()), body
