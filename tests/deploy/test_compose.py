"""docker-compose.yml and the Dockerfile, checked against the project (no Docker engine runs here).

A service built from the hub's image must run a command the project really has, set only variables the
settings read, wait for the init service, and have a health check and a restart policy.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import shlex
from pathlib import Path

import pytest
import yaml
from django.core.management import CommandError, get_commands, load_command_class

PROJECT_DIR = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((PROJECT_DIR / "docker-compose.yml").read_text())
COMPOSE_TEXT = (PROJECT_DIR / "docker-compose.yml").read_text()
DOCKERFILE = (PROJECT_DIR / "Dockerfile").read_text()
SERVICES: dict[str, dict] = COMPOSE["services"]
HUB_SERVICES = {name: service for name, service in SERVICES.items() if "build" in service}
LONG_RUNNING = {name: service for name, service in SERVICES.items() if name != "init"}
SECRET_NAME = re.compile(r"PASSWORD|PASS$|SECRET|_KEY$|^SECRET_KEY$|TOKEN|DOWNLOADS_KEYS", re.IGNORECASE)


def settings_variables() -> set[str]:
    """Every variable hub/settings.py reads through its strict readers (``env.<reader>("NAME"``)."""
    text = (PROJECT_DIR / "hub" / "settings.py").read_text()
    return set(re.findall(r"env\.\w+\(\s*\"([A-Z][A-Z0-9_]*)\"", text))


def dockerfile_cmd() -> list[str]:
    match = re.search(r"^CMD\s+(\[.*\])\s*$", DOCKERFILE, re.MULTILINE)
    assert match, "the Dockerfile has an exec-form CMD"
    return yaml.safe_load(match.group(1))


def command_lines(command: list[str] | str) -> list[list[str]]:
    """The argv of each program a service runs: ``sh -c "a && b"`` gives two."""
    argv = shlex.split(command) if isinstance(command, str) else list(command)
    if argv[:2] == ["sh", "-c"]:
        return [shlex.split(part) for part in argv[2].split("&&")]
    return [argv]


def hub_commands() -> list[tuple[str, list[str]]]:
    found = [("Dockerfile CMD", dockerfile_cmd())]
    for name, service in HUB_SERVICES.items():
        found += [(name, argv) for argv in command_lines(service["command"])]
        test = service.get("healthcheck", {}).get("test")
        if test:
            kind, *rest = test
            lines = command_lines(rest[0].replace("$$", "$")) if kind == "CMD-SHELL" else [rest]
            found += [(f"{name} healthcheck", argv) for argv in lines]
    return found


def check_manage_py(argv: list[str]) -> None:
    name, *args = argv
    commands = get_commands()
    assert name in commands, f"manage.py has no command {name!r}"
    parser = load_command_class(commands[name], name).create_parser("manage.py", name)
    parser.parse_args(args)  # a CommandError names an unknown option or a bad choice


def check_celery(argv: list[str]) -> None:
    from celery import Celery
    from celery.bin.celery import celery as celery_cli

    app_option = next(arg for arg in argv if arg.startswith("--app="))
    app = importlib.import_module(app_option.removeprefix("--app=")).celery_app
    assert isinstance(app, Celery)
    subcommand = next(arg for arg in argv[1:] if not arg.startswith("-"))
    assert subcommand in celery_cli.commands, f"celery has no {subcommand!r} command"
    known = {opt for param in celery_cli.commands[subcommand].params for opt in param.opts}
    known |= {opt for param in celery_cli.params for opt in param.opts}
    for arg in argv[1:]:
        if arg.startswith("--"):
            assert arg.split("=")[0] in known, f"celery {subcommand} has no option {arg}"


def check_uvicorn(argv: list[str]) -> None:
    from uvicorn.main import main as uvicorn_cli

    context = uvicorn_cli.make_context("uvicorn", argv[1:])  # raises on an unknown option
    module_name, _, attribute = context.params["app"].partition(":")
    assert callable(getattr(importlib.import_module(module_name), attribute))
    assert context.params["lifespan"] == "on"


def check_healthcheck_script(argv: list[str]) -> None:
    script = PROJECT_DIR / argv[0]
    assert script.is_file(), f"{argv[0]} is not in the project"
    spec = importlib.util.spec_from_file_location("deploy_healthcheck", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    kind = argv[1]
    assert hasattr(module, f"check_{kind}"), f"{argv[0]} has no {kind!r} check"
    if kind == "heartbeat":
        # The name a worker records its heartbeat under must exist in the code that records it.
        sources = "\n".join(path.read_text() for path in PROJECT_DIR.glob("*/**/*.py") if ".venv" not in path.parts)
        assert f'"{argv[2]}"' in sources, f"no worker records a heartbeat called {argv[2]!r}"


@pytest.mark.parametrize(("where", "argv"), hub_commands(), ids=[where for where, _ in hub_commands()])
def test_every_command_run_from_the_hub_image_exists_in_the_project(where, argv):
    program = Path(argv[0]).name
    if program == "python" and argv[1] == "manage.py":
        check_manage_py(argv[2:])
    elif program == "python" and argv[1].endswith(".py"):
        check_healthcheck_script(argv[1:])
    elif program == "celery":
        check_celery(argv)
    elif program == "uvicorn":
        check_uvicorn(argv)
    else:
        pytest.fail(f"{where}: no check knows {argv[0]!r}; teach this test before using it")


def test_the_checks_above_catch_a_command_the_project_lacks():
    with pytest.raises(AssertionError, match="no command"):
        check_manage_py(["no_such_command"])
    with pytest.raises(CommandError, match="unrecognized arguments"):
        check_manage_py(["migrate", "--no-such-option"])
    with pytest.raises(AssertionError, match="no option"):
        check_celery(["celery", "--app=hub", "worker", "--no-such-option"])


def interpolated(text: str) -> str:
    """What compose would read after filling in variables: defaults, a dummy for required ones, ``$$`` → ``$``."""
    text = re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", text)
    text = re.sub(r"\$\{[A-Z0-9_]+:\?[^}]*\}", "value-from-env", text)
    return text.replace("$$", "$")


def validate_against_compose_spec(text: str) -> None:
    """Parse with the Compose Specification's rules (compose_spec): unknown keys and values are errors."""
    from compose_spec import PyCompose

    # compose_spec reads no YAML merge keys; PyYAML resolves them, the x- anchors are then dropped.
    document = {key: value for key, value in yaml.safe_load(interpolated(text)).items() if not key.startswith("x-")}
    PyCompose.from_yaml(yaml.safe_dump(document)).validate()


def test_the_compose_file_follows_the_compose_specification():
    validate_against_compose_spec(COMPOSE_TEXT)


@pytest.mark.parametrize(
    ("typo", "fixed"),
    [
        ("restart: unless-stoped", "restart: unless-stopped"),
        ("condition: service_finished", "condition: service_completed_successfully"),
        ("  stop_grace_periood: 30s", "  stop_grace_period: 30s"),
    ],
)
def test_the_specification_check_catches_a_typo(typo, fixed):
    assert fixed in COMPOSE_TEXT
    with pytest.raises(ValueError):  # noqa: PT011 (compose_spec says only ValueError, with the path in the text)
        validate_against_compose_spec(COMPOSE_TEXT.replace(fixed, typo, 1))


def test_every_variable_set_for_the_hub_image_is_one_the_settings_read():
    read = settings_variables()
    assert {"HUB_MODE", "DATABASE_URL", "SECRET_KEY"} <= read, "the settings parser found the readers"
    for name, service in HUB_SERVICES.items():
        unknown = set(service.get("environment", {})) - read
        assert not unknown, f"{name} sets {sorted(unknown)}, which hub/settings.py never reads"
    dockerfile_env = set(re.findall(r"^\s*(?:ENV\s+)?([A-Z][A-Z0-9_]*)=", DOCKERFILE, re.MULTILINE))
    hub_env = {name for name in dockerfile_env if not name.startswith(("PYTHON", "PIP_"))}
    assert hub_env, "the Dockerfile sets the hub's production defaults"
    assert hub_env <= read, f"the Dockerfile sets {sorted(hub_env - read)}, which hub/settings.py never reads"


def test_the_hub_runs_in_production_mode_against_the_compose_services():
    for name, service in HUB_SERVICES.items():
        environment = service["environment"]
        assert environment["HUB_MODE"] == "production", name
        assert "@postgres:5432/" in environment["DATABASE_URL"]
        assert environment["REDIS_URL"].startswith("redis://redis:")
        assert "@rabbitmq:5672/" in environment["AMQP_URL"]
        assert "@mosquitto:1883" in environment["MQTT_URL"]


def test_every_hub_service_waits_for_init_to_complete_and_init_for_its_databases():
    assert "init" in HUB_SERVICES
    for name, service in HUB_SERVICES.items():
        if name != "init":
            assert service["depends_on"]["init"] == {"condition": "service_completed_successfully"}, name
    init = HUB_SERVICES["init"]
    assert init["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert init["depends_on"]["rabbitmq"]["condition"] == "service_healthy"
    steps = [argv[2] for argv in command_lines(init["command"])]
    assert steps == ["migrate", "collectstatic", "messaging_setup", "edge_sync"]
    assert init["restart"] == "no", "a one-shot job must not be restarted once it has finished"


def test_the_processes_the_event_bus_needs_run_as_services():
    commands = {name: command_lines(service["command"])[0] for name, service in HUB_SERVICES.items()}
    assert commands["relay"][2:] == ["relay_outbox"]
    assert commands["consumer-db"][2:] == ["consume_events", "db"]
    assert commands["consumer-notify"][2:] == ["consume_events", "notify"]
    assert commands["celery-worker"][2] == "worker"
    assert commands["celery-beat"][2] == "beat"
    # --scale needs services that neither pin a container name nor publish a host port.
    for name in ("web", "relay", "consumer-db", "consumer-notify", "celery-worker"):
        assert "container_name" not in SERVICES[name]
        assert "ports" not in SERVICES[name]


def test_every_long_running_service_has_a_health_check_and_a_restart_policy():
    for name, service in LONG_RUNNING.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"
        assert service.get("restart") in ("unless-stopped", "always"), f"{name} is not restarted"


def test_data_lives_in_named_volumes():
    volumes = set(COMPOSE["volumes"])

    def mounts(service: str) -> dict[str, str]:
        return {entry.split(":")[1]: entry.split(":")[0] for entry in SERVICES[service]["volumes"]}

    assert mounts("postgres")["/var/lib/postgresql/data"] in volumes
    assert mounts("rabbitmq")["/var/lib/rabbitmq"] in volumes
    assert mounts("mosquitto")["/mosquitto/data"] in volumes
    web = mounts("web")
    downloads_root = HUB_SERVICES["web"]["environment"]["DOWNLOADS_ROOT"]
    assert web[downloads_root] in volumes, "the downloads (the hub's media) survive a new container"
    assert web["/app/staticfiles"] == mounts("init")["/app/staticfiles"] == "static"
    assert web["/var/lib/hub"] in volumes, "the download audit journal outlives a re-created web container"
    nginx = mounts("nginx")
    assert nginx["/srv/hub/static"] == "static", "nginx serves what init collected"
    assert nginx["/srv/hub/downloads"] == web[downloads_root], "nginx sends the files the hub signs links for"


def test_no_secret_value_is_written_in_the_compose_file_or_the_image():
    def assert_reference(where: str, value: str) -> None:
        assert re.fullmatch(r"\$\{[A-Z0-9_]+:\?[^}]*\}", value), f"{where} holds a value, not a required ${{VAR:?}}"

    for name, service in SERVICES.items():
        for variable, value in (service.get("environment") or {}).items():
            if SECRET_NAME.search(variable):
                assert_reference(f"{name}.{variable}", value)
            for password in re.findall(r"://[^:/@]+:([^@]*)@", str(value)):
                assert_reference(f"{name}.{variable}'s password", password)
    for instruction in re.findall(r"^\s*(?:ENV|ARG)\s+(.*)$", DOCKERFILE, re.MULTILINE):
        assert not SECRET_NAME.search(instruction), f"the Dockerfile bakes in {instruction!r}"
    assert not re.search(r"COPY[^\n]*\.env\b", DOCKERFILE)
    assert ".env" in (PROJECT_DIR / ".dockerignore").read_text().split(), "the build context leaves .env out"


def test_the_image_installs_the_project_without_test_extras_and_runs_as_a_user():
    assert re.search(r"^FROM python:3\.11-slim\b", DOCKERFILE, re.MULTILINE)
    installs = re.findall(r"pip install[^\n]*", DOCKERFILE)
    assert installs
    assert not any("[test" in line for line in installs)
    users = re.findall(r"^USER\s+(\S+)", DOCKERFILE, re.MULTILINE)
    assert users, "the image switches to a user"
    assert users[-1] not in ("root", "0")


def test_every_variable_compose_reads_is_in_the_production_env_example():
    example = (PROJECT_DIR / "deploy" / "production.env.example").read_text()
    listed = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]*)=", example, re.MULTILINE))
    interpolated = set(re.findall(r"\$\{([A-Z0-9_]+)", COMPOSE_TEXT))
    assert interpolated - listed == set(), "deploy/production.env.example misses variables compose reads"
    required = set(re.findall(r"\$\{([A-Z0-9_]+):\?", COMPOSE_TEXT))
    assert {"SECRET_KEY", "ALLOWED_HOSTS", "POSTGRES_PASSWORD", "RABBITMQ_PASSWORD", "MQTT_PASSWORD"} <= required
    for name in required:
        assert re.search(rf"^{name}=$", example, re.MULTILINE), f"{name} is required: left empty to fill in"
    # What is neither compose's nor a hub setting would be a typo an operator copies.
    assert listed - interpolated - settings_variables() == set()


