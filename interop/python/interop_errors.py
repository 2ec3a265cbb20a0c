"""An exception type shared by Python and Rust services.

Registered with nameko's ``deserialize_to_instance``, so a Python caller gets an
``InsufficientFunds`` back, not a ``RemoteError``, whichever side raised it. The Rust
side declares the same ``exc_path``, ``interop_errors.InsufficientFunds``.
"""

from nameko.exceptions import deserialize_to_instance


@deserialize_to_instance
class InsufficientFunds(Exception):
    """A withdrawal larger than the balance: ``InsufficientFunds(balance, amount)``."""
