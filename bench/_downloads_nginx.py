"""The downloads bench's nginx (not a benchmark itself: its name starts with _).

One nginx process, one worker, serves every nginx row of ``bench/downloads.py``: one ``server`` per row on a
port of its own, all in the same ``http`` block (the same build, modules, sendfile, buffers and a JSON access log
per request, as production logs them), each with only its location under test. The edge row's server is taken
from the shipped deploy/nginx.conf (the download host's server and the http-level lines it relies on), with the
container's paths and upstream replaced by the bench's, so the row measures what ships.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from bench.asgi_servers import HOST, PROJECT_DIR, wait_until_answering

# BENCH_EDGE_CONF: take the edge from another file (a draft while the shipped one is being written); the printed
# figures then say which file they measured.
SHIPPED_CONF = Path(os.environ.get("BENCH_EDGE_CONF") or PROJECT_DIR / "deploy" / "nginx.conf")
SHIPPED_NJS = PROJECT_DIR / "deploy" / "njs"
OLDTOOL_DIR = PROJECT_DIR / "bench" / "oldtool"
MODULES = Path("/usr/lib/nginx/modules")
ACCEL_LOCATION = "/_accel/downloads/"

# The edge JSON access log's keys (docs/downloads.md); every row logs each request in this format, the edge row
# to the file the hub's reader reads, the others to a file of their own.
LOG_FORMAT = (
    'log_format bench_json escape=json \'{{"t":"$msec","id":"$request_id","ip":"$remote_addr",'
    '"m":"$request_method","uri":"$request_uri","s":"$status","b":"$body_bytes_sent","range":"$http_range",'
    '"ua":"$http_user_agent","link":"{link}"}}\';'
)


# --- a small reader and writer for nginx's configuration language ------------------------------------------


@dataclass
class Directive:
    words: list[str]
    block: list[Directive] | None = None  # None: a simple directive ending in ';'
    comments: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.words[0]

    def render(self, indent: str = "") -> str:
        head = indent + " ".join(self.words)
        if self.block is None:
            return head + ";\n"
        inner = "".join(child.render(indent + "    ") for child in self.block)
        return f"{head} {{\n{inner}{indent}}}\n"


_TOKEN = re.compile(
    r"""\s+|#[^\n]*|"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|[{};]|[^\s{};"'#]+(?:"[^"]*"|'[^']*'|[^\s{};"'#]+)*"""
)


def parse(text: str) -> list[Directive]:
    """nginx's configuration text as a tree of directives (comments dropped)."""
    stack: list[list[Directive]] = [[]]
    words: list[str] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise ValueError(f"cannot read nginx configuration at {text[position : position + 40]!r}")
        token = match.group()
        position = match.end()
        if token.isspace() or token.startswith("#"):
            continue
        if token == ";":
            stack[-1].append(Directive(words))
            words = []
        elif token == "{":
            directive = Directive(words, [])
            stack[-1].append(directive)
            stack.append(directive.block)
            words = []
        elif token == "}":
            if words or len(stack) == 1:
                raise ValueError("unbalanced '}' in nginx configuration")
            stack.pop()
        else:
            words.append(token)
    if words or len(stack) != 1:
        raise ValueError("nginx configuration ends inside a directive or block")
    return stack[0]


def find(directives: list[Directive], name: str) -> list[Directive]:
    return [directive for directive in directives if directive.name == name]


def replace_words(directives: list[Directive], replacements: dict[str, str]) -> None:
    for directive in directives:
        for index, word in enumerate(directive.words):
            for old, new in replacements.items():
                word = word.replace(old, new)
            directive.words[index] = word
        if directive.block is not None:
            replace_words(directive.block, replacements)


# --- the rows' servers ------------------------------------------------------------------------------------


@dataclass
class Server:
    port: int
    body: str  # the server's directives but listen (and access_log, unless the body has its own)
    access_log: Path | None  # None: the body logs as it says itself (or nothing)


def static_body(root: Path) -> str:
    # The link's four parts in the URL, the file served with no check at all: nginx's ceiling for these URLs.
    return f"""
        location ~ ^/[^/]+/[^/]+/[^/]+/(?<file>.+)$ {{ alias {root}/$file; }}
    """


