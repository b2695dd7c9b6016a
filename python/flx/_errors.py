"""flx's diagnostics as a Python exception."""


class FlxError(Exception):
    """An flx diagnostic: a parse, check or run error.

    ``str(e)`` is the diagnostic as flx renders it (the source line, a
    caret under the place, help); ``code`` names the kind of error
    (``flx::shape::matmul``), ``message`` is its one line, and ``line`` and
    ``column`` (from 1) say where it points in the code that was run, or are
    None where it points nowhere.
    """

    def __init__(self, rendered, code, message, line=None, column=None):
        super().__init__(rendered)
        self.code = code
        self.message = message
        self.line = line
        self.column = column

    def __str__(self):
        return self.args[0]

    def _render_traceback_(self):
        # IPython shows these lines instead of a Python traceback.
        return str(self).splitlines()
