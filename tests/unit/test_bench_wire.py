"""perf.wire at the quick shapes: the table's byte counts, worked out from the shapes by hand."""
import csv
import math

from perf import wire
from perf.aggregation import SHAPES


def test_quick_table_holds_the_bytes_each_mode_sends(tmp_path):
    assert wire.main(["--quick", "--out", str(tmp_path), "--repeats", "1", "--block", "64"]) == 0
    rows = {r["what"]: float(r["value"]) for r in csv.DictReader(open(tmp_path / "wire.csv"))}
    sizes = [math.prod(s) for s in SHAPES["quick"].values()]       # 65536, 512, 262144, 512 entries
    n = sum(sizes)
    assert rows["fp16: bytes per client-round"] == rows["bf16: bytes per client-round"] == 2 * n
    assert rows["int8: bytes per client-round"] == n + 4 * sum(math.ceil(s / 64) for s in sizes)
    assert rows["topk: bytes per client-round"] == 8 * sum(math.ceil(0.01 * s) for s in sizes)
    assert rows["secagg K=5: bytes per client-round"] == 8 * (n + 1)
    assert 0 < rows["int8: relative error of the decoded update"] < 0.05
    assert (tmp_path / "wire.md").read_text().startswith("# Wire benchmark")
