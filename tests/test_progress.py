import io
import sys

from numcnn import progress


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
