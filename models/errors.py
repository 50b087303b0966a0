"""The one error the heads package raises for problems a user can fix (bad name, bad file, wrong run)."""

from ganprov.core.errors import GanprovError


class HeadError(GanprovError):
    """A head cannot be made or loaded; the message says why and what to do."""
