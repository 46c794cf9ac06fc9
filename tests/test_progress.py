"""Progress bars obey the batch-run switch even when a call asks for progress."""

from poslib.progress import progress_bar


def test_batch_runs_draw_no_bar_even_when_progress_is_asked(monkeypatch):
    monkeypatch.setenv("TQDM_DISABLE", "1")
    assert progress_bar(range(3), progress=True).disable


def test_interactive_runs_draw_the_bar_unless_told_not_to(monkeypatch):
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    assert not progress_bar(range(3), progress=True).disable
    assert progress_bar(range(3), progress=False).disable