def test_the_production_docs_tell_ops_how_to_set_up_back_up_and_restore():
    page = (PROJECT_DIR / "docs" / "production.md").read_text()
    section = page.split("## Set-up", 1)[1]
    required = set(re.findall(r"\$\{([A-Z0-9_]+):\?", COMPOSE_TEXT))
    assert sorted(name for name in required if name not in section) == []
    for needed in ("deploy/production.env.example", "deploy/selfsigned-cert.sh", "--scale", "pg_dump", "pg_restore"):
        assert needed in section
    assert "export_definitions" in section
    assert "import_definitions" in section
    assert "docs/production.md" in (PROJECT_DIR / "README.md").read_text()
    assert "uvicorn" in (PROJECT_DIR / "docs" / "decisions" / "0001-asgi-server.md").read_text()


def test_web_trusts_forwarded_headers_from_nginx_s_fixed_address_only():
    import ipaddress

    compose = yaml.safe_load(interpolated(COMPOSE_TEXT))
    web = compose["services"]["web"]["command"]
    trusted = [arg.split("=", 1)[1] for arg in web if arg.startswith("--forwarded-allow-ips=")]
    assert "--proxy-headers" in web
    nginx_address = compose["services"]["nginx"]["networks"]["default"]["ipv4_address"]
    assert trusted == [nginx_address], "X-Forwarded-* are believed only when nginx itself sends them"
    subnet = ipaddress.ip_network(compose["networks"]["default"]["ipam"]["config"][0]["subnet"])
    assert ipaddress.ip_address(nginx_address) in subnet
    assert ipaddress.ip_address(nginx_address) != next(subnet.hosts()), "the first address is the network's gateway"
    # Both are the operator's to move, together, when the range is taken on the host.
    assert "${NGINX_ADDRESS:-" in COMPOSE_TEXT
    assert "${HUB_NETWORK_SUBNET:-" in COMPOSE_TEXT
    # The image's default command trusts no forwarded header from anywhere but loopback (uvicorn's default).
    cmd = dockerfile_cmd()
    assert not any("forwarded-allow-ips" in arg for arg in cmd)
    assert "*" not in cmd


