"""The names of the pretraining methods a user can start, without importing them.

``avssl pretrain --method`` offers these choices; the parser is built before any command runs, so
it must not import ``avssl.methods`` (torch, faiss and the networks): ``avssl --help`` stays fast.
Keep the tuple in step with ``avssl.methods.METHODS`` (tests/test_config_files.py checks it).
"""

# sorted; every method of avssl.methods.METHODS except the INTERNAL ones
USER_METHODS = ("avts", "cdc", "crisscross", "mdc", "sdc", "supervised", "xdc", "xdc-audio-audio", "xdc-video-video")

# Registered methods that other commands start: ``longclip`` is ``avssl retrain-long``'s (it needs
# the inputs that command writes into the run directory first).
INTERNAL_METHODS = ("longclip",)
