"""Progress bars: slowed down in log files, with TQDM_MININTERVAL read when the bar is made."""

from __future__ import annotations

from dd_plugins.progress import LOG_INTERVAL_S, progress_bar


def test_a_bar_into_a_file_redraws_once_a_minute(capsys, monkeypatch):
    monkeypatch.delenv("TQDM_MININTERVAL", raising=False)
    bar = progress_bar(range(3))  # captured stderr is not a terminal
    assert (bar.mininterval, bar.maxinterval) == (LOG_INTERVAL_S, LOG_INTERVAL_S)
    bar.close()


def test_tqdm_mininterval_set_after_import_is_honoured(capsys, monkeypatch):
    monkeypatch.setenv("TQDM_MININTERVAL", "5")
    bar = progress_bar(range(3))
    assert (bar.mininterval, bar.maxinterval) == (5.0, 10.0)
    bar.close()


def test_explicit_keywords_win(capsys):
    bar = progress_bar(range(3), mininterval=0.5)
    assert bar.mininterval == 0.5
    bar.close()