# --- MQTT on the LAN: TLS published, plain 1883 only with deploy/mqtt-lan-plain.yml and MQTT_LAN_PLAIN_PORT ---

PLAIN_OVERLAY_TEXT = (PROJECT_DIR / "deploy" / "mqtt-lan-plain.yml").read_text()


def interpolate_with(text: str, environ: dict[str, str]) -> str:
    """Compose's interpolation under ``environ``: ``${V}``, ``${V:-default}``, ``${V:?error}`` (raised), ``$$``."""

    def one(match: re.Match) -> str:
        name, operator, argument = match.group(1), match.group(2) or "", match.group(3) or ""
        value = environ.get(name, "")
        if operator == ":?" and not value:
            raise ValueError(f"compose stops: {argument}")
        return value or (argument if operator == ":-" else "")

    text = re.sub(r"(?<!\$)\$\{([A-Z0-9_]+)(?:(:-|:\?)([^}]*))?\}", one, text)
    return text.replace("$$", "$")


def compose_project(environ: dict[str, str], *, with_plain_overlay: bool) -> dict:
    """What compose runs: docker-compose.yml, then the overlay merged over it (ports lists are appended)."""
    environ = {"SECRET_KEY": "s", "ALLOWED_HOSTS": "h", "POSTGRES_PASSWORD": "p", "RABBITMQ_PASSWORD": "r"} | {
        "MQTT_PASSWORD": "m",
        "HUB_TIME_ZONE": "Europe/Berlin",
        **environ,
    }
    project = yaml.safe_load(interpolate_with(COMPOSE_TEXT, environ))
    if with_plain_overlay:
        overlay = yaml.safe_load(interpolate_with(PLAIN_OVERLAY_TEXT, environ))
        assert set(overlay) == {"services"}
        assert set(overlay["services"]) == {"mosquitto"}
        project["services"]["mosquitto"]["ports"] += overlay["services"]["mosquitto"]["ports"]
    return project


