"""flx.Session: values both ways, callables, errors, files, interrupts."""

import os
import signal
import threading
import time

import numpy as np
import pytest

import flx

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def s():
    return flx.Session(seed=0)


@pytest.mark.parametrize(
    "array",
    [
        np.arange(12, dtype=np.float64).reshape(3, 4) / 7,
        np.arange(12, dtype=np.int64).reshape(3, 4) - 5,
        np.array([[True, False], [False, True]]),
        np.zeros((0, 3)),
        np.array(2.5),
        np.arange(24.0).reshape(2, 3, 4),
    ],
    ids=["float64", "int64", "bool", "empty", "0-d", "3-d"],
)
def test_arrays_round_trip_with_their_dtype(s, array):
    s["A"] = array
    back = s["A"]
    assert isinstance(back, np.ndarray)
    assert back.dtype == array.dtype and back.shape == array.shape
    np.testing.assert_array_equal(back, array)
    assert s.run("shape(A)") == array.shape


def test_non_contiguous_arrays_go_in_as_their_values(s):
    base = np.arange(60, dtype=np.float64).reshape(6, 10)
    for view in [base.T, base[::2, 1::3], base[::-1, ::-1], np.asfortranarray(base)]:
        assert not view.flags.c_contiguous or view is base
        s["V"] = view
        np.testing.assert_array_equal(s["V"], view)
        assert s.run("V[0, 0]") == view[0, 0]
        np.testing.assert_array_equal(s.run("sum(V, axis: 0)"), view.sum(axis=0))


def test_other_dtypes_are_converted_and_unsupported_ones_refused(s):
    s["F"] = np.arange(4, dtype=np.float32)
    assert s["F"].dtype == np.float64
    s["I"] = np.arange(4, dtype=np.int32)
    assert s["I"].dtype == np.int64
    with pytest.raises(TypeError, match="no tensors of dtype"):
        s["C"] = np.ones(3, dtype=np.complex128)


def test_tensors_come_out_without_a_copy_and_read_only(s):
    s.run("let M = reshape(arange(1000000.0), 1000, 1000)")
    a, b = s["M"], s["M"]
    assert not a.flags.writeable
    assert np.shares_memory(a, b)  # both views of flx's one buffer
    with pytest.raises(ValueError):
        a[0, 0] = 1.0
    c = np.array(a)
    c[0, 0] = -1.0
    assert s.run("M[0, 0]") == 0.0
    # flx changing M afterwards copies; the array Python holds stays as it was.
    s.run("M[0, 0] = 5.0")
    assert a[0, 0] == 0.0 and s["M"][0, 0] == 5.0
    del s
    assert a[999, 999] == 999999.0  # the buffer outlives the session


def test_numbers_strings_records_lists_tuples(s):
    s["n"] = 3
    s["x"] = 2.5
    s["b"] = True
    s["name"] = "rfm"
    s["nothing"] = None
    s["cfg"] = {"L": 10.0, "reg": 1e-3, "tags": ["a", "b"], "shape": (2, 3)}
    s["xs"] = [1, 2.0, "three", np.ones(2)]
    assert s.run("n * 2") == 6 and isinstance(s["n"], int)
    assert s.run("x + 1") == 3.5
    assert s.run("b and true") is True
    assert s.run('"{name}!"') == "rfm!"
    assert s.run("nothing") is None
    assert s.run("cfg.L / cfg.reg") == pytest.approx(1e4)
    assert s.run("cfg.shape") == (2, 3)
    back = s["cfg"]
    assert back["tags"] == ["a", "b"] and back["shape"] == (2, 3)
    xs = s["xs"]
    assert xs[:3] == [1, 2.0, "three"] and isinstance(xs[3], np.ndarray)
    assert s.run("0..3") == range(0, 3)
    assert np.integer  # numpy scalars go in as numbers
    s["k"] = np.int64(7)
    s["y"] = np.float32(0.5)
    assert s.run("k + y") == 7.5
    with pytest.raises(TypeError, match="cannot take a set"):
        s["bad"] = {1, 2}
    with pytest.raises(ValueError, match="field name"):
        s["bad"] = {"not a name": 1}
    with pytest.raises(KeyError):
        s["not a name"] = 1
    with pytest.raises(KeyError):
        s["undefined_name"]
    assert "cfg" in s and "nope" not in s
    assert s.names()[:2] == ["n", "x"]


def test_the_design_example(s):
    s["X"] = np.random.default_rng(0).standard_normal((2000, 10))
    s.run(
        """
kernel laplace(L = 10.0) = exp(-dist / L)
let f = krr(X, X[:, 0] * X[:, 1], laplace)
let M = agop(f, X)
"""
    )
    M = s["M"]
    assert M.dtype == np.float64 and M.shape == (10, 10)
    assert set(np.argsort(-np.diag(M))[:2]) == {0, 1}
    f = s["f"]
    assert isinstance(f, flx.Value) and f.kind == "Predictor"
    assert repr(f).startswith("<predictor krr laplace")
    pred = f(np.zeros((3, 10)))
    assert pred.shape == (3,)
    X = s["X"]
    np.testing.assert_allclose(f(X[:5]), s.run("f(X[0:5])"), rtol=0, atol=0)


