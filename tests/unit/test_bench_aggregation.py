"""The server-rule benchmark's row planning and merging (perf/aggregation.py), and one quick run."""
import csv

import pytest

from perf import aggregation as bench

pytestmark = pytest.mark.unit


def row(label, k, r2=None):
    """A finished row as run_case returns it (times and memory present)."""
    return {"label": label, "method": label.split()[0], "hparams": "{}", "k": k, "status": "ok",
            "round2_s": r2, "extra_mib": 1.0, "est_gib": 0.0, "load1": 0.0}


def test_merge_rows_replaces_same_label_and_k_and_sorts_by_k():
    """Earlier (fedavg 5, fedcmp 5, fedavg 50) + new (fedcmp 5 again, fedavg 100): the fedcmp-5 row is
    the new one, in its old place; fedavg 100 comes last."""
    earlier = [row("fedavg", 5, 1.0), row("fedcmp", 5, 2.0), row("fedavg", 50, 3.0)]
    new = [row("fedavg", 100, 4.0), row("fedcmp", 5, 9.0)]
    merged = bench.merge_rows(earlier, new)
    assert [(r["label"], r["k"], r["round2_s"]) for r in merged] == [
        ("fedavg", 5, 1.0), ("fedcmp", 5, 9.0), ("fedavg", 50, 3.0), ("fedavg", 100, 4.0)]


def test_plan_with_methods():
    """Flower's FedAvg follows ours at each K (Fed-CMP has no Flower counterpart); without Flower, not."""
    rows = bench.plan([5, 100], methods=["fedavg", "fedcmp"])
    assert [(c["label"], c["k"]) for c in rows] == [
        ("fedavg", 5), ("Flower FedAvg", 5), ("fedcmp svd=gram", 5),
        ("fedavg", 100), ("Flower FedAvg", 100), ("fedcmp svd=gram", 100)]
    assert rows[1]["method"] == "flower:fedavg"
    rows = bench.plan([5], methods=["fedavg", "fedcmp"], flower=False)
    assert [c["label"] for c in rows] == ["fedavg", "fedcmp svd=gram"]


def test_fedavg_ratio_line_reads_round_2():
    """Fed-CMP 12 s against FedAvg 4 s at K=100 (round 2) -> 3.0x; K=5 has no FedAvg row -> left out."""
    rows = [dict(row("fedcmp svd=gram", 100, 12.0), method="fedcmp", hparams='{"svd": "gram"}', extra_mib=1.0),
            dict(row("fedcmp svd=gram", 5, 1.0), method="fedcmp", hparams='{"svd": "gram"}', extra_mib=1.0),
            row("fedavg", 100, 4.0)]
    assert "K=100: 3.0x" in bench.fedavg_ratio_line(rows)
    assert "K=5" not in bench.fedavg_ratio_line(rows)


def test_unknown_method_is_one_line(capsys):
    with pytest.raises(SystemExit):
        bench.parse_args(["--methods", "fedavg,fedcmpp"])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "unknown fedcmpp" in err and "valid:" in err and "fedcmp" in err


def test_quick_run_merges_into_an_earlier_csv(tmp_path):
    """Two real quick runs (subprocess per row): K=2 FedAvg, then K=3 FedAvg, Fed-CMP and SCAFFOLD (whose
    clients upload control variates too) merged into the first CSV: four measured rows, and the summary
    states the Fed-CMP/FedAvg ratio at K=3."""
    first, second = tmp_path / "a", tmp_path / "b"
    assert bench.main(["--quick", "--ks", "2", "--methods", "fedavg", "--threads", "1", "--out", str(first)]) == 0
    assert bench.main(["--quick", "--ks", "3", "--methods", "fedavg,fedcmp,scaffold", "--threads", "1", "--out", str(second),
                       "--merge-into", str(first / "aggregation.csv")]) == 0
    with open(second / "aggregation.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["label"], r["k"], r["status"]) for r in rows] == [
        ("fedavg", "2", "ok"), ("Flower FedAvg", "2", "ok"), ("fedavg", "3", "ok"), ("Flower FedAvg", "3", "ok"),
        ("fedcmp svd=gram", "3", "ok"), ("scaffold", "3", "ok")]
    assert all(float(r["round2_s"]) > 0 and float(r["extra_mib"]) >= 0 for r in rows)
    # 512x128 + 512 + 512x512 + 512 = 328,704 float32 entries: FedAvg at K=3 reads 3 uploads, writes 1
    assert float(rows[2]["gbytes"]) == pytest.approx(4 * 328_704 * 4 / 1e9)
    assert all(float(r["x_floor"]) > 0 and float(r["bandwidth"]) > 0 for r in rows)
    assert float(rows[4]["gram_s"]) > 0 and float(rows[4]["eigen_s"]) > 0
    md = (second / "aggregation.md").read_text()
    assert "over FedAvg's: K=3:" in md and "limits (the best of the 2 measurement(s)" in md
    assert "over Flower 1.42's for the same rule on the same uploads: fedavg K=2:" in md
    assert "Fed-CMP (svd=gram) at K=3" in md


@pytest.mark.parametrize("extras, verdict", [
    ((1728.0, 1760.0, 1545.0), "independent of K"),   # K=100 below K=5: no growth
    ((1728.0, 1800.0, 1890.0), "independent of K"),   # +162 MiB <= 10% of 1728
    ((1728.0, 2000.0, 1910.0), "GROWS with K"),       # +182 MiB > 172.8
])
def test_memory_line_judges_growth_from_smallest_to_largest_k(extras, verdict):
    rows = [dict(row("fedcmp svd=gram", k, 1.0), method="fedcmp", hparams='{"svd": "gram"}', extra_mib=e)
            for k, e in zip((5, 50, 100), extras)]
    assert f"**{verdict}**" in bench.memory_line(rows, "gram", bench.SHAPES["paper"])
