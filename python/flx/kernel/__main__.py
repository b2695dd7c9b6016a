"""``python -m flx.kernel install [--user | --sys-prefix | --prefix DIR]``
installs the kernel spec; ``python -m flx.kernel -f CONNECTION_FILE`` is
how Jupyter starts the kernel."""

import argparse
import sys


def main(argv):
    if argv[:1] == ["install"]:
        parser = argparse.ArgumentParser(prog="python -m flx.kernel install")
        where = parser.add_mutually_exclusive_group()
        where.add_argument("--user", action="store_true", help="for this user (~/.local/share/jupyter)")
        where.add_argument("--sys-prefix", action="store_true", help="in this Python's prefix (a virtual environment)")
        where.add_argument("--prefix", help="under this prefix")
        args = parser.parse_args(argv[1:])
        from . import install

        prefix = sys.prefix if args.sys_prefix else args.prefix
        folder = install(user=args.user, prefix=prefix)
        print(f"installed the flx kernel spec in {folder}")
        return
    from ipykernel.kernelapp import IPKernelApp

    from . import FlxKernel

    IPKernelApp.launch_instance(kernel_class=FlxKernel)


main(sys.argv[1:])
