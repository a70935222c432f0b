"""bench/swap_codec.py measures what it claims: both decoders read the same fields from the same lines."""

from __future__ import annotations

from bench import swap_codec
from heating.swap import decode_line


def test_the_sample_lines_decode_and_the_bare_decoder_agrees_with_the_codec():
    lines = swap_codec.sample_lines(500)
    assert len(lines) == 500
    assert set(swap_codec.SPEC_LINES) <= set(lines)
    for line in lines:
        packet = decode_line(line)
        if not packet.extended:
            bare = swap_codec.bare_decode(line)
            assert (bare[2], bare[3], bare[8], bare[9]) == (
                packet.destination,
                packet.source,
                packet.register_id,
                packet.value,
            )


def test_the_benchmark_runs_and_reports_the_target(monkeypatch, capsys):
    monkeypatch.setenv("BENCH_LINES", "2000")
    monkeypatch.setenv("BENCH_ROUNDS", "1")
    swap_codec.main([])
    output = capsys.readouterr().out
    assert "heating.swap.decode_line" in output
    assert "ratio codec / bare" in output
    assert "target >= 100,000 lines/s" in output
