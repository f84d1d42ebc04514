import io
import sys

from numcnn.train import progress


def test_quiet_unless_a_terminal_or_forced(monkeypatch, capsys):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    bar = progress.progress_bar(10, "epoch 1", enabled=None)
    assert isinstance(bar, progress.QuietBar)
    bar.update()
    bar.set_postfix(loss=1.0)
    bar.write("a line")
    bar.close()
    assert capsys.readouterr().out == "a line\n"
    assert isinstance(progress.progress_bar(10, "x", enabled=False), progress.QuietBar)


def test_tqdm_bar_shows_progress_when_enabled(monkeypatch):
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    assert progress.tqdm_available()
    bar = progress.progress_bar(4, "epoch 2/3", enabled=True)
    assert isinstance(bar, progress.TqdmBar)
    bar.update(4)
    bar.set_postfix(loss="0.5", lr="1e-3", img_s="900")
    bar.close()
    text = stream.getvalue()
    assert "epoch 2/3" in text and "4/4" in text and "img_s=900" in text


def test_a_verbose_solver_off_a_terminal_prints_lines_but_no_bar(monkeypatch, capsys):
    """Logs and pipes get the assignment's lines; the bar is for terminals (and progress=True)."""
    import numpy as np

    from numcnn import models
    from numcnn.train.solver import Solver

    monkeypatch.setattr(sys, "stderr", io.StringIO())  # not a terminal
    rng = np.random.default_rng(0)
    data = dict(
        X_train=rng.standard_normal((40, 4)),
        y_train=rng.integers(0, 3, 40),
        X_val=rng.standard_normal((10, 4)),
        y_val=rng.integers(0, 3, 10),
    )
    Solver(
        models.TwoLayerNet(input_dim=4, hidden_dim=5, num_classes=3),
        data,
        batch_size=10,
        num_epochs=2,
        print_every=2,
        verbose=True,
    ).train()
    out = capsys.readouterr().out
    assert "(Iteration 1 / 8) loss:" in out and "(Epoch 2 / 2) train acc:" in out
    assert sys.stderr.getvalue() == "" and "\r" not in out
