"""Tables, plot and export (SPEC 7) on a small records fixture written by hand.

Fixture (scenario ii, final round 2; round 1 values differ so a wrong round shows):

    method  seed  MM-Vet (gpt_eval_score)     POPE (pope_accuracy, a fraction -> percent)
    local   0     clients 10, 20, 30 -> 20.0  clients .5 .6 .7 -> 60.0
    fedavg  0,1   20, 22 -> 21.0 ± 1.4        .70, .74 -> 72.0 ± 2.8 (sample std sqrt(8) = 2.83)
    fedcmp  0,1   30, 32 -> 31.0 ± 1.4        .72, .72 -> 72.0 ± 0.0
    MMBench is recorded as missing (null) everywhere -> n/a; the other benchmarks have no records -> n/a.

Ranking by hand: MM-Vet best Fed-CMP 31.0, second FedAvg 21.0; POPE FedAvg and Fed-CMP tie at 72.0 (both
bold), Local 60.0 second.
"""
import json
import struct

import pytest
import torch
from safetensors.torch import load_file, save_file

from harness.cli import main
from harness.report.render import to_csv, to_latex, to_markdown
from harness.report.runs import ablation_label, load_run, rwf_label, score
from harness.report.cells import mean_std, rank_styles
from harness.report.tables import ablation_tables, main_tables

pytestmark = pytest.mark.unit


def rec(method, seed, rnd, client, bench, metric, value, n=100_000):
    """A score record; n questions (large by default, so no difference is within sampling noise)."""
    return {"run_id": f"{method}_s{seed}", "method": method, "scenario": "ii", "seed": seed, "round": rnd,
            "client": client, "benchmark": bench, "metric": metric, "value": value, "n": n, "judge": None,
            "config_hash": "x", "code_version": "0"}


