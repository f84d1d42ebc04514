"""numcnn.io: files that must never be left broken.

    checkpoint.py  the checkpoint file format: one .npz read with allow_pickle=False,
                   a JSON header (format, version, the model's spec, the training
                   state with {"__array__": name} references), integrity checks on
                   load; save_checkpoint, load_checkpoint, restore_model, write_checkpoint
    atomic.py      write_atomically (temporary file, fsync, rename) and
                   remove_stale_temporaries (what a kill mid-write leaves behind)

A side room: it may import numpy, numcnn.checks and the standard library only.
It knows nothing of models: a model becomes a spec and named arrays through
the codec numcnn.models registers (use_model_codec).
"""

from .atomic import WriteError, remove_stale_temporaries, write_atomically
from .checkpoint import (
    FORMAT,
    FORMAT_VERSION,
    Checkpoint,
    CheckpointError,
    ModelCodec,
    load_checkpoint,
    restore_model,
    save_checkpoint,
    use_model_codec,
    write_checkpoint,
)

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "Checkpoint",
    "CheckpointError",
    "ModelCodec",
    "WriteError",
    "load_checkpoint",
    "remove_stale_temporaries",
    "restore_model",
    "save_checkpoint",
    "use_model_codec",
    "write_atomically",
    "write_checkpoint",
]
