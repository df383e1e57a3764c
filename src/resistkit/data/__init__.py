"""Built-in, local and hub data sets behind one function, ``load_data``.

Importing this package is cheap: ``datasets`` is imported only when data is loaded.
"""

from resistkit.data.registry import data_identity, list_builtin, load_data
from resistkit.errors import DataSpecError

__all__ = ["DataSpecError", "data_identity", "list_builtin", "load_data"]