def write_run(root, method, seed, records, hparams=None):
    d = root / f"{method}_s{seed}_{len(list(root.iterdir()))}"
    d.mkdir()
    (d / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (d / "config.yaml").write_text(json.dumps({"aggregator": {"method": method,
                                                              "hparams": {method: hparams or {}}}}))
    return d


def global_run(root, method, seed, mmvet, pope, hparams=None):
    records = []
    for rnd, scale in ((1, 0.5), (2, 1.0)):
        records += [rec(method, seed, rnd, "global", "mmvet", "gpt_eval_score", mmvet * scale),
                    rec(method, seed, rnd, "global", "pope", "pope_accuracy", pope * scale),
                    rec(method, seed, rnd, "global", "mmbench", "gpt_eval_score", None),
                    rec(method, seed, rnd, "global", "heldout", "caption_loss", 3.0 / rnd)]
    return write_run(root, method, seed, records, hparams)


@pytest.fixture
def runs_dir(tmp_path):
    root = tmp_path / "runs"
    root.mkdir()
    local = []
    for rnd, scale in ((1, 0.5), (2, 1.0)):
        for c, (mv, po) in enumerate(((10, .5), (20, .6), (30, .7))):
            local += [rec("local", 0, rnd, c, "mmvet", "gpt_eval_score", mv * scale),
                      rec("local", 0, rnd, c, "pope", "pope_accuracy", po * scale),
                      rec("local", 0, rnd, c, "mmbench", "gpt_eval_score", None)]
    write_run(root, "local", 0, local)
    global_run(root, "fedavg", 0, 20.0, 0.70)
    global_run(root, "fedavg", 1, 22.0, 0.74)
    global_run(root, "fedcmp", 0, 30.0, 0.72)
    global_run(root, "fedcmp", 1, 32.0, 0.72)
    return root


def runs_of(root):
    return [load_run(d) for d in sorted(root.iterdir())]


EXPECTED_CSV = """\
Method,MM-Vet,MMBench,SEED,LLaVA-Bench,POPE,MME,MMVP
Local,20.0,n/a,n/a,n/a,60.0,n/a,n/a
FedAvg,21.0 ± 1.4,n/a,n/a,n/a,72.0 ± 2.8,n/a,n/a
Fed-CMP,31.0 ± 1.4,n/a,n/a,n/a,72.0 ± 0.0,n/a,n/a
"""

EXPECTED_LATEX = r"""\begin{table}[t]
\centering
\caption{Scenario II: final-round scores}
\begin{tabular}{lccccccc}
\toprule
Method & MM-Vet & MMBench & SEED & LLaVA-Bench & POPE & MME & MMVP \\
\midrule
Local & 20.0 & n/a & n/a & n/a & \underline{60.0} & n/a & n/a \\
FedAvg & \underline{21.0 $\pm$ 1.4} & n/a & n/a & n/a & \textbf{72.0 $\pm$ 2.8} & n/a & n/a \\
Fed-CMP & \textbf{31.0 $\pm$ 1.4} & n/a & n/a & n/a & \textbf{72.0 $\pm$ 0.0} & n/a & n/a \\
\bottomrule
\end{tabular}
\end{table}
"""


def test_main_table_csv(runs_dir):
    (table,) = main_tables(runs_of(runs_dir))
    assert table.name == "table1_ii"
    assert to_csv(table) == EXPECTED_CSV


def test_within_noise_by_hand():
    """Best 80 with SE 2: 78 is within two SEs (2 < 4), 70 is not, the best itself is never marked."""
    from harness.report.tables import within_noise
    assert within_noise([80.0, 78.0, 70.0, None], [2.0, 5.0, 1.0, None]) == [False, True, False, False]
    assert within_noise([80.0], [2.0]) == [False]


def test_noise_mark_in_markdown_and_latex_not_csv(tmp_path):
    """POPE 81% vs 80% on 400 questions: the best's SE is 100 sqrt(.81 x .19 / 400) = 1.96, so FedAvg's
    80.0 is marked; the CSV keeps plain values."""
    root = tmp_path / "runs"
    root.mkdir()
    for method, value in (("fedavg", 0.80), ("fedcmp", 0.81)):
        write_run(root, method, 0, [rec(method, 0, 1, "global", "pope", "pope_accuracy", value, n=400)])
    (table,) = main_tables(runs_of(root))
    assert "| FedAvg | n/a | n/a | n/a | n/a | <u>80.0≈</u> |" in to_markdown(table)
    assert r"80.0$\approx$" in to_latex(table) and "≈" not in to_csv(table)
    assert "two question-sampling standard errors" in table.note


def test_main_table_latex_bold_underline_ties(runs_dir):
    (table,) = main_tables(runs_of(runs_dir))
    assert to_latex(table) == EXPECTED_LATEX


def test_main_table_markdown(runs_dir):
    md = to_markdown(main_tables(runs_of(runs_dir))[0])
    assert "| Local | 20.0 | n/a | n/a | n/a | <u>60.0</u> | n/a | n/a |" in md
    assert "| Fed-CMP | **31.0 ± 1.4** | n/a | n/a | n/a | **72.0 ± 0.0** | n/a | n/a |" in md


def test_round_selection(runs_dir):
    # round 1 holds half the values: fedavg mmvet 10, 11 -> 10.5 ± 0.7
    table = main_tables(runs_of(runs_dir), round_sel=1)[0]
    assert to_csv(table).splitlines()[2] == "FedAvg,10.5 ± 0.7,n/a,n/a,n/a,36.0 ± 1.4,n/a,n/a"


def test_local_is_mean_over_clients(runs_dir):
    local = next(r for r in runs_of(runs_dir) if r.method == "local")
    assert score(local, "mmvet") == pytest.approx(20.0)
    assert score(local, "pope") == pytest.approx(60.0)
    assert score(local, "mmbench") is None


def test_mean_std_and_ranks_by_hand():
    assert mean_std([1.0, 3.0]) == (2.0, pytest.approx(2 ** 0.5))
    assert mean_std([None, 4.0]) == (4.0, None)
    assert mean_std([None, None]) == (None, None)
    assert rank_styles([5.0, None, 7.0, 7.0, 6.0, 5.0]) == ["", "", "best", "best", "second", ""]


def test_paper_side_by_side(runs_dir):
    table = main_tables(runs_of(runs_dir), paper=True)[0]
    lines = to_csv(table).splitlines()
    assert lines[0] == ("Method,MM-Vet,MM-Vet (paper),MMBench,MMBench (paper),SEED,SEED (paper),LLaVA-Bench,"
                        "LLaVA-Bench (paper),POPE,POPE (paper),MME,MME (paper),MMVP,MMVP (paper)")
    # paper Table 1 rows Local / FedAvg / Fed-CMP (results/paper/reference_main_tables.csv)
    assert lines[1] == "Local,20.0,26.9,n/a,25.8,n/a,24.5,n/a,35.9,60.0,60.9,n/a,856.4,n/a,29.9"
    assert lines[-1] == "Fed-CMP,31.0 ± 1.4,32.5,n/a,32.7,n/a,30.5,n/a,46.6,72.0 ± 0.0,74.5,n/a,1143.2,n/a,33.0"
    # every method of the paper appears (rows with paper numbers only), ours bold only in our columns
    assert [row[0].text for row in table.rows] == ["Local", "FedAvg", "FedAdam", "FedProx", "MOON", "FedAvg+TA",
                                                   "FedAvg+TIES", "FedAvg+DARE", "Fed-CMP"]
    assert all(c.style == "" for row in table.rows for c in row[2::2])


def test_ablation_rows(tmp_path):
    """A run belongs to the table that varies what it changes: Table 3 the modules (rwf full or none),
    Table 4 rwf's components and lambda; the main table Fed-CMP at every default, and a named variant
    (sign OPM) in a row of its own."""
    root = tmp_path / "abl"
    root.mkdir()
    global_run(root, "fedavg", 0, 20.0, 0.7)
    global_run(root, "fedcmp", 0, 25.0, 0.7, {"csc": True, "rwf": "none", "opm": False})
    global_run(root, "fedcmp", 0, 28.0, 0.7, {"csc": False, "opm": False})
    global_run(root, "fedcmp", 0, 30.0, 0.7, {"rwf": "qua"})
    global_run(root, "fedcmp", 0, 32.0, 0.7, {"lam": 2.0})
    global_run(root, "fedcmp", 0, 34.0, 0.7, {"opm_align": "sign"})
    global_run(root, "fedcmp", 0, 36.0, 0.7, {"csc": False, "coef_merge": "ties"})
    runs = runs_of(root)
    assert sorted(filter(None, (ablation_label(r) for r in runs))) == ["csc", "none", "rwf"]
    assert sorted(filter(None, (rwf_label(r) for r in runs))) == ["lambda=2.0", "rwf_qua"]
    t3, t4 = ablation_tables(runs)
    assert to_csv(t3) == "Modules,LLaVA-Bench,MM-Vet,MMBench\nnone,n/a,20.0,n/a\ncsc,n/a,25.0,n/a\nrwf,n/a,28.0,n/a\n"
    assert to_csv(t4) == "Setting,MM-Vet,MMBench\nrwf_qua,30.0,n/a\nlambda=2.0,32.0,n/a\n"
    main = main_tables(runs)[0]
    assert [row[0].text for row in main.rows] == ["FedAvg", "Fed-CMP (sign OPM)"]
    assert main.rows[1][1].text == "34.0"


def test_tables_discover_a_sweep_root_and_give_each_variant_a_row(tmp_path):
    """A sweep's layout ROOT/SCENARIO/METHOD[+VARIANT]/seedS: `fedma tables ROOT` finds the six runs and
    writes mean ± std over seeds per method and variant: FedAvg (20, 22) 21.0 ± 1.4, Fed-CMP (30, 32)
    31.0 ± 1.4, Fed-CMP (rank8) (40, 44) 42.0 ± 2.8 (sample std of 40, 44: sqrt(8) = 2.83)."""
    from harness.report.plot import plot_runs
    from harness.report.runs import curve_key, discover
    root = tmp_path / "sweep"
    for method, variant, seed, mmvet, hp in [("fedavg", None, 0, 20.0, {}), ("fedavg", None, 1, 22.0, {}),
                                             ("fedcmp", None, 0, 30.0, {}), ("fedcmp", None, 1, 32.0, {}),
                                             ("fedcmp", "rank8", 0, 40.0, {"rank": 8}),
                                             ("fedcmp", "rank8", 1, 44.0, {"rank": 8})]:
        parent = root / "ii" / (method + (f"+{variant}" if variant else ""))
        parent.mkdir(parents=True, exist_ok=True)
        (global_run(parent, method, seed, mmvet, 0.7, hp)).rename(parent / f"seed{seed}")
    (root / "slurm").mkdir()                               # logs and scripts beside the runs are ignored
    ckpt = root / "ii" / "fedavg" / "seed0" / "checkpoints" / "round_001"     # a checkpoint's copy of the records
    ckpt.mkdir(parents=True)
    (ckpt / "records.jsonl").write_text((root / "ii" / "fedavg" / "seed0" / "records.jsonl").read_text())
    assert len(discover([root])) == 6
    out = tmp_path / "t"
    assert main(["tables", str(root), "--format", "csv", "--out", str(out)]) == 0
    lines = (out / "table1_ii.csv").read_text().splitlines()
    assert [line.split(",")[:2] for line in lines[1:]] == [["FedAvg", "21.0 ± 1.4"], ["Fed-CMP", "31.0 ± 1.4"],
                                                         ["Fed-CMP (rank8)", "42.0 ± 2.8"]]
    runs = [load_run(d) for d in discover([root])]
    assert sorted({curve_key(r) for r in runs}) == ["fedavg", "fedcmp", "fedcmp+rank8"]
    assert plot_runs(runs, "mmvet.gpt_eval_score", tmp_path / "f.png").stat().st_size > 1000
    assert main(["tables", str(tmp_path / "t"), "--out", str(out)]) == 2      # no run under it: one line


def test_cli_tables_all_formats(runs_dir, tmp_path):
    out = tmp_path / "tables"
    stats = tmp_path / "stats.csv"
    stats.write_text("scenario,cluster,count,count_short,percent\nii,0,30,30,60.0\nii,1,20,20,40.0\n")
    assert main(["tables", *map(str, sorted(runs_dir.iterdir())), "--format", "csv,latex,md",
                 "--out", str(out), "--stats", str(stats)]) == 0
    assert (out / "table1_ii.csv").read_text() == EXPECTED_CSV
    assert (out / "table1_ii.tex").read_text() == EXPECTED_LATEX
    assert (out / "table1_ii.md").exists()
    assert (out / "table9_clusters.csv").read_text() == "Scenario,Cluster 0,Cluster 1\nII,30 (60.00%),20 (40.00%)\n"


def test_cli_bad_format_is_one_line_error(runs_dir, tmp_path, capsys):
    assert main(["tables", str(min(runs_dir.iterdir())), "--format", "xls", "--out", str(tmp_path)]) == 2


def make_final(tmp_path, names=("projector",)):
    run = tmp_path / "run"
    (run / "final").mkdir(parents=True)
    g = torch.Generator().manual_seed(0)
    state = {"linear_1.weight": torch.randn(8, 4, generator=g), "linear_1.bias": torch.randn(8, generator=g),
             "linear_2.weight": torch.randn(6, 8, generator=g), "linear_2.bias": torch.randn(6, generator=g)}
    for n in names:
        save_file(state, str(run / "final" / f"{n}.safetensors"))
    return run, state


def llava_get_w(weights, keyword):
    """LLaVA's own adapter loading (llava/model/llava_arch.py, initialize_vision_modules):
    mm_projector.load_state_dict(get_w(torch.load(pretrain_mm_mlp_adapter), 'mm_projector'))."""
    return {k.split(keyword + '.')[1]: v for k, v in weights.items() if keyword in k}


def test_export_llava_layout(tmp_path):
    run, state = make_final(tmp_path)
    assert main(["export", str(run), "--format", "llava", "--out", str(tmp_path / "llava")]) == 0
    loaded = torch.load(tmp_path / "llava" / "mm_projector.bin", weights_only=True)
    assert sorted(loaded) == ["model.mm_projector.0.bias", "model.mm_projector.0.weight",
                              "model.mm_projector.2.bias", "model.mm_projector.2.weight"]
    assert torch.equal(loaded["model.mm_projector.0.weight"], state["linear_1.weight"])
    assert torch.equal(loaded["model.mm_projector.2.bias"], state["linear_2.bias"])
    meta = json.loads((tmp_path / "llava" / "config.json").read_text())
    assert (meta["mm_hidden_size"], meta["hidden_size"], meta["mm_projector_type"]) == (4, 6, "mlp2x_gelu")
    # LLaVA's loader, strict, into its mlp2x_gelu: Sequential(Linear(4, 8), GELU, Linear(8, 6))
    mlp = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.GELU(), torch.nn.Linear(8, 6))
    mlp.load_state_dict(llava_get_w(loaded, "mm_projector"), strict=True)
    x = torch.randn(3, 4)
    want = torch.nn.functional.linear(torch.nn.functional.gelu(torch.nn.functional.linear(
        x, state["linear_1.weight"], state["linear_1.bias"])), state["linear_2.weight"], state["linear_2.bias"])
    assert torch.allclose(mlp(x), want, atol=1e-6)


