"""The flx Jupyter kernel through jupyter_client: installed with
`python -m flx.kernel install --prefix`, started for real."""

import subprocess
import sys
import time

import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    prefix = tmp_path_factory.mktemp("prefix")
    # Away from python/, whose flx/ (no extension module there) would shadow the package.
    away = tmp_path_factory.mktemp("cwd")
    out = subprocess.run(
        [sys.executable, "-m", "flx.kernel", "install", "--prefix", str(prefix)],
        check=True,
        capture_output=True,
        text=True,
        cwd=away,
    )
    assert "installed the flx kernel spec" in out.stdout
    kernels = prefix / "share" / "jupyter" / "kernels"
    spec = KernelSpecManager(kernel_dirs=[str(kernels)]).get_kernel_spec("flx")
    assert spec.language == "flx" and spec.argv[0] == sys.executable
    km = KernelManager(kernel_name="flx", kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernels)]))
    km.start_kernel(cwd=str(away))
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=60)
    yield km, kc
    kc.stop_channels()
    km.shutdown_kernel(now=True)


def run(kc, code, timeout=60):
    """Execute `code`; the reply and the IOPub messages it caused."""
    msg_id = kc.execute(code)
    reply = kc.get_shell_msg(timeout=timeout)
    while reply["parent_header"].get("msg_id") != msg_id:
        reply = kc.get_shell_msg(timeout=timeout)
    outputs = []
    while True:
        msg = kc.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
        outputs.append(msg)
    return reply["content"], outputs


def of_type(outputs, kind):
    return [m["content"] for m in outputs if m["msg_type"] == kind]


def test_execute_prints_and_shows_values(kernel):
    _, kc = kernel
    reply, outputs = run(kc, 'let X = randn(200, 4, seed: 0)\nprint("rows", shape(X)[0])\nshape(X)')
    assert reply["status"] == "ok"
    assert "".join(s["text"] for s in of_type(outputs, "stream")) == "rows 200\n"
    assert of_type(outputs, "execute_result")[0]["data"]["text/plain"] == "(200, 4)"


def test_errors_are_rendered_diagnostics(kernel):
    _, kc = kernel
    reply, outputs = run(kc, "let bad = ones(3) @ ones(4)")
    assert reply["status"] == "error" and reply["ename"] == "FlxError"
    traceback = "\n".join(of_type(outputs, "error")[0]["traceback"])
    assert "ones(3) @ ones(4)" in traceback


def test_figures_are_inline_svg(kernel):
    _, kc = kernel
    reply, outputs = run(kc, "plot.heatmap(eye(3))")
    assert reply["status"] == "ok"
    shown = of_type(outputs, "display_data")
    assert len(shown) == 1 and "<svg" in shown[0]["data"]["image/svg+xml"]


def test_meta_commands(kernel):
    _, kc = kernel
    run(kc, "let W = ones(2, 3)")
    _, outputs = run(kc, ":type W")
    assert "Tensor" in of_type(outputs, "stream")[0]["text"]
    _, outputs = run(kc, ":time sum(W)")
    text = "".join(s["text"] for s in of_type(outputs, "stream"))
    assert "time:" in text
    _, outputs = run(kc, ":vars")
    assert "W" in "".join(s["text"] for s in of_type(outputs, "stream"))


def test_complete(kernel):
    _, kc = kernel
    run(kc, "let learning_rate = 0.1\nlet rec = {alpha: 1, beta: 2}")
    kc.complete("learn", 5)
    reply = kc.get_shell_msg(timeout=30)["content"]
    assert reply["matches"] == ["learning_rate"]
    assert (reply["cursor_start"], reply["cursor_end"]) == (0, 5)
    code = "print(rec.al"
    kc.complete(code, len(code))
    reply = kc.get_shell_msg(timeout=30)["content"]
    assert reply["matches"] == ["alpha"] and reply["cursor_start"] == len("print(rec.")
    kc.complete(":ty", 3)
    assert kc.get_shell_msg(timeout=30)["content"]["matches"] == ["type"]


def test_inspect_is_help(kernel):
    _, kc = kernel
    kc.inspect("krr(X", 2)
    reply = kc.get_shell_msg(timeout=30)["content"]
    assert reply["found"] and "krr(" in reply["data"]["text/plain"]
    run(kc, "use std.rfm")
    kc.inspect("rfm.fit", 5)
    reply = kc.get_shell_msg(timeout=30)["content"]
    assert reply["found"] and "fit(" in reply["data"]["text/plain"]
    kc.inspect("no_such_name", 3)
    assert not kc.get_shell_msg(timeout=30)["content"]["found"]


def test_interrupt_stops_a_long_krr_and_keeps_names(kernel):
    km, kc = kernel
    run(kc, "let kept = 7\nlet X = randn(9000, 20, seed: 1)\nkernel lap(L = 10.0) = exp(-dist / L)")
    msg_id = kc.execute('let fb = krr(X, X[:, 0], lap, solver: "cholesky")\nlet fb2 = krr(X, X[:, 1], lap, solver: "cholesky")')
    time.sleep(1.5)
    km.interrupt_kernel()
    reply = kc.get_shell_msg(timeout=60)
    while reply["parent_header"].get("msg_id") != msg_id:
        reply = kc.get_shell_msg(timeout=60)
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "KeyboardInterrupt"
    reply, outputs = run(kc, "kept")
    assert reply["status"] == "ok"
    assert of_type(outputs, "execute_result")[0]["data"]["text/plain"] == "7"
    # The interrupted input defined neither fit (whichever it was in).
    reply, outputs = run(kc, ":type fb2")
    assert reply["status"] == "error"
    assert "the input that defines it was interrupted" in reply["evalue"]