def published_ports(service: dict) -> dict[int, str]:
    """Container port → the host side it is published on (``[address:]port``), from short-syntax entries."""
    ports = {}
    for entry in service.get("ports", []):
        host, _sep, target = str(entry).rpartition(":")
        ports[int(target)] = host
    return ports


def test_without_mqtt_lan_plain_port_the_lan_gets_mqtt_only_over_tls():
    project = compose_project({}, with_plain_overlay=False)
    mosquitto = published_ports(project["services"]["mosquitto"])
    assert mosquitto == {8883: "8883", 8884: "8884"}, "TLS MQTT and secure WebSockets, nothing plain"
    for name, service in project["services"].items():
        ports = published_ports(service)
        assert 1883 not in ports, f"{name} publishes plain MQTT"
        assert "1883" not in ports.values(), f"{name} publishes something on the host's 1883"
    # The hub itself still reaches the broker inside the compose network, in plain MQTT.
    assert "@mosquitto:1883" in project["services"]["web"]["environment"]["MQTT_URL"]


def test_mqtt_lan_plain_port_with_the_overlay_publishes_plain_mqtt_on_that_port():
    project = compose_project({"MQTT_LAN_PLAIN_PORT": "1883"}, with_plain_overlay=True)
    assert published_ports(project["services"]["mosquitto"]) == {8883: "8883", 8884: "8884", 1883: "1883"}
    one_interface = compose_project({"MQTT_LAN_PLAIN_PORT": "192.168.1.20:1884"}, with_plain_overlay=True)
    assert published_ports(one_interface["services"]["mosquitto"])[1883] == "192.168.1.20:1884"
    # The overlay without the variable stops compose with a message rather than publishing a random port.
    with pytest.raises(ValueError, match=r"set MQTT_LAN_PLAIN_PORT in \.env"):
        compose_project({}, with_plain_overlay=True)
    # The same variable reaches the hub (env_file: .env), whose /healthz then says plain LAN MQTT is on.
    assert "MQTT_LAN_PLAIN_PORT" in settings_variables()


