"""A simulated panStamp network: a virtual modem (pty and TCP) with room-heater nodes behind it.

``SimulatedNetwork(pty_link=..., tcp=(host, port), time_scale=...)`` is a :class:`hub.workers.Worker`:
``start()``/``stop()`` in-process (the embedded default, tests) or ``manage.py simulate_panstamp``.
"""

from heating.simulator.modem import VirtualModem
from heating.simulator.network import SimulatedNetwork
from heating.simulator.node import Faults, Room, RoomHeaterNode

__all__ = ["Faults", "Room", "RoomHeaterNode", "SimulatedNetwork", "VirtualModem"]