def tiny_run(tmp_path):
    """A finished tiny run's final projector and config.yaml (what the round engine writes)."""
    from harness.core.config import dump_config, load_config
    from harness.model.build import build_bundle, init_projector
    run = tmp_path / "run"
    (run / "final").mkdir(parents=True)
    state = init_projector(build_bundle("tiny").model, 11)
    save_file(state, str(run / "final" / "projector.safetensors"))
    (run / "config.yaml").write_text(dump_config(load_config("tiny")))
    return run, state


def test_export_hf_is_a_model_from_pretrained_loads(tmp_path):
    from transformers import LlavaForConditionalGeneration
    run, state = tiny_run(tmp_path)
    assert main(["export", str(run), "--format", "hf", "--out", str(tmp_path / "hf")]) == 0
    model = LlavaForConditionalGeneration.from_pretrained(tmp_path / "hf")
    proj = model.model.multi_modal_projector.state_dict()
    assert all(torch.equal(proj[k], v) for k, v in state.items())
    alone = load_file(str(tmp_path / "hf" / "projector.safetensors"))
    assert sorted(alone) == sorted(f"multi_modal_projector.{k}" for k in state)
    assert json.loads((tmp_path / "hf" / "projector_config.json").read_text())["projector_hidden_size"] == 64
    run2, _ = make_final(tmp_path / "other")      # 4 -> 8 -> 6: not the tiny preset's projector
    (run2 / "config.yaml").write_text((run / "config.yaml").read_text())
    assert main(["export", str(run2), "--format", "hf", "--out", str(tmp_path / "x")]) == 2