def test_both_mqtt_cases_follow_the_compose_specification():
    from compose_spec import PyCompose

    for environ, overlay in (({}, False), ({"MQTT_LAN_PLAIN_PORT": "1883"}, True)):
        project = compose_project(environ, with_plain_overlay=overlay)
        document = {key: value for key, value in project.items() if not key.startswith("x-")}
        PyCompose.from_yaml(yaml.safe_dump(document)).validate()
    PyCompose.from_yaml(interpolate_with(PLAIN_OVERLAY_TEXT, {"MQTT_LAN_PLAIN_PORT": "1883"})).validate()


def test_mosquitto_reads_the_operators_certificate_read_only_like_nginx():
    mosquitto, nginx = SERVICES["mosquitto"], SERVICES["nginx"]

    def tls_mount(service: dict, target: str) -> str:
        (entry,) = [entry for entry in service["volumes"] if f":{target}:" in entry]
        source, _target, mode = entry.rsplit(":", 2)
        assert mode == "ro", f"{entry} is not read-only"
        return source

    assert tls_mount(mosquitto, "/mosquitto/tls") == tls_mount(nginx, "/etc/nginx/tls") == "${TLS_DIR:-./deploy/tls}"
    # mosquitto drops root before reading certificates: the command copies them to where the config points.
    conf = (PROJECT_DIR / "deploy" / "mosquitto.conf").read_text()
    files = set(re.findall(r"^(?:certfile|keyfile) (\S+)$", conf, re.MULTILINE))
    assert files == {"/mosquitto/certs/fullchain.pem", "/mosquitto/certs/privkey.pem"}
    script = mosquitto["command"][2]
    assert "cp /mosquitto/tls/fullchain.pem /mosquitto/tls/privkey.pem /mosquitto/certs/" in script
    assert "chown -R mosquitto:mosquitto /mosquitto/certs" in script
    assert script.index("/mosquitto/certs/") < script.index("exec mosquitto")


