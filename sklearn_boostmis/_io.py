"""File writes that a crash cannot leave half done."""

import os


def atomic_write(path, data):
    """Write ``data`` (bytes or text) to ``path`` via ``path.tmp`` and os.replace."""
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
