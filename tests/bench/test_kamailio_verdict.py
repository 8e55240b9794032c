"""kamailio_bench's verdict: judged on both setup measures, and not at all against a baseline the
box starved (it failed or retransmitted calls)."""

from __future__ import annotations

from bench.kamailio_bench import Row, verdict


def row(mode: str, setup: float, wire: float, *, failed: int = 0, retrans: int = 0) -> Row:
    return Row(mode=mode, rate=1000, calls=10000, ok=10000 - failed, failed=failed, retrans=retrans,
               cps=1000.0, setup_mean=setup, setup_p50=0.0, setup_p95=4.0, kam_cpu=50,
               peer_cpu=None if mode == "noop" else 70, wire={"setup": {"mean": wire, "p95": wire * 2}},
               cdrs=None if mode == "noop" else 10000 - failed, drain_s=0.0, notes=[])


def test_added_setup_is_judged_on_sipp_and_on_the_wire():
    [met] = verdict([row("noop", 0.5, 1.5), row("chargeway", 2.3, 3.2)])
    assert "added setup +1.800 ms (on the wire +1.700 ms) -> meets" in met
    [missed] = verdict([row("noop", 0.5, 1.5), row("chargeway", 2.6, 3.2)])      # sipp says +2.1
    assert "-> MISSES" in missed


def test_a_disturbed_baseline_gives_no_verdict():
    [line] = verdict([row("noop", 26.9, 27.5, failed=89, retrans=132), row("chargeway", 2.1, 3.0)])
    assert "NO VERDICT" in line and "meets" not in line


def test_the_median_over_runs_skips_runs_without_a_valid_baseline():
    from bench.kamailio_bench import median_added

    runs = [[row("noop", 0.5, 1.5), row("chargeway", 2.1, 3.1)],      # +1.6 / +1.6
            [row("noop", 0.5, 1.5), row("chargeway", 1.5, 2.7)],      # +1.0 / +1.2
            [row("noop", 0.5, 1.5), row("chargeway", 20.5, 21.5)],    # +20  / +20 (a stalled run)
            [row("noop", 26.9, 27.5, failed=89, retrans=132), row("chargeway", 2.1, 3.0)]]  # void
    [line] = median_added(runs)
    assert "over 3 runs" in line
    assert "+1.600 ms (sipp), on the wire +1.600 ms" in line


def test_steal_share_comes_from_proc_stat():
    from bench.kamailio_bench import cpu_times

    steal, total = cpu_times()
    assert total > 0 and 0 <= steal <= total
