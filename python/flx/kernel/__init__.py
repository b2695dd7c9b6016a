"""A Jupyter kernel for all-flx notebooks.

    python -m flx.kernel install --user     # or --sys-prefix, --prefix DIR
    jupyter lab                               # then choose the "flx" kernel

Cells run in one flx session, as inputs of the REPL: flx code, or a
meta-command (``:time INPUT``, ``:type EXPR``, ``:vars``, ``:help NAME``,
``:load FILE``, ``:reset``). Figures drawn by ``plot.*`` show inline,
Tab completes as the REPL's Tab does, Shift-Tab shows ``:help`` for the
name under the cursor, and an interrupt stops a computation and keeps the
session's names.
"""

import json
import os
import re
import shutil
import sys
import tempfile

from ipykernel.kernelbase import Kernel

from .. import __version__
from .._errors import FlxError
from .._flx import Session

KERNEL_NAME = "flx"

# A dotted name ending at the cursor, or running on from it (for inspection).
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")


class FlxKernel(Kernel):
    implementation = "flx"
    implementation_version = __version__
    language = "flx"
    language_version = __version__
    language_info = {
        "name": "flx",
        "mimetype": "text/x-flx",
        "file_extension": ".flx",
        "codemirror_mode": "python",
        "pygments_lexer": "python",
    }
    banner = f"flx {__version__}: a language for feature-learning experiments"
    help_links = []

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.flx = Session()

    def set_parent(self, ident, parent, channel="shell"):
        # flx prints through sys.stdout and sys.stderr: their messages must
        # name the cell's request as their parent, or no cell shows them.
        super().set_parent(ident, parent, channel)
        if channel == "shell":
            for stream in (sys.stdout, sys.stderr):
                if hasattr(stream, "set_parent"):
                    stream.set_parent(parent)

    def do_execute(self, code, silent, store_history=True, user_expressions=None, allow_stdin=False):
        reply = {"execution_count": self.execution_count, "payload": [], "user_expressions": {}}
        try:
            value = self.flx.run_cell(code, name=f"In [{self.execution_count}]")
        except FlxError as e:
            return self._error(reply, "FlxError", e.message, str(e).splitlines())
        except KeyboardInterrupt:
            return self._error(reply, "KeyboardInterrupt", "interrupted", ["KeyboardInterrupt: interrupted"])
        finally:
            self._show_figures()
        if value is not None and not silent:
            self.send_response(
                self.iopub_socket,
                "execute_result",
                {"execution_count": self.execution_count, "data": {"text/plain": value}, "metadata": {}},
            )
        reply["status"] = "ok"
        return reply

    def _error(self, reply, ename, evalue, traceback):
        content = {"ename": ename, "evalue": evalue, "traceback": traceback}
        self.send_response(self.iopub_socket, "error", content)
        reply.update(content, status="error")
        return reply

    def _show_figures(self):
        for fmt, data in self.flx.take_figures():
            if fmt == "svg":
                bundle = {"image/svg+xml": data.decode("utf-8")}
            else:
                import base64

                bundle = {"image/png": base64.b64encode(data).decode("ascii")}
            self.send_response(self.iopub_socket, "display_data", {"data": bundle, "metadata": {}})

    def do_complete(self, code, cursor_pos):
        # Jupyter counts characters; flx counts UTF-8 bytes.
        cursor = len(code[:cursor_pos].encode("utf-8"))
        start, end, matches = self.flx.complete(code, cursor)
        raw = code.encode("utf-8")
        return {
            "status": "ok",
            "matches": matches,
            "cursor_start": len(raw[:start].decode("utf-8", "replace")),
            "cursor_end": len(raw[:end].decode("utf-8", "replace")),
            "metadata": {},
        }

    def do_inspect(self, code, cursor_pos, detail_level=0, omit_sections=()):
        name = _name_at(code, cursor_pos)
        text = self.flx.help(name) if name else None
        return {
            "status": "ok",
            "found": text is not None,
            "data": {"text/plain": text} if text is not None else {},
            "metadata": {},
        }

    def do_is_complete(self, code):
        return {"status": "unknown"}


def _name_at(code, cursor_pos):
    """The dotted name under the cursor (or just before it), or None."""
    for m in _NAME.finditer(code):
        if m.start() <= cursor_pos <= m.end():
            return m.group(0)
    return None


def spec():
    """The kernel spec: this Python runs ``python -m flx.kernel``."""
    return {
        "argv": [sys.executable, "-m", "flx.kernel", "-f", "{connection_file}"],
        "display_name": "flx",
        "language": "flx",
        "interrupt_mode": "signal",
        "metadata": {"debugger": False},
    }


def install(user=False, prefix=None):
    """Install the ``flx`` kernel spec; returns the folder it went to."""
    from jupyter_client.kernelspec import KernelSpecManager

    folder = tempfile.mkdtemp()
    try:
        with open(os.path.join(folder, "kernel.json"), "w") as f:
            json.dump(spec(), f, indent=2)
        return KernelSpecManager().install_kernel_spec(
            folder, KERNEL_NAME, user=user, prefix=prefix, replace=True
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
