"""Fed-CMP (or any of our methods) in a Flower simulation: ``python -m harness.flower.example --out DIR``.

A small torch model shaped like the LLaVA projector (``linear_1 -> GELU -> linear_2``, 8 -> 16 -> 16), 5
simulated clients (Flower SuperNodes under ``flwr.simulation.run_simulation``, Ray actors), 3 rounds. Client k
regresses a teacher projector's outputs on its own inputs (shifted per client: non-IID), 32(k+1) samples,
a few SGD steps a round, and replies with its arrays, ``num-examples``, ``train_loss`` and ``align-error``
(mean 1 - cos(prediction, target) after training, the stand-in for Fed-CMP's e_k). The server side is
``harness.flower.strategy(method)``. Every upload is also written to DIR/round_<t>/client_<k>.safetensors
(with its n and e), the start to DIR/initial.safetensors and the result to DIR/final.safetensors, so that
anyone can recompute the federation with our aggregator alone (tests/distributed/test_flower_simulation.py).

Ray is kept on the loopback interface (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` makes it take 127.0.0.1 as the
node address instead of probing for a routable one), without its dashboard, with a 100 MiB object store.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch
from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp
from safetensors.torch import load_file, save_file

IN, HIDDEN, OUT = 8, 16, 16
STEPS, LR = 5, 0.05


def projector(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(IN, HIDDEN), torch.nn.GELU(), torch.nn.Linear(HIDDEN, OUT))


def as_state(model: torch.nn.Module) -> dict:
    """Sequential's keys (0.weight, 2.weight) under the projector's names (linear_1.weight, linear_2.weight)."""
    names = {"0": "linear_1", "2": "linear_2"}
    return {f"{names[k.split('.')[0]]}.{k.split('.')[1]}": v.detach().clone() for k, v in model.state_dict().items()}


def load_state(model: torch.nn.Module, state: dict) -> None:
    back = {"linear_1": "0", "linear_2": "2"}
    model.load_state_dict({f"{back[k.split('.')[0]]}.{k.split('.')[1]}": v for k, v in state.items()})


def client_data(client: int, round_: int):
    """Client k's samples of round t: inputs shifted by k (non-IID), targets from a fixed teacher."""
    g = torch.Generator().manual_seed(1000 * client + round_)
    x = torch.randn(32 * (client + 1), IN, generator=g) + 0.5 * client
    with torch.no_grad():
        y = projector(seed=99)(x)
    return x, y


def local_train(state: dict, client: int, round_: int) -> tuple:
    """A few SGD steps on MSE; (trained state, n, mean loss, alignment error 1 - cos)."""
    model = projector(seed=0)
    load_state(model, state)
    x, y = client_data(client, round_)
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    losses = []
    for _ in range(STEPS):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        losses.append(float(loss))
    with torch.no_grad():
        align = float((1 - torch.nn.functional.cosine_similarity(model(x), y, dim=-1)).mean())
    return as_state(model), len(x), sum(losses) / len(losses), align


def make_apps(out: Path, method: str, rounds: int, clients: int, hparams: dict):
    """The ServerApp (our method as the strategy) and the ClientApp, tracing into ``out``."""
    out = Path(out)
    client_app, server_app = ClientApp(), ServerApp()

    @client_app.train()
    def train(msg: Message, context: Context) -> Message:
        config = msg.content["config"]
        k, t = int(config["client-id"]), int(config["server-round"])
        state, n, loss, align = local_train(msg.content["arrays"].to_torch_state_dict(), k, t)
        trace = out / f"round_{t}"
        trace.mkdir(parents=True, exist_ok=True)
        save_file(state, str(trace / f"client_{k}.safetensors"), metadata={"n": str(n), "align_error": repr(align)})
        metrics = MetricRecord({"num-examples": n, "train_loss": loss, "align-error": align})
        return Message(RecordDict({"arrays": ArrayRecord(state), "metrics": metrics}), reply_to=msg)

    @server_app.main()
    def main(grid: Grid, context: Context) -> None:
        from harness.flower import strategy
        init = as_state(projector(seed=0))
        save_file(init, str(out / "initial.safetensors"))
        sampling = {"fraction_evaluate": 0.0, "min_train_nodes": clients, "min_available_nodes": clients}
        result = strategy(method, flower=sampling, **hparams).start(
            grid=grid, initial_arrays=ArrayRecord(init), num_rounds=rounds)
        save_file(dict(result.arrays.to_torch_state_dict()), str(out / "final.safetensors"))

    return server_app, client_app


def run(out, method: str = "fedcmp", rounds: int = 3, clients: int = 5, **hparams) -> dict:
    """The simulation, end to end; returns the final arrays."""
    from flwr.simulation import run_simulation
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "run.json").write_text(json.dumps({"method": method, "rounds": rounds, "clients": clients, "hparams": hparams}))
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    server_app, client_app = make_apps(out, method, rounds, clients, hparams)
    backend = {"client_resources": {"num_cpus": 1},
               "init_args": {"num_cpus": min(2, os.cpu_count() or 1), "include_dashboard": False,
                             "object_store_memory": 100 * 2**20}}
    run_simulation(server_app, client_app, num_supernodes=clients, backend_config=backend)
    return load_file(str(out / "final.safetensors"))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="where the uploads, the start and the result are written")
    p.add_argument("--method", default="fedcmp", help="any fedma method name (fedma methods)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--clients", type=int, default=5)
    p.add_argument("--hparams", default="{}", help='the method\'s hyperparameters as JSON, e.g. \'{"lam": 1.0}\'')
    args = p.parse_args(argv)
    final = run(args.out, args.method, args.rounds, args.clients, **json.loads(args.hparams))
    print(json.dumps({k: round(float(v.norm()), 6) for k, v in final.items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
