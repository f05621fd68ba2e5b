"""Training throughput of ``BoostMISClassifier.fit`` against a bare PyTorch loop.

What is measured
----------------
*ours*
    Wall time of ``BoostMISClassifier(max_epochs=E, random_state=0,
    device=...).fit(X, y)``: the whole call, input validation, skorch setup,
    augmentation fitting and the transduction read-back included.
*bare*
    Wall time of a plain PyTorch loop doing the same per-step work with the same
    module class (:class:`~sklearn_boostmis.modules.MLPClassifierModule`, same
    sizes), the same hyper-parameters (the estimator's defaults) and the same
    number of steps (``ceil(n_unlabeled / (mu B))`` per epoch times ``E``). A
    step draws ``B`` labeled rows and ``mu B`` unlabeled rows by
    ``torch.randperm`` indexing of tensors moved to the device once, adds the
    weak noise to both, forwards the weak unlabeled view under ``no_grad``
    (train mode), takes the softmax and the adaptive-threshold mask (with its
    per-row confidence flags), forwards ``cat([labeled weak, unlabeled
    strong])`` with gradient (strong = feature dropout + noise), computes the
    supervised CE and the masked CE, runs backward and an SGD step (momentum 0.9,
    Nesterov, weight decay on weights only) under the per-step cosine LR, then
    updates the EMA teacher (``torch._foreach_lerp_`` on parameters, buffers
    copied). Setup (tensor conversion, module, teacher, optimizer) is timed too.
    It skips only what is bookkeeping of the estimator: the per-row pseudo-label
    memory, history records, callbacks and validation.

The two are interleaved (ours, bare, ours, bare, ...) for ``--repeats`` rounds
after one untimed warm-up of each, and the median of each is reported.

Definitions
-----------
samples/s
    ``steps * B * (1 + 2 mu) / time``: forward samples per step are the ``B``
    labeled rows, the ``mu B`` weak unlabeled rows and the ``mu B`` strong ones
    (the last, shorter unlabeled batch of an epoch is counted as full).
ratio
    ``bare_time / ours_time``; >= 0.8 means ``fit`` is at most 25% slower.

Run ``python benchmarks/throughput.py --write`` to refresh ``benchmarks/RESULTS.md``.
"""

import argparse
import copy
import datetime
import math
import os
import platform
import re
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import sklearn
import skorch
import torch
import torch.nn.functional as F

from sklearn_boostmis import BoostMISClassifier
from sklearn_boostmis.modules import (
    MLPClassifierModule,
    no_weight_decay_names,
    resolve_device,
)

P = BoostMISClassifier().get_params()  # hyper-parameters shared by both runs
RESULTS = Path(__file__).with_name("RESULTS.md")
START, END = "<!-- throughput:start -->", "<!-- throughput:end -->"
PRESETS = "5207:2048:500,1797:64:50"  # MESCC-sized; digits-sized (quickstart)


def make_data(n_samples, n_features, n_labeled, n_classes=2):
    """Gaussian blobs; all but ``n_labeled`` random rows get the label -1."""
    rng = np.random.RandomState(0)
    centers = rng.normal(size=(n_classes, n_features))
    y = rng.randint(n_classes, size=n_samples)
    X = (centers[y] + rng.normal(size=(n_samples, n_features))).astype(np.float32)
    y_partial = np.full(n_samples, -1)
    labeled = rng.permutation(n_samples)[:n_labeled]
    y_partial[labeled] = y[labeled]
    return X, y_partial


def sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def run_ours(X, y, epochs, device):
    clf = BoostMISClassifier(max_epochs=epochs, random_state=0, device=device)
    clf.fit(X, y)
    sync(device)
    return sum(len(h["batches"]) for h in clf.history_)