def secure_link_body(root: Path, secret: str) -> str:
    # nginx's own module: an MD5 over the expiry, customer, path and a secret (bench/_downloads_links.py signs).
    return f"""
        location ~ ^/(?<sl_md5>[^/]+)/(?<sl_expires>[0-9]+)/(?<sl_customer>[^/]+)/(?<sl_file>.+)$ {{
            secure_link $sl_md5,$sl_expires;
            secure_link_md5 "$sl_expires$sl_customer/$sl_file {secret}";
            if ($secure_link = "") {{ return 403; }}
            if ($secure_link = "0") {{ return 410; }}
            alias {root}/$sl_file;
        }}
    """


def oldtool_body() -> str:
    # The old tool's server block as it was (the location regex hands the four parts to get_file.lua).
    return f"""
        location ~ ^/(?<signature>[^/]+)/(?<customer_id>[^/]+)/(?<expire_date>[^/]+)/(?<path_n_file>.*)$ {{
            content_by_lua_file {OLDTOOL_DIR}/get_file.lua;
        }}
        location / {{ return 403; }}
    """


def accel_body(root: Path, upstream: str) -> str:
    # nginx in front of the hub as deploy/nginx.conf had it before the edge: the hub verifies every request and
    # answers X-Accel-Redirect; nginx sends the bytes.
    return f"""
        location {ACCEL_LOCATION} {{ internal; alias {root}/; }}
        location / {{
            proxy_pass http://{upstream};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Real-IP $remote_addr;
        }}
    """


def stub_body(root: Path, stub_port: int) -> str:
    # The best any backend can do: an upstream that only answers the same X-Accel-Redirect.
    return f"""
        location {ACCEL_LOCATION} {{ internal; alias {root}/; }}
        location / {{
            proxy_pass http://{HOST}:{stub_port};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    """


@dataclass
class EdgeParts:
    http: str  # http-level lines the edge server needs (js_import, js_set, log_format, map …)
    server: str  # the download host's server body (locations, set, …) without listen/ssl/server_name
    log: Path  # where its JSON access log is written (what the hub's reader reads)
    prefix: str  # the links' prefix on that server


class EdgeUnavailable(Exception):
    """The shipped configuration has no edge (yet): the row says why instead of printing a figure."""


_SERVER_ONLY = {"listen", "server_name", "ssl_certificate", "ssl_certificate_key", "ssl_protocols"}


def shipped_edge(*, root: Path, markers: Path, log: Path, hub: str) -> EdgeParts:
    """The download host's server from deploy/nginx.conf, its paths and upstream replaced by the bench's."""
    if not SHIPPED_NJS.is_dir() or not any(SHIPPED_NJS.glob("*.js")):
        raise EdgeUnavailable("deploy/njs/ has no njs code")
    text = SHIPPED_CONF.read_text()
    tree = parse(text)
    http = next(iter(find(tree, "http")), None)
    if http is None:
        raise EdgeUnavailable("deploy/nginx.conf has no http block")
    if not any(d.name.startswith("js_") for d in http.block):
        raise EdgeUnavailable("deploy/nginx.conf loads no njs code (no js_import in its http block)")
    servers = [
        server
        for server in find(http.block, "server")
        if any(any(word.startswith("downloads") for word in d.words[1:]) for d in find(server.block, "server_name"))
    ]
    if not servers:
        raise EdgeUnavailable("deploy/nginx.conf has no download host server (server_name downloads.*)")
    server = servers[0]
    logs = [d for d in server.block if d.name == "access_log" and len(d.words) > 2]
    if not logs:
        # The edge log may be set in a location of the server rather than at its top.
        logs = [d for d in _walk(server.block) if d.name == "access_log" and len(d.words) > 2]
    if not logs:
        raise EdgeUnavailable("the download host's server writes no JSON access log")
    shipped_log = logs[0].words[1]
    # The log first: the markers' mount (/srv/hub/edge) is a prefix of the log's folder's name (/srv/hub/edge-log).
    replacements = {shipped_log: str(log), **_container_paths(text, root=root, markers=markers, hub=hub)}
    # http-level lines the server relies on: njs, maps and log formats; not the container's own settings.
    wanted = ("js_", "map", "log_format")
    http_lines = [d for d in http.block if d.name.startswith(wanted)]
    body = [d for d in server.block if d.name not in _SERVER_ONLY and not d.name.startswith("ssl_")]
    replace_words(http_lines, replacements)
    replace_words(body, replacements)
    prefix = "/"
    for directive in _walk(body):
        if directive.name == "set" and directive.words[1:2] == ["$edge_prefix"]:
            prefix = directive.words[2].strip("\"'")
    return EdgeParts(
        http="".join(d.render("    ") for d in http_lines),
        server="".join(d.render("        ") for d in body),
        log=log,
        prefix=prefix,
    )


