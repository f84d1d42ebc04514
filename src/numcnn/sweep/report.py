"""What a sweep leaves: the best trials, a ready command line, and a picture."""

from __future__ import annotations

import math
import shlex

import numpy as np

from .space import TRAIN_OPTIONS


def _completed(study):
    import optuna

    return study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))


def best_table(study, top: int = 5) -> str:
    """The study's best completed trials as a text table: trial number, validation accuracy, parameters.

    At most `top` rows, best first, one column per parameter; "no completed trials yet"
    when there are none.
    """
    trials = sorted(_completed(study), key=lambda t: -t.value)[:top]
    if not trials:
        return "no completed trials yet"
    names = sorted({name for t in trials for name in t.params})
    header = f"{'trial':>5} {'val acc':>8}  " + "  ".join(f"{n:>14}" for n in names)
    rows = [header, "-" * len(header)]
    for t in trials:
        cells = []
        for n in names:
            v = t.params.get(n)
            cells.append(f"{v:>14.4g}" if isinstance(v, float) else f"{str(v):>14}")
        rows.append(f"{t.number:>5} {t.value:>8.4f}  " + "  ".join(cells))
    return "\n".join(rows)


# Options a sweep fixes for all its trials, repeated in the command line where they differ from train's.
_FIXED = ("epochs", "batch_size", "optimizer", "schedule", "augment", "val_size", "seed")


def command_line(params: dict, base: dict, defaults: dict | None = None) -> str:
    """The `numcnn train` command that reruns a trial: its hyper-parameters over the sweep's fixed options.

    base: the sweep's training options; defaults: `numcnn train`'s (options equal to them are left out).
    """
    parts = ["numcnn", "train", "--model", base["model"], "--dataset", base["dataset"]]
    if base.get("path"):
        parts.append(str(base["path"]))
    if base.get("data_dir"):
        parts += ["--data-dir", str(base["data_dir"])]
    defaults = defaults or {}
    chosen = {k: base[k] for k in _FIXED if k in base and (k == "epochs" or base[k] != defaults.get(k))}
    chosen.update(params)
    for name, value in chosen.items():
        kind = TRAIN_OPTIONS.get(name, type(value))
        text = f"{value:.6g}" if kind is float and isinstance(value, float) else str(value)
        parts += ["--" + name.replace("_", "-"), text]
    return shlex.join(parts)


def plot_sweep(study, path=None, space: dict | None = None):
    """Validation accuracy against each hyper-parameter, and over the trials.

    Completed trials are filled dots; pruned ones are hollow, at the last accuracy they reported.
    Axes of options the space samples in log scale are logarithmic.
    """
    import optuna

    from ..viz import finish_figure, new_figure

    space = space or {}
    kept = [
        t
        for t in study.get_trials(deepcopy=False)
        if t.state == optuna.trial.TrialState.COMPLETE
        or (t.state == optuna.trial.TrialState.PRUNED and t.intermediate_values)
    ]
    value = {
        t.number: t.value if t.value is not None else t.intermediate_values[max(t.intermediate_values)] for t in kept
    }
    names = sorted({n for t in kept for n in t.params})
    columns = min(3, len(names) + 1)
    rows = math.ceil((len(names) + 1) / columns)
    figure = new_figure(4.2 * columns, 3.4 * rows)

    def scatter(axes, trials, position):
        for state, style in (
            ("COMPLETE", {"label": "complete"}),
            ("PRUNED", {"facecolors": "none", "edgecolors": "tab:gray", "label": "pruned"}),
        ):
            chosen = [t for t in trials if t.state.name == state]
            if chosen:
                axes.scatter([position(t) for t in chosen], [value[t.number] for t in chosen], **style)

    for index, name in enumerate(names):
        axes = figure.add_subplot(rows, columns, index + 1)
        having = [t for t in kept if name in t.params]
        xs = [t.params[name] for t in having]
        if all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in xs):
            scatter(axes, having, lambda t: t.params[name])
            if space.get(name, {}).get("log"):
                axes.set_xscale("log")
        else:
            labels = sorted({str(x) for x in xs})
            scatter(axes, having, lambda t: labels.index(str(t.params[name])))
            axes.set_xticks(range(len(labels)), labels)
        axes.set(xlabel=name, ylabel="validation accuracy")
        axes.tick_params(axis="x", labelrotation=30)
    axes = figure.add_subplot(rows, columns, len(names) + 1)
    scatter(axes, kept, lambda t: t.number)
    complete = sorted((t.number, t.value) for t in kept if t.state == optuna.trial.TrialState.COMPLETE)
    if complete:
        numbers, values = np.array(complete).T
        axes.step(numbers, np.maximum.accumulate(values), where="post", color="tab:orange", label="best so far")
    axes.set(xlabel="trial", ylabel="validation accuracy", title="over trials")
    axes.legend()
    return finish_figure(figure, path)
