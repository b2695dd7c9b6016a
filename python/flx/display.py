"""Figures drawn by flx's ``plot.*``, shown inline in IPython and Jupyter."""


def show_figures(figures):
    from IPython.display import SVG, Image, display

    for fmt, data in figures:
        display(SVG(data=data) if fmt == "svg" else Image(data=data, format="png"))