def _walk(directives: list[Directive]):
    for directive in directives:
        yield directive
        if directive.block is not None:
            yield from _walk(directive.block)


def _container_paths(text: str, *, root: Path, markers: Path, hub: str) -> dict[str, str]:
    """The container's paths in the shipped file → the bench's (the file's header comment names its mounts)."""
    replacements = {
        "/srv/hub/downloads": str(root),
        "/etc/nginx/njs": str(SHIPPED_NJS),
        "http://web:8000": f"http://{hub}",
    }
    for mount in re.findall(r"/srv/hub/[a-z_-]*edge[a-z_-]*", text):
        if "log" not in mount:  # the markers' folder, not the log's
            replacements[mount] = str(markers)
    return replacements


# --- the whole configuration --------------------------------------------------------------------------------


def configuration(tmp: Path, servers: list[Server], *, edge: EdgeParts | None, base_dir: Path) -> str:
    modules = [MODULES / name for name in ("ndk_http_module.so", "ngx_http_lua_module.so", "ngx_http_js_module.so")]
    lines = [f"load_module {module};" for module in modules]
    lines += [
        "worker_processes " + os.environ.get("BENCH_NGINX_WORKERS", "1") + ";",
        "user root;" if os.geteuid() == 0 else "",
        f"pid {tmp}/nginx.pid;",
        f"error_log {tmp}/nginx-error.log warn;",
        "env TZ;",
        "events { worker_connections 4096; }",
        "http {",
        "    include /etc/nginx/mime.types;",
        "    default_type application/octet-stream;",
        "    sendfile on;",
        "    tcp_nopush on;",
        "    server_tokens off;",
        "    access_log off;",  # each row's server says where it logs
        *(f"    {kind}_temp_path {tmp}/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")),
        "    " + LOG_FORMAT.format(link=""),
        f'    lua_package_path "{OLDTOOL_DIR}/?.lua;;";',
        # The old tool's lib.lua settings; the module (and its lookup tables) loads once, before the fork.
        f'    init_by_lua_block {{ local lib = require "lib"; lib.base_dir = "{base_dir}/" }}',
    ]
    if edge is not None:
        lines.append(edge.http)
    for server in servers:
        lines += [
            "    server {",
            f"        listen {HOST}:{server.port};",
            f"        access_log {server.access_log} bench_json;" if server.access_log else "",
            server.body,
            "    }",
        ]
    lines.append("}")
    return "\n".join(lines) + "\n"


def start_nginx(tmp: Path, conf_text: str, check_url: str) -> subprocess.Popen:
    conf = tmp / "nginx.conf"
    conf.write_text(conf_text)
    tested = subprocess.run(
        ["nginx", "-t", "-p", str(tmp), "-c", str(conf)], capture_output=True, text=True, timeout=30
    )
    if tested.returncode != 0:
        raise RuntimeError(f"nginx refused the bench's configuration ({conf}):\n{tested.stderr[-3000:]}")
    process = subprocess.Popen(
        ["nginx", "-p", str(tmp), "-c", str(conf), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=(tmp / "nginx-stderr.log").open("w"),
        env={**os.environ, "TZ": "UTC"},
    )
    wait_until_answering(check_url, process)
    return process
