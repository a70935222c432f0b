"""How many modem lines per second does the SWAP codec decode? (issue 6's codec figure)

The codec alone (``heating.swap.decode_line``: validation, RSSI/LQI, short and extended addresses, a frozen
``Packet``) beside a bare decoder as the anchor — ``bytes.fromhex`` and slicing into a tuple, no checks — on the
same lines in the same process, so the ratio says what the checks and the packet object cost here. Target:
≥ 100,000 lines/s for the codec.

    python -m bench swap_codec      (BENCH_LINES=N lines per round, default 200,000; BENCH_ROUNDS, default 5)
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import time

from heating.swap import Packet, decode_line, encode_received
from heating.swap.codec import Function, rssi_dbm

TARGET_LINES_PER_SECOND = 100_000
SPEC_LINES = [
    "(2A2F)000500070005000000000100000007",
    "(E430)0012001A00120C02E4",
    "(3030)0005000800050B01",
    "(E531)0012000600120A003C",
    "(3C2D)0000000380123412340C02E4",
]


def sample_lines(count: int, seed: int = 1) -> list[str]:
    """The spec's example lines and STATUS packets like a house of heaters sends (1 in 10 extended)."""
    rng = random.Random(seed)
    lines = list(SPEC_LINES)
    while len(lines) < count:
        extended = rng.random() < 0.1
        address = rng.randrange(1, 0xFFFF if extended else 0xFF)
        packet = Packet(
            0,
            address,
            Function.STATUS,
            address,
            rng.choice((0, 11, 12, 13)),
            rng.randbytes(rng.choice((1, 2, 8))),
            rng.randrange(256),
            extended=extended,
            rssi=rssi_dbm(rng.randrange(256)),
            lqi=rng.randrange(128),
        )
        lines.append(encode_received(packet))
    rng.shuffle(lines)
    return lines[:count]


def bare_decode(line: str) -> tuple:
    """The anchor: what a decoder without any validation does."""
    data = bytes.fromhex(line[6:])
    return (
        int(line[1:3], 16),
        int(line[3:5], 16),
        data[0],
        data[1],
        data[2],
        data[3],
        data[4],
        data[5],
        data[6],
        data[7:],
    )


def lines_per_second(decode, lines: list[str]) -> float:
    started = time.perf_counter()
    for line in lines:
        decode(line)
    return len(lines) / (time.perf_counter() - started)


def main(argv: list[str]) -> int:
    count = int(os.environ.get("BENCH_LINES", "200000"))
    rounds = int(os.environ.get("BENCH_ROUNDS", "5"))
    lines = sample_lines(count)
    # Both decoders see exactly the same lines; a wrong decode would make the comparison meaningless.
    assert decode_line("(E430)0012001A00120C02E4").value_int == 740
    # Rounds alternate the two decoders so that a busy machine slows both alike; the ratio is taken per round.
    codec_rates, bare_rates = [], []
    for _ in range(rounds):
        codec_rates.append(lines_per_second(decode_line, lines))
        bare_rates.append(lines_per_second(bare_decode, lines))
    codec = statistics.median(codec_rates)
    bare = statistics.median(bare_rates)
    ratio = statistics.median(c / b for c, b in zip(codec_rates, bare_rates, strict=True))
    print(f"lines: {count:,} per round, medians of {rounds} alternating rounds, Python {sys.version.split()[0]}")
    print(f"bare decoder (bytes.fromhex + slicing): {bare:>12,.0f} lines/s")
    print(f"heating.swap.decode_line              : {codec:>12,.0f} lines/s")
    print(f"ratio codec / bare                    : {ratio:>12.2f}")
    met = codec >= TARGET_LINES_PER_SECOND
    print(f"target >= {TARGET_LINES_PER_SECOND:,} lines/s: {'met' if met else 'NOT met'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
