"""Where the package's own files are: in a checkout, or inside an installed wheel.

The Jinja templates live in the repository's top-level ``templates/`` (the deploy and the
CLI render the same files). A wheel carries them as ``xen2kvm/templates/`` (mapped in
``pyproject.toml``), so ``pip install /path/to/xen2kvm`` gives a working ``xen2kvm``
without the checkout; an editable install and the tests read the checkout's.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def templates_dir() -> Path:
    """The templates: the wheel's copy if there is one, else the checkout's."""
    packaged = PACKAGE / "templates"
    return packaged if packaged.is_dir() else PACKAGE.parent / "templates"