def test_the_mqtt_ports_are_in_the_env_examples():
    production = (PROJECT_DIR / "deploy" / "production.env.example").read_text()
    for name in ("MQTT_TLS_PORT", "MQTT_WSS_PORT", "MQTT_LAN_PLAIN_PORT"):
        assert re.search(rf"^# {name}=", production, re.MULTILINE), name
    assert "deploy/mqtt-lan-plain.yml" in production
    assert re.search(r"^# MQTT_LAN_PLAIN_PORT=", (PROJECT_DIR / ".env.example").read_text(), re.MULTILINE)


def test_compose_requires_the_house_time_zone_and_hands_it_to_every_hub_service():
    # A container's own zone is UTC: without the variable every schedule would run in UTC.
    with pytest.raises(ValueError, match=r"compose stops: set HUB_TIME_ZONE in \.env"):
        compose_project({"HUB_TIME_ZONE": ""}, with_plain_overlay=False)
    project = compose_project({"HUB_TIME_ZONE": "Europe/Lisbon"}, with_plain_overlay=False)
    for name in HUB_SERVICES:
        assert project["services"][name]["environment"]["HUB_TIME_ZONE"] == "Europe/Lisbon", name


def test_the_edge_markers_and_the_edge_log_are_shared_as_the_edge_design_needs():
    # docs/downloads.md#served-at-the-edge-nginx-and-njs: the hub writes markers nginx only reads; nginx writes the
    # log the edge-log service only reads; init rebuilds the markers before anything serves.
    def mounts(service: str) -> dict[str, tuple[str, str]]:
        found = {}
        for entry in SERVICES[service]["volumes"]:
            source, target, *mode = entry.split(":")
            found[target] = (source, mode[0] if mode else "rw")
        return found

    environment = HUB_SERVICES["web"]["environment"]
    edge_dir, edge_log = environment["DOWNLOADS_EDGE_DIR"], environment["DOWNLOADS_EDGE_LOG"]
    nginx_conf = (PROJECT_DIR / "deploy" / "nginx.conf").read_text()
    volumes = set(COMPOSE["volumes"])
    for name in ("web", "init"):
        assert mounts(name)[edge_dir] == ("edge", "rw"), f"{name} writes the edge markers"
    assert mounts("nginx")[edge_dir] == ("edge", "ro"), "nginx only reads the markers"
    assert f"set $edge_markers {edge_dir}/;" in nginx_conf
    log_folder = edge_log.rsplit("/", 1)[0]
    assert mounts("nginx")[log_folder] == ("edge-log", "rw"), "nginx writes the edge log"
    assert mounts("edge-log")[log_folder] == ("edge-log", "ro"), "the reader only reads it"
    assert f"access_log {edge_log} edge_downloads if=$edge_link;" in nginx_conf
    assert {"edge", "edge-log"} <= volumes
    assert mounts("nginx")["/etc/nginx/njs"] == ("./deploy/njs", "ro")
    assert (PROJECT_DIR / "deploy" / "njs" / "edge.js").is_file()
    assert "js_path /etc/nginx/njs/;" in nginx_conf
    assert command_lines(SERVICES["edge-log"]["command"])[0][2:] == ["read_edge_log"]
    assert command_lines(SERVICES["init"]["command"])[-1][2:] == ["edge_sync"], "markers rebuilt at every start"
    assert "/srv/hub/edge" in re.findall(r"chown hub:hub ([^\n]*)", DOCKERFILE)[0].split(), "the hub user writes them"