def run_bare(X, y, epochs, device):
    """The same training steps in plain PyTorch; returns the number of steps."""
    torch.manual_seed(0)
    B, mu, decay = P["batch_size"], P["mu"], P["ema_decay"]
    alpha, settled = P["alpha"], P["alpha"] + P["beta"]
    lab = y != -1
    x_l_all = torch.as_tensor(X[lab], device=device)
    y_l_all = torch.as_tensor(y[lab], device=device)
    x_u_all = torch.as_tensor(X[~lab], device=device)
    n_l, n_u = len(x_l_all), len(x_u_all)
    scale = torch.cat([x_l_all, x_u_all]).std(dim=0, unbiased=False)
    weak_scale, strong_scale = 0.01 * scale, 0.1 * scale

    model = MLPClassifierModule(X.shape[1], int(y.max()) + 1).to(device).train()
    teacher = copy.deepcopy(model).requires_grad_(False).eval()
    exempt = no_weight_decay_names(model)
    named = list(model.named_parameters())
    groups = [{"params": [p for n, p in named if n not in exempt]},
              {"params": [p for n, p in named if n in exempt], "weight_decay": 0.0}]
    opt = torch.optim.SGD(groups, lr=P["lr"], momentum=P["momentum"],
                          nesterov=True, weight_decay=P["weight_decay"])
    t_params, s_params = list(teacher.parameters()), [p.detach() for p in model.parameters()]
    t_bufs, s_bufs = list(teacher.buffers()), list(model.buffers())

    total = epochs * math.ceil(n_u / (mu * B))
    lab_stream = torch.cat([torch.randperm(n_l, device=device)
                            for _ in range(math.ceil(total * B / n_l))])
    confident = torch.zeros(n_u, dtype=torch.bool, device=device)
    count_prev = torch.zeros((), device=device)
    t_max = max(1, epochs // 2)
    k = 0
    for epoch in range(epochs):
        for idx in torch.randperm(n_u, device=device).split(mu * B):
            for group in opt.param_groups:
                group["lr"] = P["lr"] * math.cos(7 * math.pi * k / (16 * total))
            il = lab_stream[k * B:(k + 1) * B]
            x_l, x_u = x_l_all[il], x_u_all[idx]
            x_l_weak = x_l + torch.randn_like(x_l) * weak_scale
            with torch.no_grad():
                logits_weak = model(x_u + torch.randn_like(x_u) * weak_scale)
                max_p, pseudo = F.softmax(logits_weak, dim=1).max(dim=1)
            if epoch >= t_max:
                eps = torch.tensor(settled, device=device)
            else:
                ratio = confident.sum() / count_prev.clamp_min(1.0)
                eps = alpha * torch.where(count_prev > 0, ratio, 1.0).clamp(0.0, 1.0)
            mask = max_p >= eps
            confident[idx] = max_p >= settled
            strong = (x_u * (torch.rand_like(x_u) >= 0.3)
                      + torch.randn_like(x_u) * strong_scale)
            logits = model(torch.cat([x_l_weak, strong]))
            sup = F.cross_entropy(logits[:B], y_l_all[il])
            per_row = F.cross_entropy(logits[B:], pseudo, reduction="none")
            loss = sup + P["lambda_u"] * (per_row * mask).sum() / len(idx)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            k += 1
            with torch.no_grad():
                torch._foreach_lerp_(t_params, s_params,
                                     1.0 - min(decay, (1.0 + k) / (10.0 + k)))
                for t_buf, s_buf in zip(t_bufs, s_bufs):
                    t_buf.copy_(s_buf)
        count_prev = confident.sum().float()
    float(loss)  # a host read, like fit's transduction read-back
    sync(device)
    return k


def timed(fn, *args):
    start = time.perf_counter()
    steps = fn(*args)
    return time.perf_counter() - start, steps


def bench(config, epochs, repeats, device):
    n_samples, n_features, n_labeled = config
    X, y = make_data(n_samples, n_features, n_labeled)
    run_ours(X, y, 1, device), run_bare(X, y, 1, device)  # warm-up
    ours, bare = [], []
    for _ in range(repeats):
        t, steps_ours = timed(run_ours, X, y, epochs, device)
        ours.append(t)
        t, steps_bare = timed(run_bare, X, y, epochs, device)
        bare.append(t)
    assert steps_ours == steps_bare, (steps_ours, steps_bare)
    t_ours, t_bare = statistics.median(ours), statistics.median(bare)
    samples = steps_ours * P["batch_size"] * (1 + 2 * P["mu"])
    return {"n": n_samples, "f": n_features, "l": n_labeled, "steps": steps_ours,
            "ours_s": t_ours, "bare_s": t_bare,
            "ours_sps": samples / t_ours, "bare_sps": samples / t_bare,
            "ours_steps": steps_ours / t_ours, "bare_steps": steps_bare / t_bare,
            "ratio": t_bare / t_ours}


def table(rows):
    lines = ["| n_samples | n_features | n_labeled | steps | ours s | bare s | "
             "ours samples/s | bare samples/s | ours steps/s | bare steps/s | "
             "ratio bare/ours |",
             "|" + "---:|" * 11]
    for r in rows:
        lines.append(
            f"| {r['n']} | {r['f']} | {r['l']} | {r['steps']} | {r['ours_s']:.2f} | "
            f"{r['bare_s']:.2f} | {r['ours_sps']:,.0f} | {r['bare_sps']:,.0f} | "
            f"{r['ours_steps']:.1f} | {r['bare_steps']:.1f} | {r['ratio']:.2f} |")
    return "\n".join(lines)


def machine(device):
    name = torch.cuda.get_device_name(device) if device.startswith("cuda") else "CPU"
    return (f"{platform.platform()}, Python {platform.python_version()}, "
            f"nproc {os.cpu_count()}, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), skorch {skorch.__version__}, "
            f"scikit-learn {sklearn.__version__}; device: {device} ({name})")


def write_results(text):
    doc = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    if START not in doc or END not in doc:
        doc = doc.rstrip("\n") + f"\n\n{START}\n{END}\n"
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.S)
    doc = pattern.sub(lambda _: f"{START}\n{text}\n{END}", doc)
    RESULTS.write_text(doc)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-samples", type=int, help="default 5207 (MESCC train)")
    parser.add_argument("--n-features", type=int, help="default 2048")
    parser.add_argument("--n-labeled", type=int, help="default 500")
    parser.add_argument("--configs", default=PRESETS,
                        help="comma-separated n_samples:n_features:n_labeled, used "
                        f"unless --n-* is given (default {PRESETS})")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--quick", action="store_true", help="1 epoch, 1 repeat")
    parser.add_argument("--write", action="store_true", help=f"update {RESULTS.name}")
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.repeats = 1, 1
    if any(v is not None for v in (args.n_samples, args.n_features, args.n_labeled)):
        configs = [(args.n_samples or 5207, args.n_features or 2048,
                    args.n_labeled or 500)]
    else:
        configs = [tuple(map(int, c.split(":"))) for c in args.configs.split(",")]
    device = resolve_device(args.device)

    rows = [bench(c, args.epochs, args.repeats, device) for c in configs]
    text = "\n".join([
        "## Training throughput: `fit` against a bare PyTorch loop", "",
        f"Command: `python {' '.join(['benchmarks/throughput.py'] + sys.argv[1:])}`  ",
        f"Machine: {machine(device)}  ",
        f"Date: {datetime.date.today().isoformat()}", "",
        f"{args.epochs} epochs, B={P['batch_size']}, mu={P['mu']}, 2 classes, "
        f"`MLPClassifierModule` (hidden 256); median of {args.repeats} interleaved "
        "runs. samples/s = steps x B(1 + 2 mu) / time (forward samples: labeled, "
        "weak unlabeled, strong unlabeled); ratio = bare time / ours time "
        "(>= 0.8: at most 25% slower). Times include setup. See the module "
        "docstring of `benchmarks/throughput.py` for what the bare loop does.", "",
        table(rows)])
    print(text)
    if args.write:
        write_results(text)
        print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
