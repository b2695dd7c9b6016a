"""The ``%%flx`` cell magic and ``%flx`` line magic for IPython and Jupyter.

    %load_ext flx
    %%flx -i X,y -o M
    let f = krr(X, y, laplace)
    let M = agop(f, X)

Every cell runs in one flx session per IPython shell; flx's names persist
between cells. ``-i`` copies Python variables in, ``-o`` copies flx names
out. Figures drawn by ``plot.*`` are shown inline, the cell's last value is
shown as flx prints it, and a diagnostic is shown as flx renders it.
"""

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from ._flx import Session
from .display import show_figures


class Shown:
    """A value as flx prints it (the notebook shows it as the cell's result)."""

    def __init__(self, text):
        self.text = text

    def __repr__(self):
        return self.text

    def _repr_pretty_(self, p, cycle):
        p.text(self.text)


def _names(text):
    return [n.strip() for n in text.split(",") if n.strip()]


@magics_class
class FlxMagics(Magics):
    def __init__(self, shell):
        super().__init__(shell)
        self._session = None

    @property
    def session(self):
        """The flx session of this shell, started by the first cell."""
        if self._session is None:
            self._session = Session()
        return self._session

    @magic_arguments()
    @argument("-i", "--input", default="", help="Python variables to copy into flx, comma-separated")
    @argument("-o", "--output", default="", help="flx names to copy out into Python, comma-separated")
    @line_cell_magic
    def flx(self, line, cell=None):
        """Run flx code: ``%%flx [-i A,B] [-o C,D]`` for a cell, ``%flx EXPR`` for one line."""
        if cell is None:
            return self._run(line, [], [])
        args = parse_argstring(self.flx, line)
        return self._run(cell, _names(args.input), _names(args.output))

    def _run(self, code, inputs, outputs):
        s = self.session
        for name in inputs:
            if name not in self.shell.user_ns:
                raise UsageError(f"%%flx -i: no Python variable `{name}`")
            s[name] = self.shell.user_ns[name]
        try:
            value = s.run_cell(code, name=f"In [{self.shell.execution_count}]")
        finally:
            show_figures(s.take_figures())
        for name in outputs:
            if name not in s:
                raise UsageError(f"%%flx -o: flx has no name `{name}`")
            self.shell.user_ns[name] = s[name]
        if value is not None:
            return Shown(value)
        return None
