"""examples/notebooks/rfm.ipynb, executed by nbclient on the python3 kernel
of this environment, with its outputs checked."""

import os

import nbformat
from nbclient import NotebookClient

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_the_rfm_notebook_runs_and_finds_x0_and_x1():
    path = os.path.join(ROOT, "examples", "notebooks", "rfm.ipynb")
    nb = nbformat.read(path, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "committed with outputs cleared"
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": ROOT}}).execute()
    code = [c for c in nb.cells if c.cell_type == "code"]
    rfm, summary = code[2], code[3]
    text = "".join(o.get("text", "") for o in rfm.outputs if o.output_type == "stream")
    assert text.count("test MSE") == 6
    figures = [o for o in rfm.outputs if o.output_type == "display_data"]
    assert len(figures) == 1 and "<svg" in figures[0]["data"]["image/svg+xml"]
    lines = "".join(o.get("text", "") for o in summary.outputs).splitlines()
    assert lines[0] == "top coordinates of M: [0, 1]"
    before, after = (float(x) for x in lines[1].split(": ")[1].split(" -> "))
    assert after < before / 5