def test_export_local_needs_client(tmp_path):
    run, _ = make_final(tmp_path, names=("client_00", "client_01"))
    assert main(["export", str(run), "--format", "llava", "--out", str(tmp_path / "x")]) == 2
    assert main(["export", str(run), "--format", "llava", "--out", str(tmp_path / "x"), "--client", "1"]) == 0


def test_plot_writes_png(runs_dir, tmp_path):
    out = tmp_path / "fig4.png"
    assert main(["plot", *map(str, sorted(runs_dir.iterdir())), "--metric", "heldout.caption_loss",
                 "--out", str(out)]) == 0
    head = out.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", head[16:24])
    assert width > 100 and height > 100
    assert main(["plot", str(min(runs_dir.iterdir())), "--metric", "nope", "--out", str(out)]) == 2


def test_no_ablation_tables_without_variants(runs_dir):
    assert ablation_tables(runs_of(runs_dir)) == []


def test_table9_latex_escapes_percent(tmp_path):
    from harness.report.tables import cluster_table
    stats = tmp_path / "stats.csv"
    stats.write_text("scenario,cluster,count,count_short,percent\nxm,0,3,3,75.0\nxm,1,1,1,25.0\n")
    tex = to_latex(cluster_table(stats))
    assert r"XM & 3 (75.00\%) & 1 (25.00\%) \\" in tex


