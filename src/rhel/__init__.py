"""rhel: Recurrent Hamiltonian Echo Learning in JAX."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("rhel")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"