def test_functions_kernels_and_models_are_callables(s):
    s.run(
        """
fn scale(x, by = 2.0) = x * by
kernel gauss(L = 1.0) = exp(-sqdist / (2 * L ^ 2))
"""
    )
    scale = s["scale"]
    np.testing.assert_array_equal(scale(np.arange(3.0)), [0.0, 2.0, 4.0])
    np.testing.assert_array_equal(scale(np.arange(3.0), by=3.0), [0.0, 3.0, 6.0])
    k = s["gauss"]
    assert k.kind == "Kernel"
    # A callable goes back into flx as itself.
    s["again"] = scale
    assert s.run("again(1.5)") == 3.0
    s.run(
        """
model lin(d) {
    param w = ones(d, 1)
    forward(x) = x @ w
}
let net = lin(3, seed: 0)
"""
    )
    net = s["net"]
    assert net.kind == "Model"
    np.testing.assert_array_equal(net(np.eye(3)), np.ones((3, 1)))
    other = flx.Session()
    with pytest.raises(ValueError, match="another Session"):
        other["f"] = scale
    with pytest.raises(flx.FlxError) as e:
        scale()
    assert e.value.code == "flx::call::missing_arg"


def test_errors_carry_code_message_line_and_column(s):
    with pytest.raises(flx.FlxError) as e:
        s.run("let a = ones(3)\nlet b = a @ ones(4)")
    err = e.value
    assert err.code.startswith("flx::shape")
    assert err.line == 2 and err.column is not None
    assert err.message and err.message in str(err)
    assert "a @ ones(4)" in str(err)  # the rendered diagnostic shows the source
    with pytest.raises(flx.FlxError) as e:
        s.run("let z = undefined_thing + 1")
    assert e.value.code == "flx::name::unknown" and e.value.line == 1
    with pytest.raises(flx.FlxError) as e:
        s.run("let = 3")
    assert e.value.line == 1
    # A failed input defines nothing; the session goes on.
    assert "z" not in s
    assert s.run("1 + 1") == 2


def test_check_runs_nothing(s):
    s.check("let q = 1 / 0")
    assert "q" not in s
    with pytest.raises(flx.FlxError):
        s.check("let q = nothing_here")


def test_names_persist_and_may_be_redefined(s):
    s.run("let a = 1")
    s.run("let a = a + 1")
    s.run("fn g(x) = x + a")
    assert s.run("g(1)") == 3


def test_run_file_with_overrides(s, tmp_path):
    script = tmp_path / "job.flx"
    script.write_text("proc main(n = 10, scale = 1.0) {\n    return sum(ones(n)) * scale\n}\n")
    assert s.run_file(str(script)) == 10.0
    assert s.run_file(str(script), n=4, scale=0.5) == 2.0
    with pytest.raises(flx.FlxError, match="no parameter `m`"):
        s.run_file(str(script), m=3)
    with pytest.raises(flx.FlxError) as e:
        s.run_file(str(tmp_path / "missing.flx"))
    assert e.value.code == "flx::io::script"


def test_run_file_on_an_example(s):
    value = s.run_file(os.path.join(ROOT, "examples", "basics.flx"))
    assert value is None or value is not None  # ran to the end without an error
    assert len(s.names()) > 0


def test_print_goes_to_python_stdout(s, capsys):
    s.run('print("hello from flx", 1 + 1)')
    assert capsys.readouterr().out == "hello from flx 2\n"


def _interrupt_soon(delay):
    def fire():
        time.sleep(delay)
        os.kill(os.getpid(), signal.SIGINT)

    t = threading.Thread(target=fire)
    t.start()
    return t


def test_ctrl_c_stops_a_long_computation_and_keeps_the_session(s):
    s.run("let kept = 42")
    t = _interrupt_soon(0.5)
    start = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        s.run("let total = 0.0\nfor i in 0..2000000000 { total = total + 1.0 }")
    t.join()
    assert time.perf_counter() - start < 30
    assert s.run("kept") == 42
    assert s.run("1 + 2") == 3  # the flag is down again


def test_ctrl_c_stops_a_long_krr(s):
    s["X"] = np.random.default_rng(1).standard_normal((6000, 20))
    t = _interrupt_soon(0.5)
    with pytest.raises(KeyboardInterrupt):
        s.run("kernel lap(L = 10.0) = exp(-dist / L)\nlet fb = krr(X, X[:, 0], lap, solver: \"cholesky\")\nlet fb2 = krr(X, X[:, 1], lap, solver: \"cholesky\")")
    t.join()
    assert "X" in s


def test_the_gil_is_released_while_flx_computes(s):
    ticks = []
    stop = threading.Event()

    def count():
        while not stop.is_set():
            ticks.append(1)
            time.sleep(0.001)

    t = threading.Thread(target=count)
    t.start()
    s.run("let total = 0.0\nfor i in 0..3000000 { total = total + sqrt(float(i)) }")
    stop.set()
    t.join()
    assert len(ticks) > 20  # Python ran beside flx


def test_the_readme_example_runs():
    readme = open(os.path.join(ROOT, "README.md")).read()
    section = readme.split("## Python and Jupyter", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    scope = {}
    exec(code, scope)
    assert scope["M"].shape == (10, 10) and scope["pred"].shape == (3,)
