"""The SWAP protocol as a pure library: packet codec, standard registers, panStamp device definitions.

No Django and no pyserial here; the modem driver (``heating.modem``) and the simulator build on it.
"""

from heating.swap.codec import (
    BROADCAST,
    DecodeError,
    EncodeError,
    Function,
    Packet,
    command_line,
    decode_line,
    decode_packet,
    discovery_line,
    encode_packet,
    encode_received,
    query_line,
)
from heating.swap.definitions import DefinitionError, DefinitionLibrary, DeviceDefinition, Endpoint

__all__ = [
    "BROADCAST",
    "DecodeError",
    "DefinitionError",
    "DefinitionLibrary",
    "DeviceDefinition",
    "EncodeError",
    "Endpoint",
    "Function",
    "Packet",
    "command_line",
    "decode_line",
    "decode_packet",
    "discovery_line",
    "encode_packet",
    "encode_received",
    "query_line",
]
