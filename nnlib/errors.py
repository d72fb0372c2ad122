"""Errors shared by the modules that read files (nnlib.io, nnlib.data, nnlib.checkpoint,
nnlib.cnn.teacher): here, below all of them, so that none has to import another for it."""
import zipfile
import zlib

# what numpy, zipfile and zlib raise for a truncated or garbled .npz (or a missing file)
READ_ERRORS = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error)
