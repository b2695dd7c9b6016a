"""flx, the language for feature-learning experiments, inside Python.

    import numpy as np, flx
    s = flx.Session(seed=0)
    s["X"] = np.random.default_rng(0).standard_normal((2000, 10))
    s.run('''
    kernel laplace(L = 10.0) = exp(-dist / L)
    let f = krr(X, X[:, 0] * X[:, 1], laplace)
    let M = agop(f, X)
    ''')
    M = s["M"]                    # a NumPy array (read-only, shares flx's memory)
    pred = s["f"](np.zeros((3, 10)))

Arrays go in as float64, int64 or bool tensors (copied once into flx's
storage); tensors come out as read-only NumPy arrays over flx's memory
(``np.array(s["M"])`` for a writable copy). Numbers, strings, None, lists,
tuples and dicts (flx records) convert both ways; functions, predictors,
kernels and models come back as ``flx.Value``, callable with NumPy arrays.
Errors raise ``flx.FlxError``; Ctrl-C stops a computation with
``KeyboardInterrupt`` and keeps the session. The GIL is released while flx
computes.

In IPython and Jupyter, ``%load_ext flx`` adds the ``%%flx`` and ``%flx``
magics; ``python -m flx.kernel install --user`` adds the ``flx`` kernel.
"""

from ._errors import FlxError
from ._flx import Session, Value, __version__

__all__ = ["Session", "Value", "FlxError", "__version__"]


def load_ipython_extension(ipython):
    """``%load_ext flx``: the ``%%flx`` cell magic and the ``%flx`` line magic."""
    from .magic import FlxMagics

    ipython.register_magics(FlxMagics)
