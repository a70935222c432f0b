"""``manage.py simulate_panstamp``: a virtual panStamp modem with room-heater nodes, until SIGTERM/SIGINT."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from heating.simulator import SimulatedNetwork
from hub.env import parse_bind
from hub.workers import run_in_foreground


class Command(BaseCommand):
    help = (
        "Run a simulated panStamp network: a virtual modem on a pty behind a stable symlink and on a TCP port, "
        "with room-heater nodes behind it. Point SERIAL_PORT at the symlink or at socket://HOST:PORT."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--link",
            default=str(settings.HUB_VAR_DIR / "panstamp-modem"),
            help="symlink to the pty (default: %(default)s); 'none' for no pty",
        )
        parser.add_argument(
            "--tcp", default="127.0.0.1:5331", help="HOST:PORT for socket:// (default: %(default)s); 'none' for none"
        )
        parser.add_argument("--nodes", type=int, default=3, help="room-heater nodes, addresses A1, A2, … (default 3)")
        parser.add_argument(
            "--time-scale", type=float, default=1.0, help="simulated seconds per real second (default 1)"
        )
        parser.add_argument("--outdoor", type=float, default=5.0, help="outdoor temperature, °C (default 5)")
        parser.add_argument(
            "--channel", type=int, default=settings.SWAP_CHANNEL, help="the nodes' channel (default SWAP_CHANNEL)"
        )
        parser.add_argument(
            "--sync-word",
            default=settings.SWAP_SYNC_WORD,
            help="the nodes' sync word, 4 hex digits (default SWAP_SYNC_WORD)",
        )
        parser.add_argument("--seed", type=int, default=None, help="random seed, for a repeatable run")

    def handle(self, *args, **options):
        link = None if options["link"] == "none" else Path(options["link"])
        tcp = None
        if options["tcp"] != "none":
            try:
                tcp = parse_bind(options["tcp"])
            except ValueError as exc:
                raise CommandError(f"--tcp {options['tcp']!r}: {exc}") from None
        if link is None and tcp is None:
            raise CommandError("give --link or --tcp (or both)")
        if options["nodes"] < 1 or options["time_scale"] <= 0:
            raise CommandError("--nodes must be at least 1 and --time-scale above 0")
        try:
            sync_word = int(options["sync_word"], 16)
        except ValueError:
            raise CommandError(f"--sync-word {options['sync_word']!r} is not hexadecimal") from None
        network = SimulatedNetwork(
            node_count=options["nodes"],
            pty_link=link,
            tcp=tcp,
            time_scale=options["time_scale"],
            outdoor=options["outdoor"],
            channel=options["channel"],
            sync_word=sync_word,
            seed=options["seed"],
        )
        network.on_ports_open = lambda: self._announce(network)
        run_in_foreground(network)

    def _announce(self, network: SimulatedNetwork) -> None:
        where = []
        if network.pty is not None:
            where.append(f"SERIAL_PORT={network.pty_link} (-> {network.pty.device})")
        if network.tcp_address is not None:
            where.append("SERIAL_PORT=socket://{}:{}".format(*network.tcp_address))
        nodes = ", ".join(f"{node.address:02X}" for node in network.nodes)
        self.stdout.write(
            f"Simulated panStamp modem ready: {' or '.join(where)}; nodes {nodes} on channel {network.channel}, "
            f"sync word {network.sync_word:04X}; time x{network.time_scale:g}",
        )
        self.stdout.flush()
