"""panStamp device definitions: which registers a product has and how their bytes become endpoint values.

The format is panStamp's own (pyswap / lagarto), so their definitions drop in unchanged. A definitions folder
is laid out as panStamp's ``devices`` folder::

    devices.xml                     index: <devices><developer id="1" name="panStamp">
                                             <dev id="4" name="temp" label="Temperature sensor"/>…
    panStamp/temp.xml               <device><developer/><product/><pwrdownmode/><regular><reg id name>
                                      <endpoint name type="num|bin|str" dir="inp|out">
                                        <position>B.b</position><size>B.b</size>
                                        <units><unit name factor offset/></units></endpoint></reg></regular></device>

panStamp's own format puts a device's manufacturer and product ids only in the index. The hub accepts that, and
also a device file the index does not list when its place says the ids: ``<manufacturer id>/<product id>.xml``
(decimal, as in the index), e.g. ``72/3.xml``. So dropping one file into the operator's folder
(``SWAP_DEVICES_DIR``) adds a device without editing any index. A file that cannot be read is reported in
:attr:`DefinitionLibrary.errors`, by name, and the rest of the folder still loads.

``B.b`` counts B bytes from the start of the register's value and b bits from the most significant bit of that
byte (``0.7`` is the least significant bit of byte 0); a size ``B.b`` is B bytes plus b bits. A missing
position is ``0``, a missing size ``1`` (one byte). A shown value is raw x factor + offset.

Two additions panStamp's tools ignore: ``signed="true"`` on an endpoint reads the raw number as two's complement
(the room heater's temperature wraps below 0 °C), and ``label="Room temperature"`` is the endpoint's name for
people (the Devices page shows it instead of the register's name).

Pure: the standard library's XML parser only (the files are the hub's own or the admin's, not network input).
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from heating.swap.registers import split_product_code

SHIPPED_DEVICES_DIR = Path(__file__).resolve().parent / "devices"
INDEX_FILE = "devices.xml"
ENDPOINT_TYPES = ("num", "bin", "str")
DIRECTIONS = ("inp", "out")

EndpointValue = float | int | bool | str

#: How a unit's name in a definition is written for people ("C" is a register's unit, "°C" a reader's).
UNIT_SYMBOLS = {"C": "°C", "F": "°F", "K": "K"}


def unit_symbol(name: str | None) -> str:
    """``"C"`` → ``"°C"``; other names as they are; ``None`` → ``""``."""
    return UNIT_SYMBOLS.get(name or "", name or "")


class DefinitionError(ValueError):
    """A device definition (or its index) that cannot be read; the message names the file."""


@dataclass(frozen=True, slots=True)
class Unit:
    name: str
    factor: float = 1.0
    offset: float = 0.0


@dataclass(frozen=True, slots=True)
class Endpoint:
    name: str
    type: str
    direction: str
    register_id: int
    #: Position of this endpoint among its register's endpoints (lagarto's id is ``<address>.<register>.<index>``).
    index: int
    #: Offset in bits from the most significant bit of the register's first byte.
    bit_offset: int = 0
    #: Size in bits.
    bit_size: int = 8
    units: tuple[Unit, ...] = ()
    signed: bool = False
    #: What people call it ("Room temperature"), from the endpoint's ``label`` attribute; empty: its name.
    label: str = ""

    @property
    def human_name(self) -> str:
        return self.label or self.name

    @property
    def writable(self) -> bool:
        return self.direction == "out"

    @property
    def unit(self) -> Unit | None:
        """The default unit: the first one listed."""
        return self.units[0] if self.units else None

    def find_unit(self, name: str | None) -> Unit | None:
        if name is None:
            return self.unit
        for unit in self.units:
            if unit.name == name:
                return unit
        raise KeyError(f"endpoint {self.name!r} has no unit {name!r}")

    def lagarto_id(self, address: int) -> str:
        return f"{address}.{self.register_id}.{self.index}"

    def raw(self, value: bytes) -> int:
        """This endpoint's bits of the register's ``value`` as a number (two's complement when signed)."""
        total_bits = len(value) * 8
        end = self.bit_offset + self.bit_size
        if end > total_bits:
            raise ValueError(
                f"endpoint {self.name!r} needs {(end + 7) // 8} bytes of register {self.register_id}, got {len(value)}"
            )
        number = (int.from_bytes(value, "big") >> (total_bits - end)) & ((1 << self.bit_size) - 1)
        if self.signed and number >> (self.bit_size - 1):
            number -= 1 << self.bit_size
        return number

    def decode(self, value: bytes, unit: str | None = None) -> EndpointValue:
        """The register's bytes → this endpoint's value (in ``unit``, default the first listed)."""
        if self.type == "str":
            start = self.bit_offset // 8
            return value[start : start + self.bit_size // 8].rstrip(b"\x00").decode("ascii", "replace")
        number = self.raw(value)
        if self.type == "bin":
            return bool(number)
        chosen = self.find_unit(unit)
        if chosen is None or (chosen.factor == 1 and chosen.offset == 0):
            return number
        # Rounded so that 740 x 0.1 - 50 reads 24.0, not 24.000000000000007.
        return round(number * chosen.factor + chosen.offset, 9)

    def encode(self, shown: EndpointValue, register: bytes, unit: str | None = None) -> bytes:
        """``register`` (the register's current bytes) with this endpoint's bits replaced by ``shown``."""
        total_bits = len(register) * 8
        end = self.bit_offset + self.bit_size
        if end > total_bits:
            raise ValueError(f"register of {len(register)} bytes is too short for endpoint {self.name!r}")
        if self.type == "str":
            text = str(shown).encode("ascii")
            size = self.bit_size // 8
            if len(text) > size:
                raise ValueError(f"{self.name!r} holds at most {size} characters")
            start = self.bit_offset // 8
            return register[:start] + text.ljust(size, b"\x00") + register[start + size :]
        if self.type == "bin":
            number = 1 if _as_bool(shown) else 0
        else:
            chosen = self.find_unit(unit)
            numeric = _as_number(shown)
            if chosen is not None:
                numeric = (numeric - chosen.offset) / chosen.factor
            if not math.isfinite(numeric):
                raise ValueError(f"{shown!r} is out of range for endpoint {self.name!r} ({self.bit_size} bits)")
            number = round(numeric)
        low, high = (
            (-(1 << (self.bit_size - 1)), (1 << (self.bit_size - 1)) - 1)
            if self.signed
            else (0, (1 << self.bit_size) - 1)
        )
        if not low <= number <= high:
            raise ValueError(f"{shown!r} is out of range for endpoint {self.name!r} ({self.bit_size} bits)")
        mask = (1 << self.bit_size) - 1
        shift = total_bits - end
        whole = int.from_bytes(register, "big")
        whole = (whole & ~(mask << shift)) | ((number & mask) << shift)
        return whole.to_bytes(len(register), "big")


def _as_bool(value: EndpointValue) -> bool:
    # Only the spellings of on and off: anything else (2, -1, a list) is a mistake to report, not "on".
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("1", "on", "true"):
            return True
        if lowered in ("0", "off", "false"):
            return False
    elif isinstance(value, bool):
        return value
    elif isinstance(value, int | float) and value in (0, 1):
        return value == 1
    raise ValueError(f"{value!r} is not a binary value (use 0 or 1, on or off, true or false)")


def _as_number(value: EndpointValue) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{value!r} is not a number")
    try:
        return float(value)
    except (ValueError, OverflowError):
        raise ValueError(f"{value!r} is not a number") from None


@dataclass(frozen=True, slots=True)
class Register:
    id: int
    name: str
    endpoints: tuple[Endpoint, ...]
    #: Whether it came from ``<config>`` (settings written once) rather than ``<regular>``.
    config: bool = False

    @property
    def size(self) -> int:
        """Bytes the value needs: up to the end of its furthest endpoint."""
        return max(((e.bit_offset + e.bit_size + 7) // 8 for e in self.endpoints), default=0)

    def decode(self, value: bytes) -> dict[str, EndpointValue]:
        return {endpoint.name: endpoint.decode(value) for endpoint in self.endpoints}


@dataclass(frozen=True, slots=True)
class DeviceDefinition:
    manufacturer_id: int
    product_id: int
    developer: str
    product: str
    #: Sleeps between transmissions (battery node): commands wait until it is heard.
    power_down: bool
    registers: tuple[Register, ...]
    source: str = ""
    _by_id: dict[int, Register] = field(default_factory=dict, compare=False, repr=False)
    _by_endpoint: dict[str, Endpoint] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for register in self.registers:
            self._by_id[register.id] = register
            for endpoint in register.endpoints:
                self._by_endpoint[endpoint.name] = endpoint

    @property
    def key(self) -> tuple[int, int]:
        return self.manufacturer_id, self.product_id

    @property
    def endpoints(self) -> tuple[Endpoint, ...]:
        return tuple(e for r in self.registers if not r.config for e in r.endpoints)

    def register(self, register_id: int) -> Register | None:
        return self._by_id.get(register_id)

    def endpoint(self, name: str) -> Endpoint:
        try:
            return self._by_endpoint[name]
        except KeyError:
            raise KeyError(f"{self.product} has no endpoint {name!r}") from None

    def decode(self, register_id: int, value: bytes) -> dict[str, EndpointValue]:
        """Endpoint name → value for a register's bytes; empty for a register the definition does not describe."""
        register = self._by_id.get(register_id)
        return register.decode(value) if register else {}

    def encode(self, name: str, shown: EndpointValue, current: bytes | None = None, unit: str | None = None) -> bytes:
        """The bytes to write to set endpoint ``name`` to ``shown``, keeping the register's other endpoints."""
        endpoint = self.endpoint(name)
        register = self._by_id[endpoint.register_id]
        base = current if current is not None and len(current) == register.size else bytes(register.size)
        return endpoint.encode(shown, base, unit)


def _parse_bits(text: str | None, *, default: int, where: str) -> int:
    """``B.b`` → bits (B x 8 + b)."""
    if text is None or not text.strip():
        return default
    whole, _, bits = text.strip().partition(".")
    try:
        number = int(whole) * 8 + (int(bits) if bits else 0)
    except ValueError:
        raise DefinitionError(f"{where}: {text!r} is not B or B.b") from None
    if number < 0 or (bits and not 0 <= int(bits) <= 7):
        raise DefinitionError(f"{where}: {text!r} is not B or B.b")
    return number


def _parse_registers(section: ET.Element | None, *, config: bool, where: str) -> list[Register]:
    if section is None:
        return []
    registers = []
    for reg in section.findall("reg"):
        try:
            register_id = int(reg.get("id", ""))
        except ValueError:
            raise DefinitionError(f"{where}: <reg> without a numeric id") from None
        register_name = reg.get("name", f"Register {register_id}")
        endpoints = []
        for index, element in enumerate(reg.findall("param" if config else "endpoint")):
            name = element.get("name") or f"{register_name} {index}"
            kind = element.get("type", "num")
            direction = "out" if config else element.get("dir", "inp")
            if kind not in ENDPOINT_TYPES:
                raise DefinitionError(f"{where}: endpoint {name!r} has type {kind!r}, expected num, bin or str")
            if direction not in DIRECTIONS:
                raise DefinitionError(f"{where}: endpoint {name!r} has dir {direction!r}, expected inp or out")
            here = f"{where}: endpoint {name!r}"
            bit_offset = _parse_bits(element.findtext("position"), default=0, where=here)
            bit_size = _parse_bits(element.findtext("size"), default=8, where=here)
            if bit_size == 0:
                raise DefinitionError(f"{here}: size 0")
            if kind == "str" and (bit_offset % 8 or bit_size % 8):
                raise DefinitionError(f"{here}: a string endpoint must sit on whole bytes")
            units = []
            for unit in element.iter("unit"):
                try:
                    units.append(
                        Unit(unit.get("name", ""), float(unit.get("factor", "1")), float(unit.get("offset", "0")))
                    )
                except ValueError:
                    raise DefinitionError(f"{here}: unit factor/offset must be numbers") from None
                if units[-1].factor == 0:
                    raise DefinitionError(f"{here}: unit factor 0")
            endpoints.append(
                Endpoint(
                    name,
                    kind,
                    direction,
                    register_id,
                    index,
                    bit_offset,
                    bit_size,
                    tuple(units),
                    element.get("signed", "false").lower() == "true",
                    (element.get("label") or "").strip(),
                )
            )
        registers.append(Register(register_id, register_name, tuple(endpoints), config))
    return registers


def parse_definition(
    xml_text: str | bytes, *, manufacturer_id: int, product_id: int, source: str = ""
) -> DeviceDefinition:
    """One device XML; the ids come from the folder's index or the file's place (see the module's docstring)."""
    where = source or f"device {manufacturer_id}/{product_id}"
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError as exc:
        raise DefinitionError(f"{where}: not well-formed XML ({exc})") from None
    if root.tag != "device":
        raise DefinitionError(f"{where}: the root element is <{root.tag}>, expected <device>")
    registers = _parse_registers(root.find("config"), config=True, where=where)
    registers += _parse_registers(root.find("regular"), config=False, where=where)
    return DeviceDefinition(
        manufacturer_id,
        product_id,
        (root.findtext("developer") or "").strip(),
        (root.findtext("product") or "").strip(),
        (root.findtext("pwrdownmode") or "false").strip().lower() == "true",
        tuple(registers),
        source,
    )


#: A device file whose place gives its ids: ``<manufacturer id>/<product id>.xml``.
_IDS_FROM_PLACE = re.compile(r"^(\d+)/(\d+)\.xml$")


class DefinitionLibrary:
    """Every device definition found in one or more folders; later folders override earlier ones.

    A file that cannot be read does not stop the others: its message (naming it) goes to :attr:`errors`.
    """

    def __init__(self, definitions: Iterable[DeviceDefinition] = ()) -> None:
        self._definitions: dict[tuple[int, int], DeviceDefinition] = {d.key: d for d in definitions}
        self.errors: list[str] = []

    @classmethod
    def load(cls, *folders: Path | str) -> DefinitionLibrary:
        library = cls()
        for folder in folders or (SHIPPED_DEVICES_DIR,):
            library.add_folder(folder)
        return library

    def add_folder(self, folder: Path | str) -> None:
        """The folder's index entries first, then every device file it does not list whose place gives its ids."""
        folder = Path(folder)
        if not folder.is_dir():
            self.errors.append(f"{folder}: not a folder of device definitions")
            return
        listed: set[Path] = set()
        for manufacturer_id, product_id, path in self._index_entries(folder):
            listed.add(path)
            self._add_file(path, manufacturer_id=manufacturer_id, product_id=product_id)
        for path in sorted([*folder.glob("*.xml"), *folder.glob("*/*.xml")]):
            if path in listed or path == folder / INDEX_FILE:
                continue
            match = _IDS_FROM_PLACE.match(path.relative_to(folder).as_posix())
            if match is None:
                self.errors.append(
                    f"{path}: not listed in {folder / INDEX_FILE} and not named <manufacturer id>/<product id>.xml"
                )
                continue
            self._add_file(path, manufacturer_id=int(match[1]), product_id=int(match[2]))

    def _index_entries(self, folder: Path) -> Iterator[tuple[int, int, Path]]:
        """(manufacturer id, product id, device file) for each ``<dev>`` of the folder's ``devices.xml``, if any."""
        index_path = folder / INDEX_FILE
        if not index_path.exists():
            return
        try:
            index = ET.parse(index_path).getroot()
        except (OSError, ET.ParseError) as exc:
            self.errors.append(f"{index_path}: cannot read the device index ({exc})")
            return
        for developer in index.findall("developer"):
            for device in developer.findall("dev"):
                try:
                    manufacturer_id = _int_attribute(developer, "id", index_path)
                    product_id = _int_attribute(device, "id", index_path)
                except DefinitionError as exc:
                    self.errors.append(str(exc))
                    continue
                yield manufacturer_id, product_id, folder / developer.get("name", "") / f"{device.get('name', '')}.xml"

    def _add_file(self, path: Path, *, manufacturer_id: int, product_id: int) -> None:
        try:
            text = path.read_bytes()
        except OSError as exc:
            self.errors.append(f"{path}: cannot be read ({exc})")
            return
        try:
            definition = parse_definition(
                text, manufacturer_id=manufacturer_id, product_id=product_id, source=str(path)
            )
        except DefinitionError as exc:
            self.errors.append(str(exc))
            return
        self._definitions[definition.key] = definition

    def get(self, manufacturer_id: int, product_id: int) -> DeviceDefinition | None:
        return self._definitions.get((manufacturer_id, product_id))

    def for_product_code(self, value: bytes) -> DeviceDefinition | None:
        """The definition for register 0's value, or ``None`` for an unknown product."""
        return self.get(*split_product_code(value))

    def __iter__(self):
        return iter(self._definitions.values())

    def __len__(self) -> int:
        return len(self._definitions)


def folder_state(folder: Path | str) -> tuple:
    """What changes when a device file is dropped into, edited in or removed from ``folder``: names, sizes and
    modification times of the files :meth:`DefinitionLibrary.add_folder` reads (cheap to compare)."""
    folder = Path(folder)
    state = []
    for path in sorted([*folder.glob("*.xml"), *folder.glob("*/*.xml")]):
        try:
            stat = path.stat()
        except OSError:
            continue
        state.append((str(path), stat.st_size, stat.st_mtime_ns))
    return tuple(state)


def _int_attribute(element: ET.Element, name: str, where: Path) -> int:
    try:
        return int(element.get(name, ""))
    except ValueError:
        raise DefinitionError(f"{where}: <{element.tag}> needs a numeric {name}") from None
