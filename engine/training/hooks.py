"""Test hooks: a Keras callback that slows or breaks training, selected by environment variables.

The worker hands it to ``execute_run`` as an extra callback (never by patching
the recorder), so the recording code under test is the real one:

- ``CONV3D_LAB_TEST_BATCH_DELAY_S=SECONDS`` sleeps that long after every
  training batch: a run slow enough to stop or kill at a chosen moment.
- ``CONV3D_LAB_TEST_FAIL_AT_EPOCH=N`` raises an exception in the first batch
  of epoch N: a run that fails in the middle of training.
"""

from __future__ import annotations

import os
import time

BATCH_DELAY_ENV = "CONV3D_LAB_TEST_BATCH_DELAY_S"
FAIL_AT_EPOCH_ENV = "CONV3D_LAB_TEST_FAIL_AT_EPOCH"
ENV_NAMES = (BATCH_DELAY_ENV, FAIL_AT_EPOCH_ENV)


def from_environment():
    """The hooks the environment asks for, as one Keras callback; None when no hook is set."""
    delay_text, fail_text = os.environ.get(BATCH_DELAY_ENV), os.environ.get(FAIL_AT_EPOCH_ENV)
    if not delay_text and not fail_text:
        return None
    import keras  # only when a hook is set: the callback class needs it

    class TestHooks(keras.callbacks.Callback):
        def __init__(self, delay_s: float, fail_epoch: int | None):
            super().__init__()
            self.delay_s = delay_s
            self.fail_epoch = fail_epoch
            self._epoch = 0

        def on_epoch_begin(self, epoch, logs=None):
            self._epoch = epoch + 1  # counted from 1, as the store does

        def on_train_batch_end(self, batch, logs=None):
            if self.fail_epoch is not None and self._epoch >= self.fail_epoch:
                raise RuntimeError(f"injected failure in epoch {self._epoch} (test hook {FAIL_AT_EPOCH_ENV})")
            time.sleep(self.delay_s)

        def describe(self) -> str:
            return f"{BATCH_DELAY_ENV}={delay_text}, {FAIL_AT_EPOCH_ENV}={fail_text}"

    return TestHooks(float(delay_text or 0), int(fail_text) if fail_text else None)
