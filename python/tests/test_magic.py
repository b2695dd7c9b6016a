"""%%flx and %flx through IPython's InteractiveShell."""

import numpy as np
import pytest
from IPython.core.error import UsageError
from IPython.testing.globalipapp import start_ipython

import flx


@pytest.fixture(scope="module")
def ip():
    shell = start_ipython()
    shell.run_line_magic("load_ext", "flx")
    return shell


def test_cells_copy_variables_in_and_out(ip):
    ip.user_ns["X"] = np.random.default_rng(0).standard_normal((300, 5))
    ip.user_ns["y"] = ip.user_ns["X"][:, 0] * ip.user_ns["X"][:, 1]
    ip.run_cell_magic(
        "flx",
        "-i X,y -o M,f",
        "kernel laplace(L = 10.0) = exp(-dist / L)\nlet f = krr(X, y, laplace)\nlet M = agop(f, X)",
    )
    M = ip.user_ns["M"]
    assert isinstance(M, np.ndarray) and M.shape == (5, 5)
    assert set(np.argsort(-np.diag(M))[:2]) == {0, 1}
    assert isinstance(ip.user_ns["f"], flx.Value)
    # Names persist between cells of the notebook's one session.
    assert repr(ip.run_line_magic("flx", "shape(M)")) == "(5, 5)"


def test_the_last_value_shows_as_flx_prints_it(ip):
    shown = ip.run_cell_magic("flx", "", "let v = [1.0, 2.5]\nv * 2")
    assert repr(shown) == "[2. 5.]"
    assert ip.run_cell_magic("flx", "", "let nothing = 1") is None


def test_a_diagnostic_is_rendered_without_a_python_traceback(ip, capsys):
    result = ip.run_cell("%%flx\nlet a = ones(3) @ ones(4)\n")
    assert isinstance(result.error_in_exec, flx.FlxError)
    shown = capsys.readouterr()
    text = shown.out + shown.err
    assert "ones(3) @ ones(4)" in text
    assert "Traceback" not in text and "site-packages" not in text


def test_unknown_variables_are_usage_errors(ip):
    with pytest.raises(UsageError, match="no Python variable `nope`"):
        ip.run_cell_magic("flx", "-i nope", "1")
    with pytest.raises(UsageError, match="flx has no name `nada`"):
        ip.run_cell_magic("flx", "-o nada", "1")


def test_figures_display_inline_as_svg(ip, monkeypatch):
    shown = []
    import IPython.display

    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(obj))
    ip.run_cell_magic("flx", "", "plot.heatmap(eye(4), title: \"identity\")")
    assert len(shown) == 1
    svg = shown[0]
    assert isinstance(svg, IPython.display.SVG)
    assert "<svg" in svg.data and "identity" in svg.data


def test_meta_commands_work_in_cells(ip, capsys):
    ip.run_cell_magic("flx", "", "let W = ones(3, 4)")
    ip.run_line_magic("flx", ":type W")
    assert "Tensor" in capsys.readouterr().out
    ip.run_line_magic("flx", ":vars")
    assert "W" in capsys.readouterr().out