def test_a_note_is_one_line_under_the_markdown_and_latex_table_and_absent_from_csv():
    from harness.report.render import to_csv, to_latex, to_markdown
    from harness.report.cells import Cell, Table
    t = Table("t", "Title", ["Method", "POPE"], [[Cell("FedAvg"), Cell("81.0")]], note="synthetic_world & more")
    assert to_markdown(t).splitlines()[-1] == "_synthetic_world & more_"
    assert r"\par\footnotesize synthetic\_world \& more" in to_latex(t).splitlines()[-2]
    assert "synthetic" not in to_csv(t)


def test_client_table_from_the_dirichlet_deal(tmp_path):
    """Two clusters dealt to three clients, counts [[3, 1], [0, 6], [2, 0]] (total 12): client totals 4, 6,
    2 and shares 33.33%, 50.00%, 16.67%; a run of another scenario without a deal gets no table."""
    from harness.report.clients import client_tables
    from harness.report.runs import Run
    (tmp_path / "client_clusters.json").write_text(json.dumps(
        {"alpha": 0.5, "clusters": 2, "counts": [[3, 1], [0, 6], [2, 0]]}))
    runs = [Run(tmp_path / "a", "fedavg", "II", 0, config={"data": {"root": str(tmp_path)}}),
            Run(tmp_path / "b", "fedavg", "TT", 0, config={"data": {"root": str(tmp_path / "none")}})]
    (table,) = client_tables(runs)
    assert table.name == "clients_ii" and "alpha 0.5" in table.title
    assert table.header == ["Client", "Cluster 0", "Cluster 1", "Total", "Share"]
    assert [[c.text for c in row] for row in table.rows] == [
        ["0", "3", "1", "4", "33.33%"], ["1", "0", "6", "6", "50.00%"], ["2", "2", "0", "2", "16.67%"]]
