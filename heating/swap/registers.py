"""The standard registers every SWAP node has (docs/protocols/swap.md §5); product registers start at 11."""

from __future__ import annotations

from enum import IntEnum


class StandardRegister(IntEnum):
    PRODUCT_CODE = 0
    HARDWARE_VERSION = 1
    FIRMWARE_VERSION = 2
    SYSTEM_STATE = 3
    FREQUENCY_CHANNEL = 4
    SECURITY_OPTION = 5
    PASSWORD = 6
    NONCE = 7
    NETWORK_ID = 8
    DEVICE_ADDRESS = 9
    TX_INTERVAL = 10


class SystemState(IntEnum):
    RESTART = 0
    RXON = 1
    RXOFF = 2
    SYNC = 3
    LOWBAT = 4
    UPGRADE = 5


#: How the Heating page names each system state.
SYSTEM_STATE_NAMES: dict[SystemState, str] = {
    SystemState.RESTART: "restarting",
    SystemState.RXON: "listening",
    SystemState.RXOFF: "asleep",
    SystemState.SYNC: "sync",
    SystemState.LOWBAT: "low battery",
    SystemState.UPGRADE: "upgrading",
}


def system_state_name(value: int | None) -> str:
    """Register 3's value as the page shows it; ``unknown`` before it is heard, the number when not standard."""
    if value is None:
        return "unknown"
    try:
        return SYSTEM_STATE_NAMES[SystemState(value)]
    except ValueError:
        return str(value)


#: Value length in bytes of each standard register (the device address is 2 bytes with extended addresses).
STANDARD_REGISTER_SIZES: dict[int, int] = {0: 8, 1: 4, 2: 4, 3: 1, 4: 1, 5: 1, 6: 1, 7: 1, 8: 2, 9: 1, 10: 2}
FIRST_PRODUCT_REGISTER = 11


def product_code(manufacturer_id: int, product_id: int) -> bytes:
    """Register 0's value: manufacturer id and product id, 4 bytes each, big-endian."""
    return manufacturer_id.to_bytes(4, "big") + product_id.to_bytes(4, "big")


def split_product_code(value: bytes) -> tuple[int, int]:
    """``(manufacturer_id, product_id)`` from register 0's 8-byte value."""
    if len(value) != 8:
        raise ValueError(f"a product code has 8 bytes, not {len(value)}")
    return int.from_bytes(value[:4], "big"), int.from_bytes(value[4:], "big")
